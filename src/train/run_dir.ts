// A run directory: the resolved configuration, a resumable checkpoint (weights, optimizer state
// and the trainer's own state in one atomically written safetensors file), the best and final
// weights under the official names, a JSON-lines log and metrics.json.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '../io/host_tensor.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { writeFileAtomic } from '../io/atomic_write.ts';
import type { StateDict } from '../models/state_dict.ts';
import type { Optimizers } from './optimizers.ts';
import { UserError } from '../errors.ts';
import { parseConfig, type TrainConfig } from './config.ts';

export const RUN_FILES = {
  config: 'config.json',
  checkpoint: 'checkpoint.safetensors',
  best: 'best.safetensors',
  final: 'model.safetensors',
  log: 'log.jsonl',
  metrics: 'metrics.json',
  /** Test-split embeddings [n, D] of the latest evaluation, and their labels. */
  testEmbeddings: 'test_embeddings.npy',
  testLabels: 'test_labels.npy',
} as const;

/** A directory holding a run: its configuration and at least a log line (a start that failed before training holds no run). */
export function isRunDir(dir: string): boolean {
  return existsSync(join(dir, RUN_FILES.config)) && [RUN_FILES.checkpoint, RUN_FILES.log, RUN_FILES.metrics].some((f) => existsSync(join(dir, f)));
}

/** Starts a fresh run in `dir`: the files of an earlier run there are removed, the configuration written. */
export function startRunDir(dir: string, config: TrainConfig): void {
  if (isRunDir(dir)) for (const f of Object.values(RUN_FILES)) rmSync(join(dir, f), { force: true });
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, RUN_FILES.config), `${JSON.stringify(config, null, 2)}\n`);
}

/** The configuration saved in a run directory (validated as a user's file is). */
export function readRunConfig(dir: string): TrainConfig {
  const path = join(dir, RUN_FILES.config);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`${path}: not readable JSON (${(err as Error).message})`);
  }
  return parseConfig(raw, path);
}

const OPTIMIZERS = ['opt_c', 'opt_gnn', 'opt_s'] as const;

function optimizerList(o: Optimizers) {
  return [
    ['opt_c', o.optC],
    ['opt_gnn', o.optGnn],
    ['opt_s', o.optS],
  ] as const;
}

/** Writes weights, optimizer moments and `trainerState` (JSON in the file's metadata) as one file. */
export async function saveCheckpoint(dir: string, sd: StateDict, opts: Optimizers, trainerState: object): Promise<void> {
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of await sd.toHost()) tensors.set(`model/${name}`, t);
  const gradBuffers: Record<string, string[]> = {};
  for (const [name, opt] of optimizerList(opts)) {
    for (const [k, t] of await opt.stateToHost()) tensors.set(`${name}/${k}`, t);
    gradBuffers[name] = opt.gradBufferNames();
  }
  writeSafetensors(join(dir, RUN_FILES.checkpoint), tensors, { trainer_state: JSON.stringify({ ...trainerState, gradBuffers }) });
}

export interface LoadedCheckpoint<S> {
  model: Map<string, HostTensor>;
  optimizers: Record<(typeof OPTIMIZERS)[number], Map<string, HostTensor>>;
  gradBuffers: Record<string, string[]>;
  state: S;
}

export function loadCheckpoint<S>(dir: string): LoadedCheckpoint<S> {
  const file = readSafetensors(join(dir, RUN_FILES.checkpoint));
  const model = new Map<string, HostTensor>();
  const optimizers = { opt_c: new Map(), opt_gnn: new Map(), opt_s: new Map() } as LoadedCheckpoint<S>['optimizers'];
  for (const [name, t] of file.tensors) {
    const slash = name.indexOf('/');
    const group = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    if (group === 'model') model.set(rest, t);
    else if ((OPTIMIZERS as readonly string[]).includes(group)) optimizers[group as (typeof OPTIMIZERS)[number]].set(rest, t);
  }
  const path = join(dir, RUN_FILES.checkpoint);
  const raw = file.metadata.trainer_state;
  if (!raw) throw new UserError(`${path}: no trainer state in its metadata (not a checkpoint written by hardneg train); start the run again with --overwrite`);
  let parsed: { gradBuffers?: Record<string, string[]> };
  try {
    parsed = JSON.parse(raw) as typeof parsed;
  } catch {
    throw new UserError(`${path}: its trainer state is not valid JSON; start the run again with --overwrite`);
  }
  const { gradBuffers, ...state } = parsed;
  if (!gradBuffers || typeof gradBuffers !== 'object')
    throw new UserError(`${path}: its trainer state lacks the optimizers' gradient buffers; start the run again with --overwrite`);
  return { model, optimizers, gradBuffers, state: state as S };
}

export function restoreOptimizers(opts: Optimizers, ckpt: LoadedCheckpoint<unknown>): void {
  for (const [name, opt] of optimizerList(opts)) opt.loadState(ckpt.optimizers[name], ckpt.gradBuffers[name] ?? []);
}

/** Appends one JSON line to the run's log. */
export function appendLog(dir: string, entry: object): void {
  // A line cut short by a crash is dropped by truncateLog on resume.
  appendFileSync(join(dir, RUN_FILES.log), `${JSON.stringify(entry)}\n`);
}

/** Drops log entries written after the checkpoint being resumed from (they will be redone). */
export function truncateLog(dir: string, keepThroughStep: number): void {
  const path = join(dir, RUN_FILES.log);
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return ((JSON.parse(line) as { step?: number }).step ?? 0) <= keepThroughStep;
      } catch {
        return false;
      }
    });
  writeFileAtomic(path, kept.map((l) => `${l}\n`).join(''));
}
