// Setting up a training run: the configuration from its sources (preset, YAML file, flags,
// overrides) and a run from a configuration. The CLI's train, start and compare are thin shells
// over these, and library users call them directly.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.ts';
import { numberFlag } from '../values.ts';
import { BACKEND_NAMES, describeEngine, initBackend } from '../engine/backend.ts';
import { nameList } from '../text.ts';
import { NOT_IMPLEMENTED } from '../baselines/index.ts';
import { ConfigError, DATASET_NAMES, TRAIN_METHODS, applyOverrides, parseConfig, type TrainConfig } from './config.ts';
import { openTrainingData } from './datasets.ts';
import { RunLock } from './run_lock.ts';
import { runTraining, type TrainerInputs, type TrainResult } from './trainer.ts';

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UserError(`--config ${path}: cannot read the file`);
  }
  try {
    const v = parseYaml(text) as unknown;
    if (v !== null && (typeof v !== 'object' || Array.isArray(v))) throw new Error('not a mapping');
    return (v ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`--config ${path}: not a YAML mapping (${(err as Error).message.split('\n')[0]})`);
  }
}

const PRESETS_DIR = fileURLToPath(new URL('../../configs/presets/', import.meta.url));

export function presetNames(): string[] {
  return readdirSync(PRESETS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** Deep merge of plain objects (b over a). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Where a run's configuration comes from, lowest priority first: preset, config file, flags, --set. */
export interface ConfigSources {
  /** One of presetNames(). */
  preset?: string;
  /** A YAML file with keys as in config.json. */
  config?: string;
  dataset?: string;
  dataRoot?: string;
  method?: string;
  epochs?: string | number;
  seed?: string | number;
  backend?: string;
  /** `key=value` overrides, e.g. `loss.alpha=2`. */
  set?: string[];
}

/** The validated configuration of a run; a mistake is a UserError naming the flag or key. */
export function resolveConfig(v: ConfigSources): TrainConfig {
  let raw: Record<string, unknown> = {};
  if (v.preset) {
    const name = String(v.preset);
    if (!presetNames().includes(name)) throw new UserError(`--preset ${name}: unknown preset; presets: ${presetNames().join(', ')}`);
    raw = readConfigFile(join(PRESETS_DIR, `${name}.yaml`));
  }
  if (v.config) raw = merge(raw, readConfigFile(v.config));
  const flags: string[] = [];
  if (v.dataset !== undefined && !(DATASET_NAMES as readonly string[]).includes(v.dataset))
    throw new UserError(`--dataset ${v.dataset}: expected ${nameList(DATASET_NAMES)}`);
  if (v.method !== undefined && !(TRAIN_METHODS as readonly string[]).includes(v.method)) {
    const missing = NOT_IMPLEMENTED[v.method];
    throw new UserError(missing ? `--method ${v.method}: ${missing}` : `--method ${v.method}: expected ${nameList(TRAIN_METHODS)}`);
  }
  if (v.backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(v.backend))
    throw new UserError(`--backend ${v.backend}: expected ${nameList(BACKEND_NAMES)}`);
  if (v.dataset !== undefined) flags.push(`dataset.name=${v.dataset}`);
  if (v.dataRoot !== undefined) flags.push(`dataset.root=${JSON.stringify(v.dataRoot)}`);
  if (v.method !== undefined) flags.push(`train.method=${v.method}`);
  if (v.epochs !== undefined) flags.push(`train.epochs=${numberFlag('epochs', String(v.epochs), { integer: true, min: 1 })}`);
  if (v.seed !== undefined) flags.push(`train.seed=${numberFlag('seed', String(v.seed), { integer: true, min: 0 })}`);
  if (v.backend !== undefined) flags.push(`backend=${v.backend}`);
  raw = applyOverrides(raw, [...flags, ...(v.set ?? [])]);
  const config = parseConfig(raw, v.config ? String(v.config) : 'configuration');
  if (config.dataset.name === 'folder' && !config.dataset.root) throw new ConfigError('the folder dataset needs --data-root DIR (dataset.root)');
  if (config.model.embeddingSize % config.model.attentionHeads !== 0) {
    throw new ConfigError(`model.embeddingSize ${config.model.embeddingSize} must be divisible by model.attentionHeads ${config.model.attentionHeads}`);
  }
  return config;
}

export interface TrainRunCallbacks {
  /** The engine line (describeEngine), once the backend is up. */
  onEngine?: (line: string) => void;
  /** A dataset warning (skipped files, converted images). */
  onWarning?: (message: string) => void;
  onIteration?: TrainerInputs['onIteration'];
  onEvaluation?: TrainerInputs['onEvaluation'];
}

/**
 * Trains the run in `runDir` (prepared with startRunDir, or an interrupted run when `resume`):
 * starts the backend the configuration names, opens the dataset and runs the trainer.
 */
export async function trainRun(config: TrainConfig, runDir: string, resume: boolean, callbacks: TrainRunCallbacks = {}): Promise<TrainResult> {
  // One writer per run folder: the lock is re-entrant, so a caller that took it (beginRun) keeps it.
  const lock = RunLock.acquire(runDir, resume ? 'train --resume' : 'train');
  try {
    await initBackend(config.backend);
    callbacks.onEngine?.(describeEngine());
    const data = await openTrainingData(config, (msg) => callbacks.onWarning?.(msg));
    return await runTraining({
      config,
      runDir,
      resume,
      train: data.train,
      test: data.test,
      backbone: data.backbone,
      sampler: data.sampler,
      loadWeights: data.loadWeights,
      onIteration: callbacks.onIteration,
      onEvaluation: callbacks.onEvaluation,
    });
  } finally {
    lock.release();
  }
}
