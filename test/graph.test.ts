// The correlation graph against docs/algorithm.md Appendix A.1 (computed with the reference modules).
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { correlationGraph, correlationMatrix, edgeIndex, prunedEdges } from '../src/gca_hng/correlation_graph.ts';
import { assertClose } from './helpers/close.ts';

const Z = [
  [1, 0, 0],
  [0, 1, 0],
  [0.9, 0.1, 0],
  [0, 0.8, 0.3],
];

test('edge features of Appendix A.1, source-major order, self-loops included', () => {
  const z = tf.tensor2d(Z);
  const { edges } = correlationGraph(z);
  assert.deepEqual(edges.shape, [16, 3]);
  const w = edges.arraySync();
  const expected = [
    [0.666667, 0.166667, 0.166667],
    [-0.333333, -0.333333, 0.166667],
    [0.663233, 0.136548, 0.195069],
    [-0.52381, -0.309524, 0.047619],
    [-0.333333, -0.333333, 0.166667],
    [0.166667, 0.666667, 0.166667],
  ];
  expected.forEach((row, e) => assertClose(w[e] as number[], row, 2e-6, `A0[${e}]`));
  z.dispose();
  edges.dispose();
});

test('ρ of Appendix A.1 and the properties W[r,c] = W[c,r], Σ_d W[r,r,d] = 1', () => {
  const z = tf.tensor2d(Z);
  const rho = correlationMatrix(z).arraySync();
  const expected = [
    [1, -0.5, 0.99485, -0.785714],
    [-0.5, 1, -0.409644, 0.928571],
    [0.99485, -0.409644, 1, -0.718967],
    [-0.785714, 0.928571, -0.718967, 1],
  ];
  expected.forEach((row, r) => assertClose(rho[r] as number[], row, 2e-6, `rho[${r}]`));
  const w = correlationGraph(tf.randomNormal([6, 5], 0, 1, 'float32', 3)).edges.arraySync();
  for (let r = 0; r < 6; r++) {
    assertClose([w[r * 6 + r]!.reduce((a, b) => a + b, 0)], [1], 1e-5, 'diagonal sum');
    for (let c = 0; c < 6; c++) assertClose(w[r * 6 + c] as number[], w[c * 6 + r] as number[], 1e-7, `W[${r},${c}]`);
  }
  z.dispose();
});

test('edge index and threshold pruning', () => {
  assert.deepEqual(Array.from(edgeIndex(2)), [0, 0, 0, 1, 1, 0, 1, 1]);
  const rho = Float32Array.from([1, -0.5, 0.2, 1]);
  assert.deepEqual(prunedEdges(rho, 2, 0.1), [
    [0, 0],
    [1, 0],
    [1, 1],
  ]);
});
