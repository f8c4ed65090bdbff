// The native k-NN engine (native/src/knn.cc) finds exactly the neighbours of the float64
// TypeScript engine: values on a 1/8 grid make every float32 product exact, and the grid makes
// many scores equal, so the tie order (lower index, or the query's class first) is checked too.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embeddings, nearestNeighbours, seededRandom, type KnnOptions } from '../src/metrics/index.ts';
import { loadNativeAddon, nativeStatus } from '../src/engine/native_kernels.ts';

const random = seededRandom(3);

function gridData(rows: number, dim: number): Float32Array {
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < data.length; i++) data[i] = Math.round((random() - 0.5) * 8) / 8;
  return data;
}

const CASES = [
  { name: 'self search, symmetric tiles, self excluded', rows: 2600, dim: 24, k: 20, self: true, bias: false, tie: false },
  { name: 'query × gallery with a column bias (k-means)', rows: 2300, dim: 16, k: 7, self: false, bias: true, tie: false },
  { name: 'query × gallery, same label first on ties (In-Shop)', rows: 1800, dim: 8, k: 5, self: false, bias: false, tie: true },
  { name: 'self search with the label tie rule', rows: 2100, dim: 4, k: 9, self: true, bias: false, tie: true },
];

if (loadNativeAddon()) {
  for (const c of CASES) {
    test(`native k-NN = TypeScript k-NN: ${c.name}`, async () => {
      const data = gridData(c.rows, c.dim);
      const galleryRows = c.rows - 300;
      const queries = embeddings(data, c.rows, c.dim);
      const labels = Int32Array.from({ length: c.rows }, (_, i) => (i * 7) % 13);
      const options: KnnOptions = { k: c.k };
      if (c.self) options.excludeSelf = true;
      if (c.bias) options.bias = Float64Array.from({ length: galleryRows }, () => Math.round(random() * 4) / 4);
      if (c.tie) options.positivesFirst = { queryLabels: labels, galleryLabels: c.self ? labels : labels.slice(0, galleryRows) };
      const gallery = c.self ? ('self' as const) : embeddings(data.slice(0, galleryRows * c.dim), galleryRows, c.dim);
      const expected = await nearestNeighbours(queries, gallery, { ...options, engine: 'js' });
      const actual = await nearestNeighbours(queries, gallery, { ...options, engine: 'native' });
      assert.equal(actual.k, c.k);
      assert.deepEqual(actual.indices, expected.indices);
      assert.deepEqual(actual.scores, expected.scores);
    });
  }
  test('native k-NN = TypeScript k-NN over several symmetric tile rows (4000 × 128)', async () => {
    const x = embeddings(gridData(4000, 128), 4000, 128);
    const small = await nearestNeighbours(x, 'self', { k: 3, excludeSelf: true, engine: 'js' });
    const native = await nearestNeighbours(x, 'self', { k: 3, excludeSelf: true, engine: 'native' });
    assert.deepEqual(native.indices, small.indices);
  });
} else {
  test('without the addon the native k-NN engine refuses with the reason', async () => {
    const x = embeddings(gridData(10, 2), 10, 2);
    await assert.rejects(nearestNeighbours(x, 'self', { k: 2, engine: 'native' }), /engine 'native' is not available/);
    assert.ok(nativeStatus().reason.length > 0);
  });
}
