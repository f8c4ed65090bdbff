// Every generator fixture made by the official implementation: every tensor within tolerance.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../src/io/safetensors.ts';
import { coreCaseFromTensors, computeCoreCase } from '../src/reference/core_case.ts';
import { compareTensor, expectedNames, formatReport } from '../src/reference/compare.ts';
import { coreTolerance } from '../src/reference/core_tolerance.ts';
import { GOLDEN } from './helpers/golden.ts';

const dirs = [GOLDEN, join(GOLDEN, '..', 'extra')].filter((d) => existsSync(d));
const cases = dirs.flatMap((d) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.inputs.safetensors') && !f.includes('.train.'))
    .map((f) => join(d, f.replace('.inputs.safetensors', ''))),
);

test('there are generator fixtures to check', () => assert.ok(cases.length >= 4));

for (const prefix of cases) {
  test(`golden generator case ${prefix.split('/').pop()}`, () => {
    const c = coreCaseFromTensors(readSafetensors(`${prefix}.inputs.safetensors`).tensors, readSafetensors(`${prefix}.state.safetensors`).tensors);
    const computed = computeCoreCase(c);
    const expected = readSafetensors(`${prefix}.expected.safetensors`).tensors;
    const gaps = existsSync(`${prefix}.json`) ? JSON.parse(readFileSync(`${prefix}.json`, 'utf8')).report?.f32_vs_f64 : undefined;
    const names = expectedNames(expected);
    assert.ok(names.length > 100, 'the expected file lists the full set of tensors');
    const rows = names.map((n) => compareTensor(n, computed.get(n), expected, coreTolerance(n, gaps)));
    const failed = rows.filter((r) => !r.ok);
    assert.equal(failed.length, 0, formatReport(failed));
  });
}
