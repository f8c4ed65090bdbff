// Channel-adaptive generation against docs/algorithm.md Appendix A.2, plus its rules as properties.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { generateHardNegatives, hardnessFactor } from '../src/gca_hng/hard_negatives.ts';
import { inferChunkLayout } from '../src/samplers/chunk_layout.ts';
import { assertClose } from './helpers/close.ts';

test('Appendix A.2: P=2, K=2, D=3, Λ=(0.5,0.25,0.5), J=2, α=4, numpy seed 0 draws', () => {
  const z = tf.tensor2d([
    [1, 0, 0],
    [0, 1, 0],
    [0.9, 0.1, 0],
    [0, 0.8, 0.3],
  ]);
  const edgePara = tf.tile(tf.tensor2d([[0.5, 0.25, 0.5]]), [16, 1]) as tf.Tensor2D;
  const phi = hardnessFactor(4, 2);
  assertClose([phi], [0.135335], 1e-6, 'φ');
  const { negatives, allNegatives } = generateHardNegatives({ z, edgePara, P: 2, K: 2, phi, mixing: [0.5488135, 0.71518937], withAllNegatives: true });
  const expected = [
    [0.954881, 0.045119, 0],
    [0.835936, 0.121302, 0.022728],
    [0.302313, 0.721368, 0],
    [0, 0.909763, 0.135356],
    [0.971519, 0.028481, 0],
    [0.743753, 0.220728, 0.015337],
    [0.321611, 0.563454, 0.200502],
    [0, 0.943038, 0.085443],
  ];
  const g = negatives.arraySync();
  expected.forEach((row, i) => assertClose(g[i] as number[], row, 2e-6, `G[${i}]`));
  // The second output: block (k, m=K−1) equals the final mixture; block (k, 0) is ĥ₀.
  const all = allNegatives!.arraySync();
  assert.equal(all.length, 16);
  for (let a = 0; a < 4; a++) assertClose(all[4 + a] as number[], g[a] as number[], 1e-7, 'block (0,1)');
  // Hand check of ĥ₀ for row (k=0, a=0, n=1): ratio 0.1 + 0.9·λ per channel (A.2's hand check).
  assertClose(all[1] as number[], [0.839099, 0.130451, 0], 2e-6, 'ĥ₀(0,0,1)');
  tf.dispose([z, edgePara, negatives, allNegatives!]);
});

test('a negative already harder than the positive is kept as is; the anchor itself too', () => {
  // Anchor 0 and its positive (row 2) are far apart; negative row 1 is closer than the positive.
  const z = tf.tensor2d([
    [0, 0],
    [0.1, 0],
    [3, 0],
    [2.9, 0.1],
  ]);
  const edgePara = tf.fill([16, 2], 0.7) as tf.Tensor2D;
  const { negatives } = generateHardNegatives({ z, edgePara, P: 2, K: 2, phi: 0.5, mixing: [0, 0] });
  const g = negatives.arraySync();
  // u = 0 selects chunk 1's candidates. Anchor (0,0) = (0,0), positive (3,0): d⁺ = 3.
  // Slot 1 of chunk 1, (2.9, 0.1), is nearer than the positive (d⁻ ≈ 2.90), so it is kept unchanged.
  assertClose(g[1] as number[], [2.9, 0.1], 1e-6, 'kept negative');
  assertClose(g[0] as number[], [3, 0], 1e-6, 'same-class slot in chunk 1 is the positive itself, kept');
  tf.dispose([z, edgePara, negatives]);
});

test('with Λ = 0 every pulled negative lands at the positive distance from its anchor', () => {
  const z = tf.randomNormal([12, 5], 0, 1, 'float32', 11) as tf.Tensor2D;
  const P = 4,
    K = 3;
  const edgePara = tf.zeros([144, 5]) as tf.Tensor2D;
  const { negatives } = generateHardNegatives({ z, edgePara, P, K, phi: 1, mixing: [0, 0, 0, 0, 0, 0] });
  // u = 0: the output is the last chunk's candidate ĥ_{K−1}.
  const zs = z.arraySync();
  const g = negatives.arraySync();
  const dist = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, i) => s + (v - (b[i] as number) + 1e-6) ** 2, 0));
  for (let k = 0; k < K; k++)
    for (let a = 0; a < P; a++)
      for (let n = 0; n < P; n++) {
        const anchor = zs[k * P + a] as number[];
        const dPos = dist(anchor, zs[((k + 1) % K) * P + a] as number[]);
        const neg = zs[(K - 1) * P + n] as number[];
        const expected = dPos >= dist(anchor, neg) ? dist(anchor, neg) : dPos;
        const got = Math.sqrt((g[k * P * P + a * P + n] as number[]).reduce((s, v, i) => s + (v - (anchor[i] as number)) ** 2, 0));
        assertClose([got], [expected], 1e-4, `distance (${k},${a},${n})`);
      }
  tf.dispose([z, edgePara, negatives]);
});

test('chunk layout inference and its error', () => {
  assert.deepEqual(inferChunkLayout([5, 7, 9, 5, 7, 9]), { P: 3, K: 2 });
  assert.deepEqual(inferChunkLayout([1, 2, 1, 2, 1, 2]), { P: 2, K: 3 });
  assert.throws(() => inferChunkLayout([1, 1, 2, 2]), /chunk layout/);
  assert.throws(() => inferChunkLayout([1, 2, 3]), /chunk layout/);
});
