// The fused ops and checkpointing compute the same values and gradients as the primitive ops.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { edgeAttention, edgeAttentionWeights, gelu, geluLayerNorm, geluPrimitive, geluSumOverTargets, layerNorm, layerNormPrimitive } from '../src/nn/fused.ts';
import { checkpoint } from '../src/nn/checkpoint.ts';
import { linear } from '../src/nn/linear.ts';
import { relativeL2 } from './helpers/close.ts';

const r = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

function compareGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, g: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], what: string): void {
  const dy = r(f(...xs).shape, 99);
  const a = tf.grads((...args: tf.Tensor[]) => f(...args))(xs, dy);
  const b = tf.grads((...args: tf.Tensor[]) => g(...args))(xs, dy);
  assert.ok(relativeL2(f(...xs).dataSync(), g(...xs).dataSync()) < 1e-6, `${what}: values`);
  a.forEach((ga, i) => assert.ok(relativeL2(ga.dataSync(), (b[i] as tf.Tensor).dataSync()) < 1e-5, `${what}: gradient ${i}`));
}

test('GELU and LayerNorm', () => {
  const x = r([5, 8], 1);
  compareGrads(
    (t) => gelu(t),
    (t) => geluPrimitive(t),
    [x],
    'gelu',
  );
  const gamma = r([8], 2),
    beta = r([8], 3);
  compareGrads(
    (t, g, b) => layerNorm(t, g as tf.Tensor, b as tf.Tensor),
    (t, g, b) => layerNormPrimitive(t, g as tf.Tensor, b as tf.Tensor),
    [x, gamma, beta],
    'layerNorm',
  );
  compareGrads(
    (t, g, b) => geluLayerNorm(t, g as tf.Tensor, b as tf.Tensor),
    (t, g, b) => layerNormPrimitive(geluPrimitive(t), g as tf.Tensor, b as tf.Tensor),
    [x, gamma, beta],
    'geluLayerNorm',
  );
});

test('GELU summed over targets', () => {
  compareGrads(
    (t) => geluSumOverTargets(t as tf.Tensor3D),
    (t) => tf.sum(geluPrimitive(t), 1),
    [r([4, 4, 6], 4)],
    'geluSumOverTargets',
  );
});

test('two-key edge attention with dropout mask', () => {
  const B = 4,
    D = 6;
  const mask = tf.tensor3d(
    Array.from({ length: B * B * 2 }, (_, i) => (i % 5 === 0 ? 0 : 1 / 0.9)),
    [B, B, 2],
  );
  const composed = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
    const w = tf.mul(edgeAttentionWeights(q as tf.Tensor3D, k as tf.Tensor2D, 0.4), mask);
    const [w1, w2] = tf.split(w, 2, 2) as [tf.Tensor, tf.Tensor];
    return tf.add(tf.mul(w1, tf.reshape(v, [B, 1, D])), tf.mul(w2, tf.reshape(v, [1, B, D])));
  };
  compareGrads(
    (q, k, v) => edgeAttention(q as tf.Tensor3D, k as tf.Tensor2D, v as tf.Tensor2D, mask, 0.4),
    composed,
    [r([B, B, D], 5), r([B, D], 6), r([B, D], 7)],
    'edgeAttention',
  );
});

test('Linear with explicit-transpose gradient', () => {
  const composed = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.add(tf.matMul(x, w, false, true), b);
  compareGrads((x, w, b) => linear(x, w as tf.Tensor, b as tf.Tensor), composed, [r([7, 5], 8), r([3, 5], 9), r([3], 10)], 'linear');
});

test('a checkpointed function has the same gradients, also inside an outer gradient', () => {
  const fn = (x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(gelu(tf.matMul(x, w)), x), 1);
  const x = r([4, 4], 11),
    w = r([4, 4], 12);
  compareGrads(
    (a, b) => tf.square(checkpoint(fn, [a, b as tf.Tensor])),
    (a, b) => tf.square(fn(a, b as tf.Tensor)),
    [x, w],
    'checkpoint',
  );
});
