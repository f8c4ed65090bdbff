// Comparison of computed tensors with expected ones in every storage form fixtures use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareTensor, expectedNames } from '../src/reference/compare.ts';
import { f32, f64, i64, type HostTensor } from '../src/io/host_tensor.ts';

const full = f32([1, 2, 3, 4, 5, 6], [3, 2]);

test('full storage: relative L2 error, and absolute comparison for a zero reference', () => {
  const exp = new Map<string, HostTensor>([
    ['t', full],
    ['zero', f32([0, 0], [2])],
  ]);
  assert.ok(compareTensor('t', f32([1, 2, 3, 4, 5, 6.0001], [3, 2]), exp, { rel: 1e-4, abs: 1e-7 }).ok);
  assert.ok(!compareTensor('t', f32([1, 2, 3, 4, 5, 7], [3, 2]), exp, { rel: 1e-4, abs: 1e-7 }).ok);
  const z = compareTensor('zero', f32([1e-8, -1e-8], [2]), exp, { rel: 1e-4, abs: 1e-7 });
  assert.ok(z.ok && z.absolute);
  assert.ok(!compareTensor('missing', undefined, exp, { rel: 1, abs: 1 }).ok);
});

test('rows storage (#rows, #sel, #stats) and sample storage (#idx, #sel, #stats)', () => {
  const stats = f64([21, 21, 91, 6], [4]);
  const rows = new Map<string, HostTensor>([
    ['t#rows', i64([0, 2], [2])],
    ['t#sel', f32([1, 2, 5, 6], [2, 2])],
    ['t#stats', stats],
  ]);
  assert.deepEqual(expectedNames(rows), ['t']);
  assert.ok(compareTensor('t', full, rows, { rel: 1e-6, abs: 1e-9 }).ok);
  // A wrong value in a row that is not stored is caught by the full tensor's sum.
  const r = compareTensor('t', f32([1, 2, 3, 9, 5, 6], [3, 2]), rows, { rel: 1e-6, abs: 1e-9 });
  assert.ok(!r.ok);
  assert.match(r.note ?? '', /sum/);
  const sample = new Map<string, HostTensor>([
    ['t#idx', i64([1, 4], [2])],
    ['t#sel', f32([2, 5], [2])],
    ['t#stats', stats],
  ]);
  assert.ok(compareTensor('t', full, sample, { rel: 1e-6, abs: 1e-9 }).ok);
  assert.ok(!compareTensor('t', f32([1, 2.5, 3, 4, 5, 6], [3, 2]), sample, { rel: 1e-6, abs: 1e-9 }).ok);
});

test('exact comparison for integers and counters', () => {
  const exp = new Map<string, HostTensor>([['n', i64([3], [])]]);
  assert.ok(compareTensor('n', i64([3], []), exp, { rel: 0, abs: 0, exact: true }).ok);
  assert.ok(!compareTensor('n', i64([4], []), exp, { rel: 0, abs: 0, exact: true }).ok);
});
