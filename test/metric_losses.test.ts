// Metric losses, distances and reducers against hand-computed values on tiny inputs and against
// plain-JS re-implementations of their formulas (written independently of the library code below),
// plus properties and gradients on the wasm backend.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  AvgNonZeroReducer,
  ContrastiveLoss,
  CosineSimilarity,
  DotProductSimilarity,
  LOSS_NAMES,
  LpDistance,
  MeanReducer,
  MultiSimilarityLoss,
  NPairLoss,
  ProxyAnchorLoss,
  ProxyNcaLoss,
  SumReducer,
  ThresholdReducer,
  TripletMarginLoss,
  type TripletMining,
  createLoss,
  isPairBased,
  isProxyBased,
  lossInfo,
  makeDistance,
  resolveLossName,
} from '../src/losses/metric/index.ts';
import { npairLoss } from '../src/losses/npair.ts';
import { Random } from '../src/engine/random.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { assertClose } from './helpers/close.ts';

const scalar = (t: tf.Tensor) => t.dataSync()[0] as number;
const rawL2 = new LpDistance({ normalizeEmbeddings: false });

// ---------- plain-JS reference math ----------
type Mat = number[][];
const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * (b[i] as number), 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));
const unit = (a: number[]) => a.map((v) => v / norm(a));
const euclid = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, i) => s + (v - (b[i] as number)) ** 2, 0));
const cosMat = (X: Mat, Y: Mat): Mat => X.map((x) => Y.map((y) => dot(unit(x), unit(y))));
const l2Mat = (X: Mat, Y: Mat): Mat => X.map((x) => Y.map((y) => euclid(x, y)));
function randomMat(rng: Random, n: number, d: number): Mat {
  return Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
}

/** Triplet loss over distance-like values d (smaller = closer), mean of the non-zero losses. */
function refTriplet(d: Mat, y: number[], margin: number, mining: TripletMining): number {
  const B = y.length;
  const losses: number[] = [];
  const isPos = (a: number, p: number) => a !== p && y[a] === y[p];
  const isNeg = (a: number, n: number) => y[a] !== y[n];
  for (let a = 0; a < B; a++) {
    const row = d[a] as number[];
    const P = [...Array(B).keys()].filter((p) => isPos(a, p));
    const N = [...Array(B).keys()].filter((n) => isNeg(a, n));
    if (mining === 'all') for (const p of P) for (const n of N) losses.push(Math.max(0, (row[p] as number) - (row[n] as number) + margin));
    if (mining === 'batch-hard' && P.length && N.length) {
      const dp = Math.max(...P.map((p) => row[p] as number));
      const dn = Math.min(...N.map((n) => row[n] as number));
      losses.push(Math.max(0, dp - dn + margin));
    }
    if (mining === 'semi-hard') {
      for (const p of P) {
        const dp = row[p] as number;
        const farther = N.map((n) => row[n] as number).filter((v) => v > dp);
        const dn = farther.length ? Math.min(...farther) : Math.max(...N.map((n) => row[n] as number));
        losses.push(Math.max(0, dp - dn + margin));
      }
    }
  }
  const nz = losses.filter((v) => v > 0);
  return nz.length ? nz.reduce((s, v) => s + v, 0) / nz.length : 0;
}

/** The official MS loss loop (MalongTech ms_loss.py) with λ = base, on a similarity matrix. */
function refMultiSimilarity(S: Mat, y: number[], alpha: number, beta: number, base: number, eps: number): number {
  let total = 0;
  for (let i = 0; i < y.length; i++) {
    const row = S[i] as number[];
    const pos = row.filter((_, j) => j !== i && y[j] === y[i]);
    const neg = row.filter((_, j) => y[j] !== y[i]);
    if (!pos.length || !neg.length) continue;
    const negM = neg.filter((s) => s + eps > Math.min(...pos));
    const posM = pos.filter((s) => s - eps < Math.max(...neg));
    if (!negM.length || !posM.length) continue;
    total += Math.log(1 + posM.reduce((a, s) => a + Math.exp(-alpha * (s - base)), 0)) / alpha;
    total += Math.log(1 + negM.reduce((a, s) => a + Math.exp(beta * (s - base)), 0)) / beta;
  }
  return total / y.length;
}

/** The official Proxy-Anchor forward (code/losses.py), in float64. */
function refProxyAnchor(X: Mat, P: Mat, y: number[], mrg: number, alpha: number): number {
  const cos = cosMat(X, P);
  const C = P.length;
  let pos = 0;
  let neg = 0;
  for (let c = 0; c < C; c++) {
    let ps = 0;
    let ns = 0;
    y.forEach((yi, i) => {
      const s = (cos[i] as number[])[c] as number;
      if (yi === c) ps += Math.exp(-alpha * (s - mrg));
      else ns += Math.exp(alpha * (s + mrg));
    });
    pos += Math.log(1 + ps);
    neg += Math.log(1 + ns);
  }
  return pos / new Set(y).size + neg / C;
}

// ---------- distances ----------

test('distances by hand: L2, L2², L1, normalised L2, cosine, dot; pairwise = matrix entries', () => {
  const x = tf.tensor2d([
    [0, 0],
    [3, 4],
    [1, 0],
  ]);
  assertClose(rawL2.matrix(x).dataSync(), [0, 5, 1, 5, 0, Math.sqrt(20), 1, Math.sqrt(20), 0], 1e-5, 'L2');
  assertClose(new LpDistance({ normalizeEmbeddings: false, power: 2 }).matrix(x).dataSync(), [0, 25, 1, 25, 0, 20, 1, 20, 0], 1e-4, 'L2²');
  assertClose(new LpDistance({ normalizeEmbeddings: false, p: 1 }).matrix(x).dataSync(), [0, 7, 1, 7, 0, 6, 1, 6, 0], 1e-5, 'L1');
  // Normalised: (3,4) → (0.6, 0.8); (0,0) stays (0,0) (PyTorch's F.normalize clamps the norm).
  const y = tf.tensor2d([
    [3, 4],
    [1, 0],
  ]);
  assertClose(new LpDistance().matrix(y).dataSync(), [0, Math.sqrt(0.8), Math.sqrt(0.8), 0], 1e-5, 'normalised L2');
  assertClose(new CosineSimilarity().matrix(y).dataSync(), [1, 0.6, 0.6, 1], 1e-6, 'cosine');
  assertClose(new DotProductSimilarity({ normalizeEmbeddings: false }).matrix(y).dataSync(), [25, 3, 3, 1], 1e-5, 'dot');
  assertClose(new DotProductSimilarity().matrix(y).dataSync(), [1, 0.6, 0.6, 1], 1e-6, 'dot normalises by default (PML)');
  // With a reference set: [2, 3].
  const ref = tf.tensor2d([
    [0, 0],
    [3, 4],
    [1, 0],
  ]);
  assert.deepEqual(rawL2.matrix(y, ref).shape, [2, 3]);
  assertClose(
    rawL2
      .pairwise(
        y,
        tf.tensor2d([
          [0, 0],
          [1, 0],
        ]),
      )
      .dataSync(),
    [5, 0],
    1e-5,
    'pairwise',
  );
  assert.equal(new CosineSimilarity().isInverted, true);
  assert.equal(rawL2.isInverted, false);
  assertClose(rawL2.margin(3, 1).dataSync(), [2], 0, 'distance margin x − y');
  assertClose(new CosineSimilarity().margin(3, 1).dataSync(), [-2], 0, 'similarity margin y − x');
  assert.throws(() => rawL2.matrix(tf.tensor1d([1, 2]) as unknown as tf.Tensor2D), /2-D tensor/);
  assert.throws(() => rawL2.matrix(y, tf.tensor2d([[1, 2, 3]])), /features/);
  assert.throws(() => new CosineSimilarity({ normalizeEmbeddings: false as unknown as true }), /always normalises/);
  assert.equal(makeDistance('squared-euclidean').power, 2);
});

test('Euclidean distance has a finite gradient at coincident points (√0 with zero slope)', () => {
  const x = tf.tensor2d([
    [1, 2],
    [1, 2],
    [4, 6],
  ]);
  const g = tf
    .grad((v: tf.Tensor) => tf.sum(rawL2.matrix(v as tf.Tensor2D)))(x)
    .dataSync();
  for (const v of g) assert.ok(Number.isFinite(v), `gradient ${v}`);
  // Rows 0 and 1 coincide; each gets 2·(x − x₂)/‖x − x₂‖ = 2·(−3, −4)/5 from the pairs with row 2.
  assertClose(g, [-1.2, -1.6, -1.2, -1.6, 2.4, 3.2], 1e-5, 'd Σ‖·‖ / dx');
});

// ---------- reducers ----------

test('reducers by hand: mean, avg-non-zero, sum, threshold, with a mask; empty gives a connected zero', () => {
  const l = tf.tensor1d([0, 1, 2, 0.5]);
  const mask = [1, 1, 0, 1];
  assertClose(new MeanReducer().reduce(l, mask).dataSync(), [1.5 / 3], 1e-7, 'mean');
  assertClose(new AvgNonZeroReducer().reduce(l, mask).dataSync(), [0.75], 1e-7, 'avg-non-zero');
  assertClose(new SumReducer().reduce(l, mask).dataSync(), [1.5], 1e-7, 'sum');
  assertClose(new ThresholdReducer(0.6).reduce(l, mask).dataSync(), [1], 1e-7, 'threshold low');
  assertClose(new ThresholdReducer(undefined, 1.5).reduce(l).dataSync(), [1.5 / 3], 1e-7, 'threshold high, no mask: 0, 1, 0.5 kept');
  const x = tf.tensor1d([0, 0]);
  const g = tf.grad((v: tf.Tensor) => new AvgNonZeroReducer().reduce(tf.relu(v)))(x);
  assert.deepEqual([...g.dataSync()], [0, 0]);
  assert.throws(() => new MeanReducer().reduce(l, [1, 1]), /mask has 2 entries/);
});

// ---------- triplet ----------

// 1-D points (raw Euclidean): x = 0, 1 (class A), 1.5, 4 (class B); margin 1.
// d01 = 1, d02 = 1.5, d03 = 4, d12 = 0.5, d13 = 3, d23 = 2.5.
const tx = () => tf.tensor2d([[0], [1], [1.5], [4]]);
const ty = [0, 0, 1, 1];

test('triplet, all triplets, by hand', () => {
  // (a,p,n): (0,1,2) 1−1.5+1 = 0.5, (0,1,3) −2 → 0, (1,0,2) 1−0.5+1 = 1.5, (1,0,3) −1 → 0,
  // (2,3,0) 2.5−1.5+1 = 2, (2,3,1) 2.5−0.5+1 = 3, (3,2,0) −0.5 → 0, (3,2,1) 2.5−3+1 = 0.5.
  const loss = new TripletMarginLoss({ margin: 1, distance: rawL2 });
  assertClose(loss.compute(tx(), ty).dataSync(), [7.5 / 5], 1e-5, 'avg over the 5 non-zero');
  const mean = new TripletMarginLoss({ margin: 1, distance: rawL2, reducer: 'mean' });
  assertClose(mean.compute(tx(), ty).dataSync(), [7.5 / 8], 1e-5, 'mean over the 8 triplets');
  const smooth = new TripletMarginLoss({ margin: 1, distance: rawL2, reducer: 'mean', smooth: true });
  const sp = (v: number) => Math.log(1 + Math.exp(v));
  const expected = [0.5, -2, 1.5, -1, 2, 3, -0.5, 0.5].map(sp).reduce((a, b) => a + b) / 8;
  assertClose(smooth.compute(tx(), ty).dataSync(), [expected], 1e-5, 'smooth');
});

test('triplet, batch-hard (Hermans et al.) picks the farthest positive and the closest negative', () => {
  // a0: p1 (1), n2 (1.5) → 0.5; a1: p0 (1), n2 (0.5) → 1.5; a2: p3 (2.5), n1 (0.5) → 3; a3: p2 (2.5), n1 (3) → 0.5.
  const loss = new TripletMarginLoss({ margin: 1, distance: rawL2, mining: 'batch-hard' });
  assertClose(loss.compute(tx(), ty).dataSync(), [5.5 / 4], 1e-5, 'batch-hard');
  // Only the picked entries receive gradient: anchor 2's hardest negative is x1 (not x0).
  const x = tx();
  const g = tf
    .grad((v: tf.Tensor) => loss.compute(v as tf.Tensor2D, ty))(x)
    .dataSync();
  // Each term is |x_a − x_p| − |x_a − x_n| + 1 (1-D), so ∂ is ±1 on the three points involved:
  // a0: |x0−x1| − |x0−x2| → ∂x0: −1 + 1 = 0, ∂x1: +1, ∂x2: −1.
  // a1: |x1−x0| − |x1−x2| → ∂x1: +1 + 1 = 2, ∂x0: −1, ∂x2: −1.
  // a2: |x2−x3| − |x2−x1| → ∂x2: −1 − 1 = −2, ∂x3: +1, ∂x1: +1.
  // a3: |x3−x2| − |x3−x1| → ∂x3: +1 − 1 = 0, ∂x2: −1, ∂x1: +1.
  // Sum / 4 (all four losses are non-zero): x0 −1/4, x1 5/4, x2 −5/4, x3 1/4.
  assertClose(g, [-0.25, 1.25, -1.25, 0.25], 1e-5, 'gradient only through the hardest pairs');
});

test('triplet, semi-hard (FaceNet / TF triplet_semihard_loss rule), by hand', () => {
  // (0,1): d=1, negatives 1.5, 4 are farther → closest of them 1.5 → 0.5.
  // (1,0): d=1, negatives 0.5, 3 → only 3 is farther → 1 − 3 + 1 → 0.
  // (2,3): d=2.5, negatives 1.5, 0.5, none farther → the farthest, 1.5 → 2.
  // (3,2): d=2.5, negatives 4, 3 both farther → the closest, 3 → 0.5.
  const loss = new TripletMarginLoss({ margin: 1, distance: rawL2, mining: 'semi-hard' });
  assertClose(loss.compute(tx(), ty).dataSync(), [3 / 3], 1e-5, 'avg-non-zero');
  const mean = new TripletMarginLoss({ margin: 1, distance: rawL2, mining: 'semi-hard', reducer: 'mean' });
  assertClose(mean.compute(tx(), ty).dataSync(), [3 / 4], 1e-5, 'mean over positive pairs');
});

test('triplet loss is 0 when every margin is satisfied, for every mining', () => {
  const x = tf.tensor2d([[0], [0.1], [10], [10.1]]);
  for (const mining of ['all', 'semi-hard', 'batch-hard'] as const) {
    const loss = new TripletMarginLoss({ margin: 1, distance: rawL2, mining });
    assert.equal(scalar(loss.compute(x, ty)), 0, mining);
    const g = tf.grad((v: tf.Tensor) => loss.compute(v as tf.Tensor2D, ty))(x);
    assert.ok(
      [...g.dataSync()].every((v) => v === 0),
      `${mining}: zero gradient`,
    );
  }
});

test('triplet matches the plain-JS reference on random data, L2 and cosine (inverted direction)', () => {
  const rng = new Random(7);
  const X = randomMat(rng, 9, 4);
  const y = [0, 1, 2, 0, 1, 2, 0, 1, 2];
  const x = tf.tensor2d(X);
  for (const mining of ['all', 'semi-hard', 'batch-hard'] as const) {
    const l2 = new TripletMarginLoss({ margin: 0.3, mining });
    const nX = X.map(unit);
    assertClose(l2.compute(x, y).dataSync(), [refTriplet(l2Mat(nX, nX), y, 0.3, mining)], 1e-5, `L2 ${mining}`);
    const cos = new TripletMarginLoss({ margin: 0.2, mining, distance: 'cosine' });
    const negCos = cosMat(X, X).map((r) => r.map((v) => -v));
    assertClose(cos.compute(x, y).dataSync(), [refTriplet(negCos, y, 0.2, mining)], 1e-5, `cosine ${mining}`);
  }
});

// ---------- contrastive ----------

test('contrastive by hand: positive and negative pairs reduced separately', () => {
  // posMargin 0.25, negMargin 2 on the 1-D points above, ordered pairs.
  // Positives: d01 = 1 → 0.75 (twice), d23 = 2.5 → 2.25 (twice): mean of non-zero 1.5.
  // Negatives: d02 1.5 → 0.5, d03 4 → 0, d12 0.5 → 1.5, d13 3 → 0 (each twice): non-zero mean 1.
  const loss = new ContrastiveLoss({ posMargin: 0.25, negMargin: 2, distance: rawL2 });
  assertClose(loss.compute(tx(), ty).dataSync(), [2.5], 1e-5, 'contrastive');
  const t = loss.terms({ matrix: rawL2.matrix(tx()), labels: ty, refLabels: ty, selfRef: true });
  assertClose([scalar(t.pos), scalar(t.neg)], [1.5, 1], 1e-5, 'terms');
  // Cosine: pos [m⁺ − s]_+, neg [s − m⁻]_+. Unit vectors at 0°, 90° (A) and 60° (B): s(0,1)=0, s(0,2)=0.5, s(1,2)=cos30°.
  const u = tf.tensor2d([
    [1, 0],
    [0, 1],
    [0.5, Math.sqrt(3) / 2],
  ]);
  const cl = new ContrastiveLoss({ posMargin: 0.9, negMargin: 0.4, distance: 'cosine', reducer: 'mean' });
  const s12 = Math.sqrt(3) / 2;
  assertClose(cl.compute(u, [0, 0, 1]).dataSync(), [0.9 + ((0.5 - 0.4) * 2 + (s12 - 0.4) * 2) / 4], 1e-5, 'cosine contrastive');
});

test('contrastive with reference embeddings: no self-pair removal, ref labels used', () => {
  const q = tf.tensor2d([[0], [2]]);
  const ref = tf.tensor2d([[0], [1], [3]]);
  // Pairs (q labels 0, 0; ref labels 0, 1, 0): (q0,r0) pos d 0 → 0 (kept: not a self-pair); (q0,r1) neg d 1 → 2−1 = 1;
  // (q0,r2) pos d 3 → 3; (q1,r0) pos d 2 → 2; (q1,r1) neg d 1 → 1; (q1,r2) pos d 1 → 1.
  // Mean over the 4 positive pairs 6/4, over the 2 negative pairs 2/2.
  const loss = new ContrastiveLoss({ negMargin: 2, distance: rawL2, reducer: 'mean' });
  assertClose(loss.compute(q, [0, 0], { ref, refLabels: [0, 1, 0] }).dataSync(), [6 / 4 + 2 / 2], 1e-5, 'with ref');
  assert.throws(() => loss.compute(q, [0, 0], { ref }), /refLabels/);
});

// ---------- multi-similarity ----------

test('multi-similarity by hand: mining drops anchors 0 and 3, weighting on anchors 1 and 2', () => {
  // Unit vectors at angles 0, 0.6 (class 0), 0.9, 2.0 (class 1); S_ij = cos(θ_i − θ_j).
  const th = [0, 0.6, 0.9, 2.0];
  const x = tf.tensor2d(th.map((t) => [Math.cos(t), Math.sin(t)]));
  const y = [0, 0, 1, 1];
  const S = (i: number, j: number) => Math.cos((th[i] as number) - (th[j] as number));
  // Anchor 0: P = {S01 = .825}, N = {S02 = .622, S03 = −.416}: no S_an + 0.1 > .825 → skipped.
  // Anchor 1: P = {S10 = .825}, N = {S12 = .955, S13 = .170}: N' = {S12}, P' = {S10}.
  // Anchor 2: P = {S23 = .454}, N = {S20 = .622, S21 = .955}: both negatives and the positive kept.
  // Anchor 3: P = {S32 = .454}, N = {S30 = −.416, S31 = .170}: no negative within 0.1 → skipped.
  const l1 = Math.log(1 + Math.exp(-2 * (S(1, 0) - 0.5))) / 2 + Math.log(1 + Math.exp(50 * (S(1, 2) - 0.5))) / 50;
  const l2 = Math.log(1 + Math.exp(-2 * (S(2, 3) - 0.5))) / 2 + Math.log(1 + Math.exp(50 * (S(2, 0) - 0.5)) + Math.exp(50 * (S(2, 1) - 0.5))) / 50;
  const loss = new MultiSimilarityLoss();
  assertClose(loss.compute(x, y).dataSync(), [(l1 + l2) / 4], 1e-5, 'MS');
  const ref = refMultiSimilarity(
    th.map((i) => th.map((j) => Math.cos(i - j))),
    y,
    2,
    50,
    0.5,
    0.1,
  );
  assertClose([ref], [(l1 + l2) / 4], 1e-12, 'reference loop agrees with the hand computation');
  // Without mining (PML's MultiSimilarityLoss over all pairs): every anchor counts.
  let all = 0;
  for (let i = 0; i < 4; i++) {
    let p = 0;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      if (j === i) continue;
      if (y[j] === y[i]) p += Math.exp(-2 * (S(i, j) - 0.5));
      else n += Math.exp(50 * (S(i, j) - 0.5));
    }
    all += Math.log(1 + p) / 2 + Math.log(1 + n) / 50;
  }
  assertClose(new MultiSimilarityLoss({ mining: false }).compute(x, y).dataSync(), [all / 4], 1e-5, 'MS without mining');
});

test('multi-similarity matches the official loop on random data', () => {
  const rng = new Random(11);
  const X = randomMat(rng, 12, 5);
  const y = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3];
  const ref = refMultiSimilarity(cosMat(X, X), y, 2, 50, 0.5, 0.1);
  assert.ok(ref > 0);
  assertClose(new MultiSimilarityLoss().compute(tf.tensor2d(X), y).dataSync(), [ref], 1e-4, 'MS random');
  assertClose(
    new MultiSimilarityLoss({ alpha: 3, beta: 40, base: 0.3, epsilon: 0.2 }).compute(tf.tensor2d(X), y).dataSync(),
    [refMultiSimilarity(cosMat(X, X), y, 3, 40, 0.3, 0.2)],
    1e-4,
    'MS other hyper-parameters',
  );
  // With β = 2 and λ = 0 every mined negative weighs in, so the mining boundary shows in the value
  // (with β = 50 a negative near the boundary contributes ~e^{-12}).
  const soft = refMultiSimilarity(cosMat(X, X), y, 2, 2, 0, 0.1);
  assertClose(new MultiSimilarityLoss({ beta: 2, base: 0 }).compute(tf.tensor2d(X), y).dataSync(), [soft], 1e-5, 'MS β = 2, λ = 0');
  assert.ok(Math.abs(soft - refMultiSimilarity(cosMat(X, X), y, 2, 2, 0, 0.3)) > 1e-3, 'the value depends on ε here');
});

// ---------- proxy losses ----------

function proxyState(P: Mat): StateDict {
  const sd = new StateDict();
  sd.set('loss.proxies', tf.tensor2d(P));
  return sd;
}

test('proxy-anchor matches the official formula; divides by proxies with positives and by C', () => {
  const X = [
    [1, 0.2],
    [0.3, 1],
    [-1, 0.4],
    [0.9, -0.1],
  ];
  const P = [
    [1, 0],
    [0, 1],
    [-1, -1],
  ]; // class 2 has no sample in the batch
  const y = [0, 1, 1, 0];
  const loss = new ProxyAnchorLoss({ sd: proxyState(P), numClasses: 3, embeddingSize: 2 });
  assertClose(loss.compute(tf.tensor2d(X), y).dataSync(), [refProxyAnchor(X, P, y, 0.1, 32)], 2e-4, 'proxy-anchor');
  const l2 = new ProxyAnchorLoss({ sd: proxyState(P), numClasses: 3, embeddingSize: 2 }, { margin: 0.2, alpha: 16 });
  assertClose(l2.compute(tf.tensor2d(X), y).dataSync(), [refProxyAnchor(X, P, y, 0.2, 16)], 2e-4, 'proxy-anchor δ 0.2, α 16');
});

test('proxy-anchor: gradient flows to the proxies (and embeddings); proxies are created kaiming-normal once', () => {
  const sd = new StateDict();
  const loss = new ProxyAnchorLoss({ sd, numClasses: 4, embeddingSize: 3, rng: new Random(1) });
  assert.ok(sd.has('loss.proxies'));
  assert.deepEqual(sd.trainable(['loss.']), ['loss.proxies']);
  const x = tf.variable(
    tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
      [1, 1, 0],
    ]),
  );
  const { grads } = tf.variableGrads(() => loss.compute(x, [0, 1, 2, 0]), [x, loss.proxies()]);
  for (const v of [x, loss.proxies()]) {
    const g = (grads[v.name] as tf.Tensor).dataSync();
    assert.ok(g.every(Number.isFinite) && g.some((e) => e !== 0), `${v.name} gradient`);
  }
  // Reused, not re-initialised; wrong shapes are refused.
  const before = [...loss.proxies().dataSync()];
  const again = new ProxyAnchorLoss({ sd, numClasses: 4, embeddingSize: 3 });
  assert.deepEqual([...again.proxies().dataSync()], before);
  assert.throws(() => new ProxyAnchorLoss({ sd, numClasses: 5, embeddingSize: 3 }), /expected \[5, 3\]/);
  assert.throws(() => new ProxyAnchorLoss({ sd: new StateDict(), numClasses: 5, embeddingSize: 3 }), /seeded rng/);
  // kaiming_normal_(mode='fan_out') on [C, D]: std √(2/C).
  const big = new ProxyAnchorLoss({ sd: new StateDict(), numClasses: 50, embeddingSize: 400, rng: new Random(3) });
  const v = Array.from(big.proxies().dataSync() as Float32Array);
  const std = Math.sqrt(v.reduce((s, e) => s + e * e, 0) / v.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 50)) < 0.005, `std ${std}`);
  // Seeded: the same seed gives the same proxies.
  const a = new ProxyAnchorLoss({ sd: new StateDict(), numClasses: 3, embeddingSize: 2, rng: new Random(9) }).proxies().dataSync();
  const b = new ProxyAnchorLoss({ sd: new StateDict(), numClasses: 3, embeddingSize: 2, rng: new Random(9) }).proxies().dataSync();
  assert.deepEqual([...a], [...b]);
});

test('proxy-nca (PML form) by hand: softmax over −s·‖x̂ − p̂‖²', () => {
  const X = [
    [1, 0],
    [0, 2],
    [3, 3],
  ];
  const P = [
    [2, 0],
    [0, 1],
    [-1, 1],
  ];
  const y = [0, 1, 2];
  const s = 3;
  let expected = 0;
  X.forEach((x, i) => {
    const logits = P.map((p) => -s * euclid(unit(x), unit(p)) ** 2);
    const lse = Math.log(logits.reduce((a, v) => a + Math.exp(v), 0));
    expected += lse - (logits[y[i] as number] as number);
  });
  const loss = new ProxyNcaLoss({ sd: proxyState(P), numClasses: 3, embeddingSize: 2 }, { softmaxScale: s });
  assertClose(loss.compute(tf.tensor2d(X), y).dataSync(), [expected / 3], 1e-5, 'proxy-nca');
  assert.throws(() => loss.compute(tf.tensor2d(X), [0, 1, 3]), /outside \[0, 3\)/);
});

// ---------- N-pair ----------

test("npair equals GCA-HNG's official N-pair loss, from embeddings and from the matrix", () => {
  const rng = new Random(5);
  const X = randomMat(rng, 6, 4); // P = 3, K = 2
  const y = [4, 8, 1, 4, 8, 1];
  const z = tf.tensor2d(X);
  const loss = new NPairLoss();
  const official = scalar(npairLoss(z, y, 3, 2));
  assertClose(loss.compute(z, y).dataSync(), [official], 1e-5, 'K = 2');
  const X3 = randomMat(rng, 6, 3); // P = 2, K = 3
  const y3 = [0, 1, 0, 1, 0, 1];
  assertClose(loss.compute(tf.tensor2d(X3), y3).dataSync(), [scalar(npairLoss(tf.tensor2d(X3), y3, 2, 3))], 1e-5, 'K = 3');
  // By hand: P = 2, K = 2, D = 1 (the same case as test/losses.test.ts).
  const hand = (Math.log(Math.exp(3) + Math.exp(-1)) - 3 + (Math.log(Math.exp(6) + Math.exp(-2)) + 2)) / 2 + (3e-3 * 0.25 * 15) / 2;
  assertClose(loss.compute(tf.tensor2d([[1], [2], [3], [-1]]), [4, 5, 4, 5]).dataSync(), [hand], 1e-5, 'by hand');
  assert.throws(() => loss.compute(z, [0, 0, 1, 1, 2, 2]), /chunk layout/);
});

// ---------- every loss: gradients on this backend, finite differences ----------

test('every loss has finite, non-zero gradients w.r.t. the embeddings on this backend', () => {
  const rng = new Random(21);
  const y = [0, 1, 2, 0, 1, 2];
  for (const name of LOSS_NAMES) {
    const sd = new StateDict();
    const loss = createLoss(name, undefined, { sd, numClasses: 3, embeddingSize: 4, rng: new Random(2) });
    const x = tf.variable(tf.tensor2d(randomMat(rng, 6, 4)));
    const vars = [x, ...(sd.has('loss.proxies') ? [sd.get('loss.proxies')] : [])];
    const { value, grads } = tf.variableGrads(() => loss.compute(x, y), vars);
    assert.ok(Number.isFinite(scalar(value)) && scalar(value) > 0, `${name}: value ${scalar(value)}`);
    for (const v of vars) {
      const g = (grads[v.name] as tf.Tensor).dataSync();
      assert.ok(g.every(Number.isFinite) && g.some((e) => e !== 0), `${name}: gradient for ${v.name}`);
    }
  }
});

test('analytic gradients agree with central finite differences (triplet L2, multi-similarity, contrastive)', () => {
  const rng = new Random(33);
  const X = randomMat(rng, 6, 3);
  const y = [0, 1, 2, 0, 1, 2];
  const cases = [
    new TripletMarginLoss({ margin: 0.5, mining: 'all', reducer: 'mean' }),
    new MultiSimilarityLoss({ mining: false, beta: 10 }),
    new ContrastiveLoss({ negMargin: 2, distance: rawL2, reducer: 'mean' }), // no pair distance within 0.5 of the hinge at 2
  ];
  for (const loss of cases) {
    const f = (M: Mat) => scalar(tf.tidy(() => loss.compute(tf.tensor2d(M), y)));
    const g = tf
      .grad((v: tf.Tensor) => loss.compute(v as tf.Tensor2D, y))(tf.tensor2d(X))
      .dataSync();
    const h = 1e-2;
    for (let i = 0; i < 6; i++) {
      for (let d = 0; d < 3; d++) {
        const up = X.map((r) => [...r]);
        const dn = X.map((r) => [...r]);
        (up[i] as number[])[d] = ((up[i] as number[])[d] as number) + h;
        (dn[i] as number[])[d] = ((dn[i] as number[])[d] as number) - h;
        const fd = (f(up) - f(dn)) / (2 * h);
        const an = g[i * 3 + d] as number;
        assert.ok(Math.abs(fd - an) < 2e-3 + 0.02 * Math.abs(fd), `${loss.name}[${i},${d}]: analytic ${an} vs finite difference ${fd}`);
      }
    }
  }
});

// ---------- registry ----------

test('registry: names, aliases, flags, defaults and refusals with reasons', () => {
  assert.deepEqual([...LOSS_NAMES].sort(), ['contrastive', 'multi-similarity', 'npair', 'proxy-anchor', 'proxy-nca', 'triplet']);
  assert.equal(resolveLossName('ms'), 'multi-similarity');
  assert.equal(resolveLossName('Proxy_Anchor'), 'proxy-anchor');
  assert.throws(() => resolveLossName('arcface'), /expected one of triplet, contrastive, multi-similarity, npair, proxy-anchor, proxy-nca/);
  assert.equal(isPairBased('npair'), true);
  assert.equal(isProxyBased('proxy-nca'), true);
  assert.equal(isPairBased('proxy-anchor'), false);
  assert.deepEqual(lossInfo('ms').defaults, { alpha: 2, beta: 50, base: 0.5, epsilon: 0.1, mining: true, distance: 'cosine', reducer: 'mean' });
  assert.deepEqual(lossInfo('proxy-anchor').defaults, { margin: 0.1, alpha: 32 });
  assert.equal(lossInfo('npair').needsChunkLayout, true);
  const t = createLoss('triplet', { mining: 'batch-hard', margin: 0.2 });
  assert.equal(t.mining, 'batch-hard');
  assert.equal(t.margin, 0.2);
  assert.throws(() => createLoss('proxy-anchor'), /proxy-based: give it a StateDict/);
  assert.throws(() => createLoss('triplet', { mining: 'hardest' as TripletMining }), /unknown mining/);
  assert.throws(
    () =>
      new ProxyAnchorLoss({ sd: proxyState([[1, 0]]), numClasses: 1, embeddingSize: 2 }).compute(tf.tensor2d([[1, 0]]), [0], {
        ref: tf.tensor2d([[1, 0]]),
        refLabels: [0],
      }),
    /not supported/,
  );
});
