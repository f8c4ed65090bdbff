// Runs one fixture made by the official implementation, whichever kind its files say it is:
// PREFIX.inputs.safetensors (one forward/backward case), PREFIX.train.inputs.safetensors
// (a trajectory of whole training iterations) or PREFIX.run.inputs.safetensors (epochs of the
// official training loop, replayed through the trainer). Used by `reference-check` and `doctor`.
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { readSafetensors } from '../io/safetensors.ts';
import type { HostTensor } from '../io/host_tensor.ts';
import { coreCaseFromTensors, computeCoreCase } from './core_case.ts';
import { compareTensor, expectedNames, type ComparisonRow } from './compare.ts';
import { coreTolerance, type GapEntry } from './core_tolerance.ts';

export interface FixtureResult {
  kind: 'core' | 'trajectory' | 'run';
  computed: Map<string, HostTensor>;
  /** One row per expected tensor; absent when the fixture has no expected file. */
  rows?: ComparisonRow[];
}

function loadGaps(path: string): Record<string, GapEntry> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as { report?: { f32_vs_f64?: Record<string, GapEntry> } };
    return j.report?.f32_vs_f64;
  } catch {
    throw new UserError(`${path}: not valid JSON`);
  }
}

async function runCore(prefix: string): Promise<FixtureResult> {
  const inputs = readSafetensors(`${prefix}.inputs.safetensors`).tensors;
  const statePath = `${prefix}.state.safetensors`;
  if (!existsSync(statePath)) throw new UserError(`${statePath}: not found (a fixture needs PREFIX.inputs.safetensors and PREFIX.state.safetensors)`);
  const state = readSafetensors(statePath).tensors;
  let c;
  try {
    c = coreCaseFromTensors(inputs, state);
  } catch (err) {
    throw new UserError(`${prefix}.inputs.safetensors: ${(err as Error).message}`);
  }
  const computed = computeCoreCase(c);
  const expectedPath = `${prefix}.expected.safetensors`;
  if (!existsSync(expectedPath)) return { kind: 'core', computed };
  const expected = readSafetensors(expectedPath).tensors;
  const gaps = loadGaps(`${prefix}.json`);
  const rows = expectedNames(expected).map((n) => compareTensor(n, computed.get(n), expected, coreTolerance(n, gaps)));
  return { kind: 'core', computed, rows };
}

/** Recomputes the fixture at PREFIX and compares it with its expected file when there is one. */
export async function runFixture(prefix: string): Promise<FixtureResult> {
  // An epoch-level fixture may be named with or without its suffix (PREFIX.run or PREFIX).
  const { RUN_FIXTURE, runRunFixture } = await import('./run_check.ts');
  const runBase = prefix.endsWith(RUN_FIXTURE) && existsSync(`${prefix}.inputs.safetensors`) ? prefix.slice(0, -RUN_FIXTURE.length) : prefix;
  if (existsSync(`${runBase}${RUN_FIXTURE}.inputs.safetensors`)) return { kind: 'run', ...(await runRunFixture(runBase)) };
  if (existsSync(`${prefix}.train.inputs.safetensors`)) {
    const { runTrajectoryFixture } = await import('./trajectory_check.ts');
    return { kind: 'trajectory', ...(await runTrajectoryFixture(prefix)) };
  }
  if (existsSync(`${prefix}.inputs.safetensors`)) return runCore(prefix);
  throw new UserError(
    `no fixture at '${prefix}': expected ${prefix}.inputs.safetensors, ${prefix}.train.inputs.safetensors or ${prefix}.run.inputs.safetensors`,
  );
}
