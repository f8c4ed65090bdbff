// `hardneg start` (what `npm start` runs): trains GCA-HNG and the `none` baseline on the embedded
// Fashion-MNIST split with a fixed seed and prints them side by side.
import { join } from 'node:path';
import { parseFlags } from '../args.ts';
import { numberFlag, optionalNumberFlag } from '../../values.ts';
import type { Command } from '../command.ts';
import { parseConfig } from '../../train/config.ts';
import type { EvalRecord } from '../../train/evaluate_model.ts';
import { beginRun } from '../../train/run_start.ts';
import { trainWithProgress } from '../training.ts';

const HELP = `usage: hardneg start [--seed S] [--epochs N] [--out DIR] [--overwrite] [--json] [--quiet]

Trains GCA-HNG and the none baseline (same model and N-pair loss, no generated negatives) on the
embedded Fashion-MNIST retrieval split (train on 5 classes, retrieve among the 5 others), with a
fixed seed, and prints Recall@1/2/4/8, MAP@R, R-Precision, NMI and wall time side by side.
Runs go to DIR/gca-hng and DIR/none. In the default DIR, runs/quickstart, the two runs of an
earlier start are replaced (that is what npm start is for); in a DIR given with --out, existing
runs are replaced only with --overwrite. Files hardneg did not write are never touched.

options:
  --seed S       seed of every random stream (default 0)
  --epochs N     training epochs of each run (default 3)
  --out DIR      where the two runs go (default runs/quickstart)
  --overwrite    replace runs already in --out DIR
  --json         print the two final results as JSON
  --quiet        no progress`;

const DEFAULT_OUT = join('runs', 'quickstart');

export function comparisonTable(rows: Array<{ method: string; r: EvalRecord | null; wall: number }>): string {
  const header = ['method', 'R@1', 'R@2', 'R@4', 'R@8', 'MAP@R', 'RP', 'NMI', 'wall s'];
  const lines = [
    header,
    ...rows.map(({ method, r, wall }) => [
      method,
      ...['1', '2', '4', '8'].map((k) => (r ? (100 * (r.recall[k] ?? NaN)).toFixed(2) : '-')),
      r ? (100 * r.map_at_r).toFixed(2) : '-',
      r ? (100 * r.r_precision).toFixed(2) : '-',
      r && r.nmi !== null ? (100 * r.nmi).toFixed(2) : '-',
      wall.toFixed(0),
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] as string).length)));
  return lines.map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')).join('\n');
}

export const command: Command = {
  summary: 'train GCA-HNG and the none baseline on the embedded dataset, side by side (npm start)',
  help: HELP,
  async run(argv) {
    const { values: v } = parseFlags({
      args: argv,
      options: {
        seed: { type: 'string', default: '0' },
        epochs: { type: 'string' },
        out: { type: 'string' },
        overwrite: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
      },
      strict: true,
    });
    const seed = numberFlag('seed', v.seed, { integer: true, min: 0 });
    const epochs = optionalNumberFlag('epochs', v.epochs, { integer: true, min: 1 });
    const out = v.out ?? DEFAULT_OUT;
    const overwrite = v.out === undefined || v.overwrite;
    const rows: Array<{ method: string; r: EvalRecord | null; wall: number }> = [];
    for (const method of ['gca-hng', 'none'] as const) {
      const overrides: Record<string, unknown> = { train: { method, seed, ...(epochs !== undefined ? { epochs } : {}) } };
      const config = parseConfig(overrides, 'start');
      const dir = join(out, method);
      const begun = beginRun(dir, config, { overwrite, command: 'start' });
      if (!v.json && !v.quiet) process.stderr.write(`training ${method} (seed ${seed}) → ${dir}${begun.replacing ? ' (replacing the run there)' : ''}\n`);
      const result = await trainWithProgress(config, dir, false, v.quiet || v.json, begun);
      rows.push({ method, r: result.final, wall: result.wallSeconds });
    }
    if (v.json) console.log(JSON.stringify(rows.map(({ method, r, wall }) => ({ method, final: r, wall_s: wall }))));
    else console.log(`\nFashion-MNIST retrieval (unseen classes), seed ${seed}, final epoch:\n${comparisonTable(rows)}`);
    return 0;
  },
};
