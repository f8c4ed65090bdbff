// `hardneg doctor`: what this install computes with, and the public golden cases run on the chosen
// backend with pass/fail. The first thing to ask for in a bug report.
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { BACKEND_NAMES, initBackend, type BackendName } from '../../engine/backend.ts';
import { recordBackendCheck } from '../../engine/backend_checks.ts';
import { environmentReport } from '../../engine/environment.ts';
import { PUBLIC_FIXTURES, listPublicCases, runPublicCase, type PublicCaseResult } from '../../reference/public_cases.ts';

const HELP = `usage: hardneg doctor [--backend NAME] [--fixtures DIR] [--json]

Prints what this install computes with (hardneg, Node and npm versions, the backend and whether the
native kernels are in use and why not, OpenBLAS, oneDNN, sharp, onnxruntime, LanceDB, Chromium),
then runs the public golden cases shipped in test/fixtures/golden (made by running the official
implementation: generator cases, training trajectories, evaluation metrics) on that backend and
says pass or fail for each. Takes a few seconds. Exit 0 when every case passes, 1 otherwise.

options:
  --backend NAME   auto | ${BACKEND_NAMES.filter((b) => b !== 'auto').join(' | ')} (default auto: the backend
                   hardneg picks, wasm with the native kernels when they are built). A backend
                   outside the tested ones that passes every case is recorded in the cache
                   ($XDG_CACHE_HOME/hardneg or ~/.cache/hardneg) and cited by the engine line.
  --fixtures DIR   run the cases of another folder laid out as test/fixtures/golden (generator
                   cases at its top, trajectories under train/, metrics under metrics/)
  --json           one JSON object: {environment, cases, ok, seconds, recorded}`;

function caseLine(r: PublicCaseResult): string {
  const unit = r.kind === 'metrics' ? 'values' : 'tensors';
  const head = `  ${r.ok ? 'ok  ' : 'FAIL'}  ${r.kind.padEnd(10)}  ${r.name.padEnd(26)}  ${String(r.compared).padStart(5)} ${unit.padEnd(7)}  ${r.seconds.toFixed(1)} s`;
  return r.ok
    ? head
    : [head, ...r.failures.map((f) => `          ${f}`), ...(r.failed > r.failures.length ? [`          … ${r.failed - r.failures.length} more`] : [])].join(
        '\n',
      );
}

export const command: Command = {
  summary: 'what this install computes with, and the golden cases on its backend',
  help: HELP,
  async run(argv) {
    const { values: v } = parseFlags({
      args: argv,
      options: { backend: { type: 'string', default: 'auto' }, fixtures: { type: 'string' }, json: { type: 'boolean', default: false } },
      strict: true,
    });
    const requested = String(v.backend);
    if (!(BACKEND_NAMES as readonly string[]).includes(requested)) throw new UserError(`--backend ${requested}: expected one of ${BACKEND_NAMES.join(', ')}`);
    const started = performance.now();
    await initBackend(requested as BackendName);
    const env = await environmentReport();
    const say = (line: string): void => {
      if (!v.json) console.log(line);
    };
    say(`hardneg ${env.hardneg}  ·  Node ${env.node}  ·  npm ${env.npm ?? 'not found'}  ·  ${env.platform}`);
    say(`  ${'engine'.padEnd(15)} ${env.backend.engine}${env.backend.verified ? '  [covered by the golden tests in npm test]' : ''}`);
    for (const [name, c] of Object.entries(env.components)) say(`  ${name.padEnd(15)} ${c.found ? `${c.found}  (${c.note})` : `-  ${c.note}`}`);
    const root = v.fixtures ?? PUBLIC_FIXTURES;
    const cases = listPublicCases(root);
    if (cases.length === 0) {
      if (v.fixtures)
        throw new UserError(
          `--fixtures ${v.fixtures}: no fixtures found (expected PREFIX.inputs.safetensors, train/PREFIX.train.inputs.safetensors or metrics/PREFIX.expected.json)`,
        );
      throw new UserError(`no golden cases found under ${PUBLIC_FIXTURES}: the install is incomplete (reinstall hardneg)`, 1);
    }
    say('');
    say(`golden cases on backend ${env.backend.name} (${root}):`);
    const results: PublicCaseResult[] = [];
    for (const c of cases) {
      const r = await runPublicCase(c);
      results.push(r);
      say(caseLine(r));
    }
    const failed = results.filter((r) => !r.ok).length;
    const seconds = (performance.now() - started) / 1000;
    const recorded = failed === 0 && !env.backend.verified && !v.fixtures ? recordBackendCheck(env.backend.name, results.length) : null;
    if (v.json) {
      console.log(JSON.stringify({ environment: env, cases: results, ok: failed === 0, seconds, recorded }));
    } else {
      say('');
      say(
        failed === 0
          ? `doctor: all ${results.length} golden cases pass on ${env.backend.engine.replace(/^backend /, '')} (${seconds.toFixed(1)} s)`
          : `doctor: ${failed} of ${results.length} golden cases FAIL on backend ${env.backend.name} (${seconds.toFixed(1)} s); please attach this output to a bug report`,
      );
      if (recorded) say(`recorded in ${recorded}: the engine line of --backend ${env.backend.name} now cites this check`);
    }
    return failed === 0 ? 0 : 1;
  },
};
