// Losses: hand-computed cases and the official J_sim mask positions (docs/algorithm.md Appendix A.4).
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../src/losses/cross_entropy.ts';
import { npairLoss, npairSyntheticLoss } from '../src/losses/npair.ts';
import { cosineTerm, diversityLoss, labelMix, simMask } from '../src/gca_hng/losses.ts';
import { nullLogitSoftmax } from '../src/gca_hng/gnn/node_update.ts';
import { assertClose } from './helpers/close.ts';

test('J_sim mask: official rows a·B + k·P + a vs same-class rows (Appendix A.4 and the README example)', () => {
  const zeros = (m: Float32Array) => [...m].flatMap((v, i) => (v === 0 ? [i] : []));
  assert.deepEqual(zeros(simMask(3, 2, 'reference')), [0, 3, 7, 10, 14, 17]);
  assert.deepEqual(zeros(simMask(3, 2, 'same-class')), [0, 4, 8, 9, 13, 17]);
  assert.deepEqual(zeros(simMask(4, 2, 'reference')), [0, 4, 9, 13, 18, 22, 27, 31]);
  assert.deepEqual(zeros(simMask(4, 2, 'same-class')), [0, 5, 10, 15, 16, 21, 26, 31]);
});

test('label_mix gives row k·P² + a·P + n the class of slot n', () => {
  assert.deepEqual(labelMix([7, 3, 7, 3], 2, 2), [7, 3, 7, 3, 7, 3, 7, 3]);
});

test('null-logit attention softmax (Appendix A.3)', () => {
  // One target (row 0), sources 0..3: allowed scores (0.5, −1, 2), source 3 masked (the self-loop).
  const scores = tf.tensor3d([[[0.5, -1, 2, 9]]]);
  const allowed = tf.tensor2d([[1, 1, 1, 0]]);
  const w = nullLogitSoftmax(scores, allowed).dataSync();
  assertClose(w, [0.158445, 0.035354, 0.7101, 0], 1e-6, 'α');
});

test('cross-entropy by hand', () => {
  const logits = tf.tensor2d([
    [1, 2, 3],
    [0, 0, 0],
  ]);
  const expected = (-1 + Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) + Math.log(3)) / 2;
  assertClose(crossEntropy(logits, [0, 1]).dataSync(), [expected], 1e-6, 'CE');
});

test('J_m by hand: P=2, K=2, D=1', () => {
  // z rows: chunk 0 = (1), (2); chunk 1 = (3), (−1). Logits Z₀Z₁ᵀ = [[3, −1], [6, −2]], targets identity.
  const z = tf.tensor2d([[1], [2], [3], [-1]]);
  const ce = (Math.log(Math.exp(3) + Math.exp(-1)) - 3 + (Math.log(Math.exp(6) + Math.exp(-2)) + 2)) / 2;
  const l2 = (3e-3 * 0.25 * (1 + 4 + 9 + 1)) / 2;
  assertClose(npairLoss(z, [4, 5, 4, 5], 2, 2).dataSync(), [ce + l2], 1e-5, 'J_m');
});

test('J_syn_raw by hand: P=2, K=2, D=1, the diagonal replaced by the positive', () => {
  const z = tf.tensor2d([[1], [2], [3], [-1]]);
  // G rows k·4 + a·2 + n; diagonal entries (n = a) are ignored and replaced by positives.
  const g = tf.tensor2d([[100], [0.5], [-2], [100], [100], [1.5], [0.25], [100]]);
  // k=0: anchors (1, 2), positives (3, −1): tile rows a=0: (3, 0.5); a=1: (−2, −1)
  const ce0 = (Math.log(Math.exp(3) + Math.exp(0.5)) - 3 + (Math.log(Math.exp(-4) + Math.exp(-2)) + 2)) / 2;
  const l20 = 3e-3 * 0.25 * ((1 + 4) / 2 + (9 + 0.25 + 4 + 1) / 4);
  // k=1: anchors (3, −1), positives (1, 2): tile a=0: (1, 1.5); a=1: (0.25, 2)
  const ce1 = (Math.log(Math.exp(3) + Math.exp(4.5)) - 3 + (Math.log(Math.exp(-0.25) + Math.exp(-2)) + 2)) / 2;
  const l21 = 3e-3 * 0.25 * ((9 + 1) / 2 + (1 + 2.25 + 0.0625 + 4) / 4);
  assertClose(npairSyntheticLoss(g, z, 2, 2).dataSync(), [(ce0 + l20 + ce1 + l21) / 2], 1e-5, 'J_syn_raw');
});

test('diversity loss by hand and its bounds', () => {
  // B = 2, D = 1: rows of source 0: (0, 1) → mean 0.5; source 1: (0.5, 0.5) → 0.
  const lam = tf.tensor2d([[0], [1], [0.5], [0.5]]);
  const { raw, value } = diversityLoss(lam, 2);
  assertClose(raw.dataSync(), [1 - Math.sqrt(0.5 / 4)], 1e-6, 'J_div_raw');
  assertClose(value.dataSync(), [0.01 * (1 - Math.sqrt(0.5 / 4))], 1e-8, 'J_div');
});

test('cosine term: identical directions give 0, opposite give 2, masked rows count in the mean', () => {
  const z = tf.tensor2d([
    [1, 0],
    [0, 1],
    [1, 1],
    [2, 0],
  ]); // P=2, K=2
  const g = tf.tensor2d([
    [2, 0],
    [-1, 0],
    [0, 3],
    [0, -1],
    [1, 1],
    [-1, -1],
    [5, 0],
    [0, 5],
  ]);
  const mask = new Float32Array(8).fill(1);
  const { unmasked, mean } = cosineTerm(g, z, 2, 2, mask);
  assertClose(unmasked.dataSync(), [0, 2, 0, 2, 0, 2, 0, 1], 1e-6, 'J_sim_unmasked');
  assertClose(mean.dataSync(), [7 / 8], 1e-6, 'J_sim_mean');
  mask[1] = 0;
  assertClose(cosineTerm(g, z, 2, 2, mask).mean.dataSync(), [5 / 8], 1e-6, 'masked mean');
});
