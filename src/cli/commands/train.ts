// `hardneg train`: train a metric model with GCA-HNG (or the `none` baseline) into a run directory.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { Command } from '../main.ts';
import { UserError } from '../errors.ts';
import { ProgressBar } from '../progress.ts';
import { describeEngine, initBackend } from '../../engine/backend.ts';
import { ConfigError, applyOverrides, parseConfig, type TrainConfig } from '../../train/config.ts';
import { RUN_FILES, isRunDir, readRunConfig, startRunDir } from '../../train/run_dir.ts';
import { runTraining, type TrainResult } from '../../train/trainer.ts';
import { openTrainingData } from '../../train/datasets.ts';
import { formatEval } from '../format.ts';

const HELP = `usage: hardneg train --out RUN_DIR [--dataset NAME] [--data-root DIR] [--preset NAME]
                     [--method gca-hng|none] [--epochs N] [--seed S] [--config FILE.yaml]
                     [--set key=value ...] [--overwrite] [--json]
       hardneg train --resume RUN_DIR [--json]

Trains backbone → BatchNorm1d → Linear embeddings with GCA-HNG hard negatives (or, with
--method none, the same model and N-pair loss without them), evaluating on the test split.
The run directory receives config.json (the resolved configuration), checkpoint.safetensors
(resumable: weights, optimizer state, random streams, position in the epoch; written atomically),
best.safetensors (best Recall@1) and model.safetensors (final weights) under the official
parameter names, log.jsonl (one line per iteration and evaluation) and metrics.json.

options:
  --dataset NAME      fashion-mnist (embedded, default), folder (DIR/train/<class>/*, DIR/test/<class>/*),
                      cub200, cars196, sop or inshop (as distributed; see the README)
  --data-root DIR     the folder dataset's directory
  --method NAME       gca-hng (default) or none
  --epochs N          training epochs
  --seed S            seed of every random stream (initialisation, sampler, mixing, dropout, flips)
  --preset NAME       one of the 12 official configurations: g-, res-, dino- × cub200, cars196, sop,
                      inshop (configs/presets/); --config and --set apply on top
  --config FILE.yaml  configuration file (keys as in config.json; unknown keys are refused)
  --set key=value     override one key, e.g. --set loss.alpha=2 --set train.classesPerBatch=8
  --out RUN_DIR       where to write the run (refused if it holds a run, unless --overwrite)
  --overwrite         replace the run in --out
  --resume RUN_DIR    continue an interrupted run exactly where its last checkpoint left it
  --json              print metrics.json's content at the end
  --quiet             no progress bar`;

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

const PRESETS_DIR = fileURLToPath(new URL('../../../configs/presets/', import.meta.url));

export function presetNames(): string[] {
  return readdirSync(PRESETS_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
}

/** Deep merge of plain objects (b over a). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
      ? merge(prev as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export function resolveConfig(v: Record<string, unknown>): TrainConfig {
  let raw: Record<string, unknown> = {};
  if (v.preset) {
    const name = String(v.preset);
    if (!presetNames().includes(name)) throw new UserError(`--preset ${name}: unknown preset; presets: ${presetNames().join(', ')}`);
    raw = readConfigFile(join(PRESETS_DIR, `${name}.yaml`));
  }
  if (v.config) raw = merge(raw, readConfigFile(v.config as string));
  const flags: string[] = [];
  if (v.dataset !== undefined) flags.push(`dataset.name=${v.dataset}`);
  if (v['data-root'] !== undefined) flags.push(`dataset.root=${JSON.stringify(v['data-root'])}`);
  if (v.method !== undefined) flags.push(`train.method=${v.method}`);
  if (v.epochs !== undefined) flags.push(`train.epochs=${v.epochs}`);
  if (v.seed !== undefined) flags.push(`train.seed=${v.seed}`);
  if (v.backend !== undefined) flags.push(`backend=${v.backend}`);
  try {
    raw = applyOverrides(raw, [...flags, ...((v.set as string[] | undefined) ?? [])]);
    const config = parseConfig(raw, v.config ? String(v.config) : 'configuration');
    if (config.dataset.name === 'folder' && !config.dataset.root) throw new ConfigError("the folder dataset needs --data-root DIR (dataset.root)");
    if (config.model.backbone === 'dino-vits16') {
      throw new ConfigError(`the DINO ViT-S/16 backbone${v.preset ? ` of preset ${v.preset}` : ''} is not supported yet; export it to ONNX and train in frozen-feature mode (--set model.backbone=onnx --set model.onnx=FILE)`);
    }
    if (config.model.embeddingSize % config.model.attentionHeads !== 0) {
      throw new ConfigError(`model.embeddingSize ${config.model.embeddingSize} must be divisible by model.attentionHeads ${config.model.attentionHeads}`);
    }
    return config;
  } catch (err) {
    if (err instanceof ConfigError) throw new UserError(err.message);
    throw err;
  }
}

let engineReported = false;

export async function trainRun(config: TrainConfig, runDir: string, resume: boolean, quiet: boolean): Promise<TrainResult> {
  await initBackend(config.backend);
  if (!quiet && !engineReported) {
    process.stderr.write(`${describeEngine()}\n`);
    engineReported = true;
  }
  const data = await openTrainingData(config, (msg) => { if (!quiet) process.stderr.write(`warning: ${msg}\n`); });
  const bar = new ProgressBar(`${config.train.method} epoch`, quiet);
  const result = await runTraining({
    config, runDir, resume, train: data.train, test: data.test, backbone: data.backbone, sampler: data.sampler, loadWeights: data.loadWeights,
    onIteration: ({ epoch, iteration, iterations, losses }) => {
      const terms = Object.entries(losses).filter(([k]) => k.startsWith('J_')).map(([k, x]) => `${k} ${x.toFixed(3)}`).join(' ');
      bar.update(iteration, iterations, `(${epoch + 1}/${config.train.epochs}) ${terms}`);
      if (iteration === iterations) bar.done();
    },
    onEvaluation: (r) => { if (!quiet) process.stderr.write(`${formatEval(r)}\n`); },
  });
  return result;
}

export const command: Command = {
  summary: 'train GCA-HNG (or the none baseline) into a resumable run directory',
  help: HELP,
  async run(argv) {
    const { values: v } = parseArgs({
      args: argv,
      options: {
        dataset: { type: 'string' }, 'data-root': { type: 'string' }, method: { type: 'string' }, preset: { type: 'string' },
        epochs: { type: 'string' }, seed: { type: 'string' }, config: { type: 'string' },
        set: { type: 'string', multiple: true }, out: { type: 'string' }, resume: { type: 'string' },
        overwrite: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false }, backend: { type: 'string' },
      },
      strict: true,
    });
    let runDir: string;
    let config: TrainConfig;
    if (v.resume) {
      runDir = v.resume;
      if (v.out && v.out !== v.resume) throw new UserError('--resume continues the run in place; drop --out (or give the same directory)');
      if (!isRunDir(runDir)) throw new UserError(`--resume ${runDir}: not a run directory (no ${RUN_FILES.config})`);
      if (!existsSync(join(runDir, RUN_FILES.checkpoint))) throw new UserError(`--resume ${runDir}: no checkpoint yet; start the run again with --overwrite`);
      if (v.set || v.config || v.preset || v.epochs || v.method || v.dataset) throw new UserError('--resume uses the run\'s saved configuration; configuration flags are not allowed with it');
      config = readRunConfig(runDir);
    } else {
      if (!v.out) throw new UserError('--out RUN_DIR is required (or --resume RUN_DIR)');
      runDir = v.out;
      config = resolveConfig(v);
      if (isRunDir(runDir) && !v.overwrite) throw new UserError(`--out ${runDir} already holds a run; use --resume ${runDir} to continue it or --overwrite to replace it`);
      startRunDir(runDir, config);
    }
    const result = await trainRun(config, runDir, Boolean(v.resume), v.quiet || v.json);
    const metrics = { final: result.final, best: result.best, wall_s: result.wallSeconds };
    if (v.json) console.log(JSON.stringify(metrics));
    else console.log(`run finished in ${result.wallSeconds.toFixed(1)} s: ${runDir}\n  final ${result.final ? formatEval(result.final) : '-'}\n  best  ${result.best ? formatEval(result.best) : '-'}`);
    return 0;
  },
};
