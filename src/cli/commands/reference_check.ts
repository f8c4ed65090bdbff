// `hardneg reference-check`: recompute a golden fixture made by the official implementation and
// compare. PREFIX.inputs.safetensors → one forward/backward case (graph, GNN, generation, losses,
// gradients); PREFIX.train.inputs.safetensors → a training trajectory of T whole iterations;
// PREFIX.run.inputs.safetensors → epochs of the official training loop, replayed by the trainer.
import { resolve } from 'node:path';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { initBackend, type BackendName } from '../../engine/backend.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { formatReport } from '../../reference/compare.ts';
import { runFixture } from '../../reference/run_fixture.ts';

const HELP = `usage: hardneg reference-check --fixture PREFIX --out OUT.safetensors [--json] [--all] [--backend NAME]

Recomputes a fixture produced by the official GCA-HNG code and writes every tensor that the
fixture's expected file names, in full, under the same names, to OUT.
  PREFIX.inputs.safetensors + PREFIX.state.safetensors        one forward/backward case
  PREFIX.train.inputs.safetensors + PREFIX.train.state0...     a training trajectory (T iterations)
  PREFIX.run.inputs.safetensors + PREFIX.run.state0...         epochs of the official training loop,
                                                               run by hardneg's trainer (PREFIX or PREFIX.run)
When PREFIX[.train|.run].expected.safetensors exists, prints a per-tensor comparison (tolerances from
PREFIX[.train].json when present) and exits 1 if any tensor is out of tolerance.

options:
  --fixture PREFIX   path prefix of the fixture files
  --out FILE         where to write the computed tensors (safetensors, written atomically)
  --all              list every tensor in the report, not only failures
  --json             print the comparison as one JSON object
  --backend NAME     auto | wasm | cpu | tensorflow | webgpu (default auto)`;

export const command: Command = {
  summary: 'recompute an official-code fixture and compare, tensor by tensor',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags({
      args: argv,
      options: {
        fixture: { type: 'string' },
        out: { type: 'string' },
        json: { type: 'boolean', default: false },
        all: { type: 'boolean', default: false },
        backend: { type: 'string', default: 'auto' },
      },
      strict: true,
    });
    if (!values.fixture) throw new UserError('--fixture PREFIX is required');
    if (!values.out) throw new UserError('--out OUT.safetensors is required');
    const prefix = values.fixture;
    // The fixture's own files (PREFIX.*) are inputs: never overwrite one with our output.
    if (resolve(values.out).startsWith(`${resolve(prefix)}.`)) {
      throw new UserError(`--out ${values.out}: that is one of the fixture's own files (${prefix}.*); write the computed tensors elsewhere`);
    }
    await initBackend(values.backend as BackendName);
    const started = Date.now();
    const result = await runFixture(prefix);
    writeSafetensors(values.out, result.computed);
    const seconds = (Date.now() - started) / 1000;
    if (!result.rows) {
      if (values.json) console.log(JSON.stringify({ fixture: prefix, out: values.out, compared: false, seconds }));
      else console.log(`wrote ${result.computed.size} tensors to ${values.out} in ${seconds.toFixed(1)} s (no expected file to compare with)`);
      return 0;
    }
    const failed = result.rows.filter((r) => !r.ok);
    if (values.json) {
      console.log(
        JSON.stringify({
          fixture: prefix,
          out: values.out,
          compared: true,
          ok: failed.length === 0,
          seconds,
          tensors: result.rows.length,
          failures: failed,
          rows: values.all ? result.rows : undefined,
        }),
      );
    } else {
      console.log(formatReport(result.rows, !values.all));
      console.log(`wrote ${result.computed.size} tensors to ${values.out} in ${seconds.toFixed(1)} s`);
    }
    return failed.length === 0 ? 0 : 1;
  },
};
