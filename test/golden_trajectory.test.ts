// Every training-trajectory fixture: T whole official iterations replayed, every tensor in tolerance.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runTrajectoryFixture } from '../src/reference/trajectory_check.ts';
import { formatReport } from '../src/reference/compare.ts';
import { GOLDEN } from './helpers/golden.ts';

const dirs = [join(GOLDEN, 'train'), join(GOLDEN, '..', 'extra')].filter((d) => existsSync(d));
const cases = dirs.flatMap((d) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.train.inputs.safetensors'))
    .map((f) => join(d, f.replace('.train.inputs.safetensors', ''))),
);

test('there are trajectory fixtures to check', () => assert.ok(cases.length >= 2));

for (const prefix of cases) {
  test(`golden trajectory ${prefix.split('/').pop()}`, async () => {
    const { computed, rows } = await runTrajectoryFixture(prefix);
    assert.ok(rows && rows.length > 500, 'compared against the expected file');
    assert.ok(computed.size >= rows.length - rows.filter((r) => r.note?.startsWith('skipped')).length);
    const failed = rows.filter((r) => !r.ok);
    assert.equal(failed.length, 0, formatReport(failed));
    // The zero-gradient semantics: step counters are compared exactly, so check some were compared.
    assert.ok(rows.some((r) => r.name.endsWith('/step') && r.ok));
  });
}
