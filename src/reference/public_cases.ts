// The public golden cases shipped with hardneg (test/fixtures/golden: made by running the official
// implementation, format in its README), run as one quick self-check: `hardneg doctor`.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkMetricsFixture } from './metrics_fixture.ts';
import { runFixture } from './run_fixture.ts';

/** Where the shipped fixtures live, relative to this module (the same in a clone and in the package). */
export const PUBLIC_FIXTURES = fileURLToPath(new URL('../../test/fixtures/golden', import.meta.url));

export interface PublicCase {
  name: string;
  kind: 'generator' | 'trajectory' | 'run' | 'metrics';
  prefix: string;
}

export interface PublicCaseResult {
  name: string;
  kind: PublicCase['kind'];
  ok: boolean;
  /** Tensors (generator, trajectory, run) or metric entries compared. */
  compared: number;
  failed: number;
  /** The first values out of tolerance, for the report. */
  failures: string[];
  seconds: number;
}

function prefixes(dir: string, suffix: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .sort()
    .map((f) => join(dir, f.slice(0, -suffix.length)));
}

export function listPublicCases(root = PUBLIC_FIXTURES): PublicCase[] {
  const base = (p: string): string => p.split(/[\\/]/).pop() as string;
  return [
    ...prefixes(root, '.inputs.safetensors').map((prefix) => ({ name: base(prefix), kind: 'generator' as const, prefix })),
    ...prefixes(join(root, 'train'), '.train.inputs.safetensors').map((prefix) => ({ name: base(prefix), kind: 'trajectory' as const, prefix })),
    // Epoch-level runs (a few seconds): the trainer's loop itself on this backend.
    ...prefixes(join(root, 'train'), '.run.inputs.safetensors').map((prefix) => ({ name: base(prefix), kind: 'run' as const, prefix })),
    ...prefixes(join(root, 'metrics'), '.expected.json').map((prefix) => ({ name: base(prefix), kind: 'metrics' as const, prefix })),
  ];
}

/** Runs one case on the backend already initialised. */
export async function runPublicCase(c: PublicCase): Promise<PublicCaseResult> {
  const started = performance.now();
  const done = (compared: number, failures: string[]): PublicCaseResult => ({
    name: c.name,
    kind: c.kind,
    ok: failures.length === 0,
    compared,
    failed: failures.length,
    failures: failures.slice(0, 5),
    seconds: (performance.now() - started) / 1000,
  });
  if (c.kind === 'metrics') {
    const r = await checkMetricsFixture(c.prefix);
    return done(r.values, r.failures);
  }
  const r = await runFixture(c.prefix);
  const rows = r.rows ?? [];
  const failures = rows
    .filter((row) => !row.ok)
    .map((row) => `${row.name}: ${row.absolute ? 'abs' : 'rel'} ${row.error.toExponential(2)} > ${row.tolerance.toExponential(1)}`);
  if (rows.length === 0) failures.push('the fixture has no expected file');
  return done(rows.length, failures);
}
