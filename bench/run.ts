// `npm run bench -- [--case NAME] [--runs N] [--json]`: long measurements, never part of `npm test`.
// Cases: iteration-small, iteration-cub, iteration-sop.
import { parseArgs } from 'node:util';
import { initBackend } from '../src/engine/backend.ts';
import { benchIteration, ITERATION_SHAPES } from './iteration.ts';
import type { BenchResult } from './timing.ts';

const CASES: Record<string, (runs: number) => Promise<BenchResult>> = {};
for (const name of Object.keys(ITERATION_SHAPES)) CASES[`iteration-${name}`] = (runs) => benchIteration(name, runs);

const { values } = parseArgs({
  options: { case: { type: 'string', multiple: true }, runs: { type: 'string', default: '3' }, json: { type: 'boolean', default: false }, backend: { type: 'string', default: 'auto' } },
});
const backend = await initBackend(values.backend as 'auto');
const selected = values.case ?? Object.keys(CASES);
for (const name of selected) {
  const run = CASES[name];
  if (!run) {
    console.error(`unknown case '${name}'; cases: ${Object.keys(CASES).join(', ')}`);
    process.exit(2);
  }
  const r = await run(Number(values.runs));
  if (values.json) console.log(JSON.stringify({ ...r, backend }));
  else console.log(`${r.case.padEnd(20)} median ${r.median_ms.toFixed(1)} ms  min ${r.min_ms.toFixed(1)} ms  runs ${r.runs}  peak RSS ${r.peak_rss_mb} MB  (${backend})`);
}
