import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.ts';
import { parseNpy, serializeNpy, readNpy } from '../src/io/npy.ts';
import { f32, f64, i64, toNumbers } from '../src/io/host_tensor.ts';
import { GOLDEN } from './helpers/golden.ts';

test('safetensors round trip keeps names, dtypes, shapes and values', () => {
  const bytes = serializeSafetensors({ a: f32([1, 2.5, -3, 4], [2, 2]), b: f64([Math.PI], []), c: i64([7, -8, 9], [3]) }, { k: 'v' });
  assert.equal(new DataView(bytes.buffer).getBigUint64(0, true) % 8n, 0n);
  const back = parseSafetensors(bytes);
  assert.deepEqual(back.metadata, { k: 'v' });
  assert.deepEqual(back.tensors.get('a')?.shape, [2, 2]);
  assert.deepEqual(toNumbers(back.tensors.get('a')!), [1, 2.5, -3, 4]);
  assert.equal(back.tensors.get('b')?.dtype, 'F64');
  assert.deepEqual(back.tensors.get('b')?.shape, []);
  assert.deepEqual(toNumbers(back.tensors.get('c')!), [7, -8, 9]);
});

test('safetensors rejects a truncated file with a message', () => {
  const bytes = serializeSafetensors({ a: f32([1, 2, 3], [3]) });
  assert.throws(() => parseSafetensors(bytes.subarray(0, bytes.length - 4), 'x.safetensors'), /x\.safetensors: tensor 'a'/);
});

test('npy round trip and a file written by numpy', () => {
  const t = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  const back = parseNpy(serializeNpy(t));
  assert.deepEqual(back.shape, [2, 3]);
  assert.deepEqual(toNumbers(back), [1, 2, 3, 4, 5, 6]);
  const z = readNpy(`${GOLDEN}/pub_p4k2_d16_l1.z.npy`);
  assert.equal(z.dtype, 'F32');
  assert.deepEqual(z.shape, [8, 16]);
  const y = readNpy(`${GOLDEN}/pub_p4k2_d16_l1.y.npy`);
  assert.equal(y.dtype, 'I64');
  assert.deepEqual(y.shape, [8]);
});

test('npy reads Fortran order into C order', () => {
  const t = f64([1, 4, 2, 5, 3, 6], [2, 3]); // column-major data of [[1,2,3],[4,5,6]]
  const bytes = Buffer.from(serializeNpy(t));
  const fixed = Buffer.from(bytes.toString('latin1').replace("'fortran_order': False", "'fortran_order': True "), 'latin1');
  assert.deepEqual(toNumbers(parseNpy(fixed)), [1, 2, 3, 4, 5, 6]);
});
