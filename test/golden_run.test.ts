// Every epoch-level fixture: the official train.py loop (warm-up, BN_FREEZE, step LR decaying inside
// the run, the cosine GNN schedule, J_avg/J_gen epoch means, evaluation every epoch) replayed through
// hardneg's own trainer, every recorded quantity in tolerance.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_FIXTURE, runRunFixture } from '../src/reference/run_check.ts';
import { runFixture } from '../src/reference/run_fixture.ts';
import { formatReport } from '../src/reference/compare.ts';
import { GOLDEN } from './helpers/golden.ts';

const suffix = `${RUN_FIXTURE}.inputs.safetensors`;
const dirs = [join(GOLDEN, 'train'), join(GOLDEN, '..', 'extra')].filter((d) => existsSync(d));
const cases = dirs.flatMap((d) =>
  readdirSync(d)
    .filter((f) => f.endsWith(suffix))
    .map((f) => join(d, f.slice(0, -suffix.length))),
);

test('there is an epoch-level fixture to check', () => assert.ok(cases.length >= 1));

for (const prefix of cases) {
  test(`golden run ${prefix.split('/').pop()}`, async () => {
    const { rows } = await runRunFixture(prefix);
    assert.ok(rows && rows.length > 300, 'compared against the expected file');
    const failed = rows.filter((r) => !r.ok);
    assert.equal(failed.length, 0, formatReport(failed));
    // What the fixture is for: every kind of loop quantity was compared, not skipped.
    for (const kind of [/^iter\d+\/lr\/opt_c$/, /^iter\d+\/J_avg$/, /^iter\d+\/jsyn_weight$/, /^epoch\d+\/J_gen$/, /^epoch\d+\/eval\/embeddings$/]) {
      assert.ok(
        rows.some((r) => kind.test(r.name) && !r.note),
        `${kind} compared`,
      );
    }
    // Warm-up freezing: the backbone's step counters are compared exactly (and absent after the warm-up epoch).
    assert.ok(rows.some((r) => /^epoch\d+\/opt_c\/feature_extractor\.backbone\..*\/step$/.test(r.name) && r.ok));
  });
}

test('reference-check names a run fixture with or without its .run suffix', async () => {
  const prefix = cases[0] as string;
  const r = await runFixture(`${prefix}${RUN_FIXTURE}`);
  assert.equal(r.kind, 'run');
  assert.ok(r.rows && r.rows.every((row) => row.ok));
});
