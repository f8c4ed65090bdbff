// Hard-negative generation baselines against hand-computed values on tiny inputs, plain-JS
// re-implementations of the official code where there is one (EE's HPHN triplet), properties each
// paper states, gradients on the wasm backend, determinism under a seed, and the compatibility rules.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Random } from '../src/engine/random.ts';
import { StateDict } from '../src/models/state_dict.ts';
import {
  ContrastiveLoss,
  CosineSimilarity,
  LpDistance,
  MultiSimilarityLoss,
  NPairLoss,
  ProxyAnchorLoss,
  ProxyNcaLoss,
  TripletMarginLoss,
  createLoss,
} from '../src/losses/metric/index.ts';
import { anchorCandidateMatrix, mineGroups, nextSameClass, pairWithinClass, selectRows } from '../src/baselines/common.ts';
import { HdmlLite, hdmlCandidates, hdmlFactor, hdmlMatrix } from '../src/baselines/hdml_lite.ts';
import { EmbeddingExpansion, embeddingExpansionMatrix, expandEmbeddings } from '../src/baselines/embedding_expansion.ts';
import {
  SymmetricalSynthesis,
  reflectAboutAxis,
  symmetricPoints,
  symmetricalSynthesisMatrix,
  symmetricalSynthesisNpairMatrix,
} from '../src/baselines/symmetrical_synthesis.ts';
import { ProxySynthesis, proxySynthesis, sampleBeta } from '../src/baselines/proxy_synthesis.ts';
import { DamlLite, damlGenerate, damlGeneratorLoss, initDamlGenerator } from '../src/baselines/daml_lite.ts';
import {
  GENERATOR_NAMES,
  METHOD_NAMES,
  assertCompatible,
  checkCompatibility,
  createGenerator,
  generatorInfo,
  generatorObjective,
  resolveMethodName,
} from '../src/baselines/index.ts';
import { assertClose } from './helpers/close.ts';

const scalar = (t: tf.Tensor) => t.dataSync()[0] as number;
const rawL2 = new LpDistance({ normalizeEmbeddings: false });
const flat = (m: number[][]) => m.flat();
type Mat = number[][];
const euclid = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, i) => s + (v - (b[i] as number)) ** 2, 0));
function randomMat(rng: Random, n: number, d: number): Mat {
  return Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
}

// ---------- shared pieces ----------

test('pairing within classes, next same-class partner, one-hot row selection with a gradient', () => {
  assert.deepEqual(pairWithinClass([7, 3, 7, 3, 7, 3, 7, 3], 't'), [2, 3, 0, 1, 6, 7, 4, 5]);
  assert.throws(() => pairWithinClass([0, 1, 0, 1, 0, 1], 'ee'), /even number per class/);
  assert.deepEqual(nextSameClass([0, 1, 0, 1, 0, 1], 't'), [2, 3, 4, 5, 0, 1]);
  assert.throws(() => nextSameClass([0, 1, 0], 'hdml'), /class 1 has a single sample/);
  const x = tf.tensor2d([
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  assert.deepEqual(selectRows(x, [2, 0, 2]).arraySync(), [
    [5, 6],
    [1, 2],
    [5, 6],
  ]);
  const g = tf.grad((v: tf.Tensor) =>
    tf.sum(
      tf.mul(
        selectRows(v as tf.Tensor2D, [2, 0, 2]),
        tf.tensor2d([
          [1, 1],
          [10, 10],
          [100, 100],
        ]),
      ),
    ),
  )(x);
  assert.deepEqual([...g.dataSync()], [10, 10, 0, 0, 101, 101]);
});

test('group mining keeps the original for positives and the hardest candidate for negatives', () => {
  // B = 2 (labels 0, 1), G = 3 candidates per pair; entry 0 is the original.
  const cube = tf.tensor3d([
    [
      [0, 9, 9],
      [5, 2, 7],
    ],
    [
      [5, 1, 4],
      [0, 3, 3],
    ],
  ]);
  assertClose(mineGroups(cube, [0, 1], rawL2).dataSync(), [0, 2, 1, 0], 0, 'distance: smallest');
  assertClose(mineGroups(cube, [0, 1], new CosineSimilarity()).dataSync(), [0, 7, 5, 0], 0, 'similarity: largest');
  assertClose(mineGroups(cube, [0, 0], rawL2).dataSync(), [0, 5, 5, 0], 0, 'one class: originals');
});

// ---------- hdml-lite ----------

// z (chunk layout P = 2, K = 2): a0 = (0,0), b0 = (4,0), a1 = (1,0), b1 = (4,3); labels 0, 1, 0, 1.
const hz = () =>
  tf.tensor2d([
    [0, 0],
    [4, 0],
    [1, 0],
    [4, 3],
  ]);
const hy = [0, 1, 0, 1];

test('hdml-lite pulling by hand (α = 2, J_avg = 2: φ = e^{-1})', () => {
  const phi = hdmlFactor(2, 2);
  assertClose([phi], [Math.exp(-1)], 1e-12, 'φ');
  const { candidates, partner, pulled } = hdmlCandidates(hz(), hy, phi);
  assert.deepEqual(partner, [2, 3, 0, 1]);
  const c = candidates.arraySync();
  // Anchor 0, positive (1,0): d⁺ = 1. Negative (4,0): d⁻ = 4 > 1 → distance 1 + 3φ along +x.
  assertClose(c[0]![1]!, [1 + 3 * phi, 0], 1e-5, 'ẑ(0,1)');
  // Negative (4,3): d⁻ = 5 → (4,3)·(1 + 4φ)/5.
  assertClose(c[0]![3]!, [(4 * (1 + 4 * phi)) / 5, (3 * (1 + 4 * phi)) / 5], 1e-5, 'ẑ(0,3)');
  // Anchor 1 = (4,0), positive (4,3): d⁺ = 3. Negative (0,0): d⁻ = 4 → (4,0) + (3 + φ)/4·(−4, 0) = (1 − φ, 0).
  assertClose(c[1]![0]!, [1 - phi, 0], 1e-5, 'ẑ(1,0)');
  // Negative (1,0): d⁻ = 3 = d⁺ → kept as is (the d⁺ ≥ d⁻ rule).
  assertClose(c[1]![2]!, [1, 0], 1e-6, 'kept');
  // Same-class entries are the real samples.
  assertClose(c[0]![2]!, [1, 0], 0, 'positive untouched');
  // Pulled entries: anchor 2 = (1,0) has d⁺ = 1 and both negatives farther; anchor 3 = (4,3) has d⁺ = 3, negatives at 5 and √18.
  assert.deepEqual([...pulled], [0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0]);
  // The pair matrix the base loss sees (raw L2): the pulled distances.
  const m = hdmlMatrix(hz(), hy, rawL2, phi).arraySync();
  assertClose([m[0]![1]!, m[0]![3]!, m[1]![0]!, m[1]![2]!, m[0]![2]!], [1 + 3 * phi, 1 + 4 * phi, 3 + phi, 3, 1], 1e-5, 'matrix');
});

test('hdml-lite: ‖ẑ⁻ − z‖ = d⁺ + (d⁻ − d⁺)·φ for every pulled negative, z⁻ otherwise (random data)', () => {
  const rng = new Random(4);
  const Z = randomMat(rng, 8, 3);
  const y = [0, 1, 2, 3, 0, 1, 2, 3];
  const phi = 0.3;
  const { candidates, partner } = hdmlCandidates(tf.tensor2d(Z), y, phi);
  const c = candidates.arraySync();
  let pulledCount = 0;
  for (let i = 0; i < 8; i++) {
    const dPos = euclid(Z[i]!, Z[partner[i]!]!);
    for (let j = 0; j < 8; j++) {
      const dNeg = euclid(Z[i]!, Z[j]!);
      if (y[i] !== y[j] && dNeg > dPos) {
        pulledCount++;
        assertClose([euclid(c[i]![j]!, Z[i]!)], [dPos + (dNeg - dPos) * phi], 1e-5, `distance (${i},${j})`);
        // On the segment from the anchor to the negative: collinear with z⁻ − z.
        const u = Z[j]!.map((v, d) => v - Z[i]![d]!);
        const w = c[i]![j]!.map((v, d) => v - Z[i]![d]!);
        const cosine = u.reduce((s, v, d) => s + v * w[d]!, 0) / (Math.hypot(...u) * Math.hypot(...w));
        assertClose([cosine], [1], 1e-5, 'direction');
      } else {
        assertClose(c[i]![j]!, Z[j]!, 1e-6, `kept (${i},${j})`);
      }
    }
  }
  assert.ok(pulledCount > 10);
});

test('hdml-lite objective: J_m + J_syn, φ = 1 reproduces J_m; gradients reach every embedding', () => {
  const rng = new Random(8);
  const z = tf.variable(tf.tensor2d(randomMat(rng, 6, 4)));
  const y = [0, 1, 2, 0, 1, 2];
  for (const loss of [new NPairLoss(), new MultiSimilarityLoss(), new TripletMarginLoss({ margin: 0.2 })]) {
    const ctx = { embeddings: z as tf.Tensor2D, labels: y, rng: new Random(1), jAvg: 3 };
    const o = new HdmlLite().objective(loss, ctx);
    assertClose([scalar(o.total)], [scalar(o.terms.J_m!) + scalar(o.terms.J_syn!)], 1e-5, `${loss.name} J_m + J_syn`);
    const synOnly = scalar(
      loss.computeFromMatrix({
        matrix: hdmlMatrix(loss.distance.maybeNormalize(z), y, loss.distance, hdmlFactor(90, 3)),
        labels: y,
        refLabels: y,
        selfRef: true,
        embeddings: z,
      }),
    );
    assertClose([scalar(o.terms.J_syn!)], [synOnly], 1e-5, `${loss.name} J_syn`);
    const weighted = new HdmlLite({ synWeight: 0.25 }).objective(loss, ctx);
    assertClose([scalar(weighted.total)], [scalar(o.terms.J_m!) + 0.25 * scalar(o.terms.J_syn!)], 1e-5, `${loss.name} J_m + w·J_syn`);
    const easy = new HdmlLite().objective(loss, { ...ctx, jAvg: Infinity });
    assertClose([scalar(easy.terms.J_syn!)], [scalar(easy.terms.J_m!)], 1e-5, `${loss.name}: φ = 1 leaves the negatives as they are`);
    const { grads } = tf.variableGrads(() => new HdmlLite().objective(loss, ctx).total, [z]);
    const g = (grads[z.name] as tf.Tensor).arraySync() as number[][];
    assert.ok(
      g.every((r) => r.every(Number.isFinite) && r.some((v) => v !== 0)),
      `${loss.name}: gradient on every embedding`,
    );
  }
  assert.throws(
    () =>
      new HdmlLite().objective(new ProxyNcaLoss({ sd: new StateDict(), numClasses: 3, embeddingSize: 4, rng: new Random(1) }), {
        embeddings: z,
        labels: y,
        rng: new Random(1),
      }),
    /pair-based/,
  );
});

test("hdml-lite with a loss that normalises: the pulled negative is on the sphere at the rule's distance, and the loss sees that distance", () => {
  // Unit vectors at angles 0° (anchor, class 0), 60° (its positive), 270° and 200° (class 1):
  // d⁺ = chord(60°) = 1; the negative at 270° is 90° away, d⁻ = √2 > d⁺, so it is pulled to
  // t = 1 + (√2 − 1)·φ from the anchor, with φ = e^{−1} (α = 2, J_avg = 2).
  const deg = (a: number) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)];
  const z = tf.tensor2d([deg(0), deg(270), deg(60), deg(200)]);
  const y = [0, 1, 0, 1];
  const phi = Math.exp(-1);
  const t = 1 + (Math.SQRT2 - 1) * phi;
  const c = hdmlCandidates(z, y, phi, 'sphere').candidates.arraySync();
  const p = c[0]![1]!;
  assertClose([Math.hypot(p[0]!, p[1]!)], [1], 1e-6, 'on the unit sphere');
  assertClose([euclid(p, deg(0))], [t], 1e-5, 'chord distance t');
  // On the arc from 0° towards 270°: the angle 2·asin(t/2) below the x axis.
  const theta = 2 * Math.asin(t / 2);
  assertClose(p, [Math.cos(theta), -Math.sin(theta)], 1e-5, 'on the great circle towards z⁻');
  // Euclidean on normalised embeddings sees t; the cosine sees 1 − t²/2 (unit vectors t apart).
  const euclidean = hdmlMatrix(z, y, new LpDistance(), phi).arraySync();
  assertClose([euclidean[0]![1]!], [t], 1e-5, 'Euclidean loss matrix');
  const cosine = hdmlMatrix(z, y, new CosineSimilarity(), phi).arraySync();
  assertClose([cosine[0]![1]!], [1 - (t * t) / 2], 1e-5, 'cosine loss matrix');
  // The raw dot product of N-pair keeps the official segment: the point at t along the chord.
  const seg = hdmlCandidates(z, y, phi, 'segment').candidates.arraySync()[0]![1]!;
  assertClose([euclid(seg, deg(0))], [t], 1e-5, 'segment distance t');
  assert.ok(Math.hypot(seg[0]!, seg[1]!) < 0.99, 'a point of the chord is inside the sphere');
});

// ---------- Embedding Expansion ----------

test('EE: internal points divide the segment into n + 1 parts (official order), then lie on the unit sphere', () => {
  const z = tf.tensor2d([
    [0, 0],
    [3, 0],
    [3, 3],
    [6, 6],
  ]);
  const y = [0, 0, 1, 1];
  const raw = expandEmbeddings(z, y, { innerPoints: 2, l2Normalize: false });
  assert.deepEqual(raw.partner, [1, 0, 3, 2]);
  // Sample 0 (partner 1): k = 1 → (1,0), k = 2 → (2,0); sample 1 (partner 0): (2,0), (1,0).
  assertClose(
    raw.embeddings.dataSync(),
    flat([
      [0, 0],
      [3, 0],
      [3, 3],
      [6, 6],
      [1, 0],
      [2, 0],
      [4, 4],
      [5, 5],
      [2, 0],
      [1, 0],
      [5, 5],
      [4, 4],
    ]),
    1e-6,
    'expanded set',
  );
  assert.deepEqual(raw.labels, [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1]);
  const normed = expandEmbeddings(z, y, { innerPoints: 3 });
  const g = normed.groups.arraySync();
  const r = normed.raw.arraySync();
  const Z = z.arraySync();
  for (let i = 0; i < 4; i++) {
    assertClose(g[i]![0]!, Z[i]!, 0, 'slot 0 is the original');
    for (let k = 1; k <= 3; k++) {
      assertClose([Math.hypot(...g[i]![k]!)], [1], 1e-6, 'normalised');
      // Before normalisation: on the segment, at fraction k/(n+1) from z_i towards the partner.
      const q = Z[raw.partner[i]!]!;
      assertClose(
        r[i]![k - 1]!,
        Z[i]!.map((v, d) => v + (k / 4) * (q[d]! - v)),
        1e-5,
        `segment point ${i},${k}`,
      );
    }
  }
});

test('EE hard negative pair mining by hand (raw L2, no normalisation)', () => {
  // Groups: S(0) = {(0,0),(1,0),(2,0)}, S(1) = {(3,0),(2,0),(1,0)}, S(2) = {(3,3),(4,4),(5,5)}, S(3) = {(6,6),(5,5),(4,4)}.
  // Negatives: (0,2): (2,0)–(3,3) = √10; (0,3): (2,0)–(4,4) = √20; (1,2): (3,0)–(3,3) = 3; (1,3): (3,0)–(4,4) = √17.
  // Positives keep the originals: (0,1) = 3, (2,3) = √18.
  const z = tf.tensor2d([
    [0, 0],
    [3, 0],
    [3, 3],
    [6, 6],
  ]);
  const m = embeddingExpansionMatrix(z, [0, 0, 1, 1], rawL2, { innerPoints: 2, l2Normalize: false });
  const s = Math.sqrt;
  assertClose(m.dataSync(), [0, 3, s(10), s(20), 3, 0, 3, s(17), s(10), 3, 0, s(18), s(20), s(17), s(18), 0], 1e-3, 'mined matrix');
});

/** The official HPHN triplet loss (hphn_triplet.py) with EE (embedding_aug.py) on a class-grouped batch, per-sample losses averaged. */
function refHphn(Z: Mat, y: number[], n: number, margin: number): number {
  const B = Z.length;
  const swap = Array.from({ length: B }, (_, i) => (i % 2 === 0 ? i + 1 : i - 1));
  const l2n = (v: number[]) => v.map((e) => e / Math.hypot(...v));
  const X = Z.map(l2n); // the model's embeddings (normalised, as the distance sees them)
  const all = [...X];
  const labels = [...y];
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i < B; i++) {
      all.push(l2n(X[i]!.map((v, d) => (X[swap[i]!]![d]! * k + v * (n + 1 - k)) / (n + 1))));
      labels.push(y[i]!);
    }
  }
  const N = all.length;
  let total = 0;
  for (let i = 0; i < B; i++) {
    let dap = 0;
    for (let j = 0; j < B; j++) if (y[j] === y[i]) dap = Math.max(dap, euclid(X[i]!, X[j]!));
    let dan = Infinity;
    for (let g = 0; g <= n; g++) for (let j = 0; j < N; j++) if (labels[j] !== y[i]) dan = Math.min(dan, euclid(all[g * B + i]!, all[j]!));
    total += Math.max(0, dap - dan + margin);
  }
  return total / B;
}

test('EE + batch-hard triplet (mean) reproduces the official HPHN triplet loss on random data', () => {
  const rng = new Random(12);
  // Class-grouped as the official sampler: (0,0), (1,1), (2,2), (3,3).
  const Z = randomMat(rng, 8, 5);
  const y = [0, 0, 1, 1, 2, 2, 3, 3];
  const ee = new EmbeddingExpansion();
  for (const margin of [1e-5, 0.5]) {
    const loss = new TripletMarginLoss({ mining: 'batch-hard', margin, reducer: 'mean' });
    const o = ee.objective(loss, { embeddings: tf.tensor2d(Z), labels: y, rng: new Random(0) });
    assertClose([scalar(o.total)], [refHphn(Z, y, 2, margin)], 1e-5, `HPHN margin ${margin}`);
  }
});

test('EE golden: with N-pair the originals are L2-normalised like the internal points (values from scripts/fixtures/embedding_expansion_golden.py)', () => {
  // Raw norms 3.2, 0.46, 2.3, 4.3: without normalising the originals, mining would compare raw
  // dot products of these with unit-norm internal points.
  const z = tf.tensor2d([
    [3.0, 0.5, -1.0],
    [0.2, 0.1, 0.4],
    [1.0, 2.0, 0.5],
    [-0.5, 4.0, 1.5],
  ]);
  const y = [0, 1, 0, 1];
  const loss = new NPairLoss();
  const o = new EmbeddingExpansion().objective(loss, { embeddings: z, labels: y, rng: new Random(0) });
  // numpy, float64, from the paper's equations: cross-entropy 0.8511229892395589 + l2 term 0.01282875.
  assertClose([scalar(o.total)], [0.8639517392395588], 2e-6, 'N-pair + EE');
  const m = embeddingExpansionMatrix(tf.div(z, tf.norm(z, 2, 1, true)) as tf.Tensor2D, y, loss.distance);
  const want = [
    [1.0, 0.6576789078197712, 0.4771187236136979, 0.6576789078197712],
    [0.6576789078197712, 1.0, 0.8595058636356623, 0.45661166048865687],
    [0.4771187236136979, 0.8595058636356623, 1.0, 0.8595058636356623],
    [0.6576789078197712, 0.45661166048865687, 0.8595058636356623, 1.0],
  ];
  assertClose(m.dataSync(), flat(want), 2e-6, 'mined matrix');
  // The previous behaviour, raw originals, is still there by name and gives another value.
  const raw = new EmbeddingExpansion({ normalizeEmbeddings: false }).objective(loss, { embeddings: z, labels: y, rng: new Random(0) });
  assert.ok(Math.abs(scalar(raw.total) - 0.8639517392395588) > 0.03, `raw originals give ${scalar(raw.total)}`);
});

test('EE objective: gradients reach the real embeddings; odd samples per class are refused', () => {
  const rng = new Random(13);
  const z = tf.variable(tf.tensor2d(randomMat(rng, 8, 4)));
  const y = [0, 1, 2, 3, 0, 1, 2, 3];
  for (const loss of [new MultiSimilarityLoss(), new NPairLoss(), new ContrastiveLoss()]) {
    const { value, grads } = tf.variableGrads(() => new EmbeddingExpansion().objective(loss, { embeddings: z, labels: y, rng: new Random(0) }).total, [z]);
    assert.ok(Number.isFinite(scalar(value)), loss.name);
    const g = (grads[z.name] as tf.Tensor).dataSync();
    assert.ok(g.every(Number.isFinite) && g.some((v) => v !== 0), `${loss.name}: gradient`);
  }
  assert.throws(
    () =>
      new EmbeddingExpansion().objective(new MultiSimilarityLoss(), {
        embeddings: tf.zeros([6, 2]) as tf.Tensor2D,
        labels: [0, 1, 0, 1, 0, 1],
        rng: new Random(0),
      }),
    /even number/,
  );
});

// ---------- Symmetrical Synthesis ----------

test("Symm: reflection about the partner's axis by hand; norms and similarity to the axis are preserved", () => {
  // (1,0) about the axis (1,1): 2·⟨x, û⟩û − x = (1,1) − (1,0) = (0,1).
  assertClose(reflectAboutAxis(tf.tensor2d([[1, 0]]), tf.tensor2d([[1, 1]])).dataSync(), [0, 1], 1e-6, 'reflection');
  const rng = new Random(2);
  const Z = randomMat(rng, 6, 4);
  const { partner, synthetic } = symmetricPoints(tf.tensor2d(Z), [0, 0, 1, 1, 2, 2]);
  const S = synthetic.arraySync();
  const dot = (a: number[], b: number[]) => a.reduce((s, v, d) => s + v * b[d]!, 0);
  for (let i = 0; i < 6; i++) {
    assertClose([Math.hypot(...S[i]!)], [Math.hypot(...Z[i]!)], 1e-5, 'norm');
    assertClose([dot(S[i]!, Z[partner[i]!]!)], [dot(Z[i]!, Z[partner[i]!]!)], 1e-5, 'similarity to the axis');
  }
});

test("Symm hard negative pair mining by hand (paper rule: hardest of the negative pair's four points)", () => {
  // Class 0: (1,0), (0,1) → symmetric points (−1,0), (0,−1). Class 1: (2,0), (2,2) → (0,2), (2,−2).
  // Anchor 0 (1,0) vs class 1's {(2,0),(2,2),(0,2),(2,−2)}: 1, √5, √5, √5 → 1 (original).
  // Anchor 1 (0,1): √5, √5, 1, √13 → 1 (the synthetic (0,2)).
  // Anchor 2 (2,0) vs class 0's {(1,0),(0,1),(−1,0),(0,−1)}: 1, √5, 3, √5 → 1. Anchor 3 (2,2): √5, √5, √13, √13 → √5.
  const z = tf.tensor2d([
    [1, 0],
    [0, 1],
    [2, 0],
    [2, 2],
  ]);
  const m = symmetricalSynthesisMatrix(z, [0, 0, 1, 1], rawL2);
  const s5 = Math.sqrt(5);
  assertClose(m.dataSync(), [0, Math.SQRT2, 1, 1, Math.SQRT2, 0, 1, 1, 1, 1, 0, 2, s5, s5, 2, 0], 1e-3, 'mined matrix');
  // With cosine similarity the largest similarity is kept: anchor 1 (0,1) vs class 1 → (0,2) gives 1.
  const c = symmetricalSynthesisMatrix(z, [0, 0, 1, 1], new CosineSimilarity()).arraySync();
  assertClose([c[1]![2]!, c[1]![3]!, c[0]![2]!], [1, 1, 1], 1e-5, 'cosine');
  const g = tf
    .grad(
      (v: tf.Tensor) =>
        new SymmetricalSynthesis().objective(new MultiSimilarityLoss({ mining: false }), {
          embeddings: v as tf.Tensor2D,
          labels: [0, 0, 1, 1],
          rng: new Random(0),
        }).total,
    )(z)
    .dataSync();
  assert.ok(g.every(Number.isFinite) && g.some((v) => v !== 0), 'gradient');
});

test('Symm golden with N-pair: the official symm_npair_loss (values from scripts/fixtures/symmetrical_synthesis_golden.py)', () => {
  // Chunk layout: rows 0, 1 the anchors of classes 0, 1; rows 2, 3 their positives.
  const z = tf.tensor2d([
    [1.0, 0.2, -0.5],
    [0.3, 1.5, 0.4],
    [0.2, -1.4, 0.9],
    [-0.2, 1.1, 1.0],
  ]);
  const y = [0, 1, 0, 1];
  // The official l2 term is 0.25·0.002·(mean‖a‖² + mean‖p‖²), the N-pair loss with l2Reg 0.002.
  const o = new SymmetricalSynthesis().objective(new NPairLoss({ l2Reg: 0.002 }), { embeddings: z, labels: y, rng: new Random(0) });
  // numpy, float64: cross-entropy 0.4872608882400653 + l2 0.0022125.
  assertClose([scalar(o.total)], [0.4894733882400653], 2e-6, 'symm N-pair');
  // S = max over the six products, the positive pairs included (⟨a_0, p_0⟩ itself is −0.53).
  const s = symmetricalSynthesisNpairMatrix(z, y, new NPairLoss().distance).arraySync();
  assertClose([s[0]![2]!, s[0]![3]!, s[1]![2]!, s[1]![3]!], [1.4257173991006649, 1.1168, 1.351317829457364, 1.99], 2e-6, 'S');
  // The paper's rule keeps the positive pair and looks only at the column's points: another value.
  const paper = new SymmetricalSynthesis({ npairRule: 'paper' }).objective(new NPairLoss({ l2Reg: 0.002 }), { embeddings: z, labels: y, rng: new Random(0) });
  assert.ok(Math.abs(scalar(paper.total) - 0.4894733882400653) > 0.1, `the paper's rule gives ${scalar(paper.total)}`);
});

// ---------- Proxy Synthesis ----------

test('PS by hand: λ = 0.25, μ = 1 and μ = 0.5', () => {
  // x̂ = (1,0), (0,1), (0.6,0.8); p̂ = (1,0), (0,1), (1,1)/√2; labels 0, 1, 2. Row i mixes with row i − 1 (cyclic).
  const z = tf.tensor2d([
    [2, 0],
    [0, 3],
    [3, 4],
  ]);
  const P = tf.tensor2d([
    [1, 0],
    [0, 5],
    [1, 1],
  ]);
  const r = proxySynthesis(z, [0, 1, 2], P, 0.25, 1);
  const n = (v: number[]) => v.map((e) => e / Math.hypot(...v));
  const h = Math.SQRT1_2;
  const expEmb = [[1, 0], [0, 1], [0.6, 0.8], n([0.25 + 0.45, 0.6]), n([0.75, 0.25]), n([0.15, 0.95])];
  const expProx = [[1, 0], [0, 1], [h, h], n([0.25 + 0.75 * h, 0.75 * h]), n([0.75, 0.25]), n([0.25 * h, 0.25 * h + 0.75])];
  assertClose(r.embeddings.dataSync(), flat(expEmb), 1e-5, 'embeddings');
  assertClose(r.proxies.dataSync(), flat(expProx), 1e-5, 'proxies');
  assert.deepEqual(r.labels, [0, 1, 2, 3, 4, 5]);
  const half = proxySynthesis(z, [0, 1, 2], P, 0.25, 0.5);
  assert.equal(half.numSynthetic, 1);
  assert.deepEqual(half.labels, [0, 1, 2, 3]);
  assert.deepEqual(half.proxies.shape, [4, 2]);
  assert.throws(() => proxySynthesis(z, [0, 0, 2], P, 0.5, 1), /neighbouring rows must differ/);
});

test('PS mixes embeddings and proxies with the same λ: samples sitting on their proxies give synthetic samples on the synthetic proxies', () => {
  const rng = new Random(6);
  const P = randomMat(rng, 5, 3);
  const y = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4];
  const z = tf.tensor2d(y.map((c) => P[c]!.map((v) => v * 2)));
  const r = proxySynthesis(z, y, tf.tensor2d(P), 0.37, 1);
  const e = r.embeddings.arraySync();
  const p = r.proxies.arraySync();
  for (let i = 0; i < 10; i++) assertClose(e[10 + i]!, p[5 + i]!, 1e-5, `synthetic ${i}`);
});

test('PS: Beta(α, α) draws are seeded and have the right moments; the objective is deterministic under a seed and trains the proxies', () => {
  const a = new Random(3);
  const b = new Random(3);
  const draws = Array.from({ length: 4000 }, () => sampleBeta(a, 0.4, 0.4));
  assert.deepEqual(
    draws.slice(0, 5),
    Array.from({ length: 5 }, () => sampleBeta(b, 0.4, 0.4)),
  );
  const mean = draws.reduce((s, v) => s + v, 0) / draws.length;
  const variance = draws.reduce((s, v) => s + (v - mean) ** 2, 0) / draws.length;
  assert.ok(draws.every((v) => v >= 0 && v <= 1));
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1 / (4 * 1.8)) < 0.01, `variance ${variance}`); // α²/((2α)²(2α+1))
  const sd = new StateDict();
  const loss = new ProxyAnchorLoss({ sd, numClasses: 4, embeddingSize: 3, rng: new Random(1) });
  const z = tf.variable(tf.tensor2d(randomMat(new Random(9), 8, 3)));
  const y = [0, 1, 2, 3, 0, 1, 2, 3];
  const run = () => scalar(new ProxySynthesis().objective(loss, { embeddings: z, labels: y, rng: new Random(42) }).total);
  assert.equal(run(), run());
  // The objective is the loss on the synthesised batch with the first Beta(0.4, 0.4) draw of the stream.
  const lam = sampleBeta(new Random(42), 0.4, 0.4);
  const s = proxySynthesis(z, y, loss.proxies() as tf.Tensor as tf.Tensor2D, lam, 1);
  assertClose([run()], [scalar(loss.computeWithProxies(s.embeddings, s.labels, s.proxies))], 1e-6, 'objective');
  const { grads } = tf.variableGrads(() => new ProxySynthesis().objective(loss, { embeddings: z, labels: y, rng: new Random(42) }).total, [z, loss.proxies()]);
  for (const v of [z, loss.proxies()]) {
    const g = (grads[v.name] as tf.Tensor).dataSync();
    assert.ok(g.every(Number.isFinite) && g.some((e) => e !== 0), `gradient ${v.name}`);
  }
  assert.throws(() => new ProxySynthesis().objective(new MultiSimilarityLoss(), { embeddings: z, labels: y, rng: new Random(1) }), /proxy-based/);
});

// ---------- daml-lite ----------

/** A D = 1 generator with hidden [1, 1] whose output is relu(w·[a, p, n]). */
function tinyDaml(select: [number, number, number]): StateDict {
  const sd = new StateDict();
  sd.set('daml.generator.0.weight', tf.tensor2d([select]));
  sd.set('daml.generator.0.bias', tf.tensor1d([0]));
  sd.set('daml.generator.2.weight', tf.tensor2d([[1]]));
  sd.set('daml.generator.2.bias', tf.tensor1d([0]));
  sd.set('daml.generator.4.weight', tf.tensor2d([[1]]));
  sd.set('daml.generator.4.bias', tf.tensor1d([0]));
  return sd;
}

test('daml-lite generator loss by hand (G outputs the negative itself, then the anchor itself)', () => {
  // z = 1, 3, 2, 5 (1-D), labels 0, 1, 0, 1; positives: 0↔2, 1↔3. The 8 negative pairs (a, p, n):
  // (1,2,3) (1,2,5) (3,5,1) (3,5,2) (2,1,3) (2,1,5) (5,3,1) (5,3,2):
  // ‖n − a‖² = 4, 16, 4, 1, 1, 9, 16, 9 (mean 7.5); ‖p − a‖² = 1, 1, 4, 4, 1, 1, 4, 4;
  // [‖n − a‖² − ‖p − a‖² − 1]_+ = 2, 14, 0, 0, 0, 7, 11, 4 (mean 4.75).
  const z = tf.tensor2d([[1], [3], [2], [5]]);
  const y = [0, 1, 0, 1];
  const w = { lambda1: 1, lambda2: 50, alpha: 1 };
  const gen = damlGenerate(tinyDaml([0, 0, 1]), z, z, y);
  const l = damlGeneratorLoss(z, gen, w);
  assertClose([scalar(l.hard), scalar(l.reg), scalar(l.adv), scalar(l.total)], [7.5, 0, 4.75, 7.5 + 50 * 4.75], 1e-4, 'G = n');
  const genA = damlGenerate(tinyDaml([1, 0, 0]), z, z, y);
  const la = damlGeneratorLoss(z, genA, w);
  assertClose([scalar(la.hard), scalar(la.reg), scalar(la.adv)], [0, 7.5, 0], 1e-4, 'G = a');
  // The candidates: x̃⁻ (= the anchor here) for negatives, the real sample for same-class entries:
  // row 0 (a = 1): 1, x̃, 2, x̃; row 1 (a = 3): x̃, 3, x̃, 5; row 2 (a = 2): 1, x̃, 2, x̃; row 3 (a = 5): x̃, 3, x̃, 5.
  assertClose(genA.candidates.dataSync(), [1, 1, 2, 1, 3, 3, 3, 5, 1, 2, 2, 2, 5, 3, 5, 5], 1e-6, 'candidates');
});

test('daml-lite objective: J_gen + λ·J_m; J_gen trains only the generator, J_m reaches both; seeded init', () => {
  const z = tf.variable(tf.tensor2d([[1], [3], [2], [5]]));
  const y = [0, 1, 0, 1];
  const loss = new ContrastiveLoss({ distance: rawL2, negMargin: 3, reducer: 'mean' });
  const sd = tinyDaml([0, 0, 1]);
  const daml = new DamlLite({ sd, embeddingSize: 1 }, { hidden: [1, 1] });
  const o = daml.objective(loss, { embeddings: z, labels: y, rng: new Random(0) });
  // G = n: the synthetic negatives are the real ones, so J_m is the base loss on the real batch.
  assertClose([scalar(o.terms.J_m!)], [scalar(loss.compute(z, y))], 1e-5, 'J_m');
  assertClose([scalar(o.total)], [scalar(o.terms.J_gen!) + scalar(o.terms.J_m!)], 1e-4, 'total');
  const params = sd.trainable(daml.parameterPrefixes);
  assert.deepEqual(params, [
    'daml.generator.0.weight',
    'daml.generator.0.bias',
    'daml.generator.2.weight',
    'daml.generator.2.bias',
    'daml.generator.4.weight',
    'daml.generator.4.bias',
  ]);
  const vars = [z, ...params.map((n) => sd.get(n))];
  const genOnly = tf.variableGrads(
    () => damlGeneratorLoss(tf.tensor2d([[1], [3], [2], [5]]), damlGenerate(sd, tf.tensor2d([[1], [3], [2], [5]]), z, y), daml).total,
    vars,
  );
  assert.equal(genOnly.grads[z.name], undefined, 'no gradient from J_gen to the embeddings');
  assert.ok((genOnly.grads[sd.get('daml.generator.0.weight').name] as tf.Tensor).dataSync().some((v) => v !== 0));
  const both = tf.variableGrads(() => daml.objective(loss, { embeddings: z, labels: y, rng: new Random(0) }).total, vars);
  assert.ok(
    (both.grads[z.name] as tf.Tensor).dataSync().some((v) => v !== 0),
    'J_m reaches the embeddings',
  );
  // Seeded initialisation with the default hidden sizes [D, D].
  const mk = () => {
    const s = new StateDict();
    createGenerator('daml-lite', undefined, { sd: s, embeddingSize: 3, rng: new Random(17) });
    return s;
  };
  const a = mk();
  const b = mk();
  assert.deepEqual(a.names(), [
    'daml.generator.0.weight',
    'daml.generator.0.bias',
    'daml.generator.2.weight',
    'daml.generator.2.bias',
    'daml.generator.4.weight',
    'daml.generator.4.bias',
  ]);
  assert.deepEqual(a.get('daml.generator.0.weight').shape, [3, 9]);
  assert.deepEqual([...a.get('daml.generator.2.weight').dataSync()], [...b.get('daml.generator.2.weight').dataSync()]);
  const w0 = a.get('daml.generator.0.weight').dataSync();
  assert.ok(
    w0.every((v) => Math.abs(v) <= 1 / 3),
    'U(±1/√fan_in), fan_in = 9',
  );
  assert.throws(() => initDamlGenerator({ sd: a, embeddingSize: 4 }, [4, 4]), /expected \[4,12\]/);
  assert.throws(() => createGenerator('daml-lite'), /StateDict/);
  // A full-size generator on random data trains end to end.
  const rng = new Random(5);
  const zz = tf.variable(tf.tensor2d(randomMat(rng, 6, 4)));
  const s2 = new StateDict();
  const d2 = createGenerator('daml-lite', {}, { sd: s2, embeddingSize: 4, rng: new Random(2) });
  const v2 = [zz, ...s2.trainable(d2.parameterPrefixes).map((n) => s2.get(n))];
  const r2 = tf.variableGrads(() => d2.objective(new MultiSimilarityLoss(), { embeddings: zz, labels: [0, 1, 2, 0, 1, 2], rng: new Random(0) }).total, v2);
  for (const v of v2) assert.ok((r2.grads[v.name] as tf.Tensor).dataSync().every(Number.isFinite), `finite gradient ${v.name}`);
});

test("daml-lite with a loss that normalises: G's output is on the sphere and J_m sees the distances J_gen measures", () => {
  const sd = new StateDict();
  createGenerator('daml-lite', {}, { sd, embeddingSize: 3, rng: new Random(21) });
  const rng = new Random(22);
  const raw = randomMat(rng, 4, 3);
  const zs = raw.map((r) => r.map((v) => v / Math.hypot(...r)));
  const y = [0, 1, 0, 1];
  const z = tf.tensor2d(zs);
  const gen = damlGenerate(sd, z, z, y, 'daml.generator', true);
  const syn = gen.synthetic.arraySync();
  const m = anchorCandidateMatrix(z, gen.candidates, new LpDistance()).arraySync();
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 4; j++) {
      if (y[i] === y[j]) continue;
      assertClose([Math.hypot(...syn[i]![j]!)], [1], 1e-5, `x̃(${i},${j}) on the sphere`);
      // J_gen's ‖x̃ − x‖ is the distance J_m's pair (i, j) holds.
      assertClose([m[i]![j]!], [euclid(syn[i]![j]!, zs[i]!)], 1e-5, `pair (${i},${j})`);
    }
});

// ---------- registry and compatibility ----------

test('compatibility: proxy synthesis needs a proxy loss, the pair generators need pair losses, batch-shape rules, with reasons', () => {
  const table: Record<string, string[]> = {};
  for (const m of METHOD_NAMES) table[m] = ['npair', 'triplet', 'contrastive', 'ms', 'proxy-anchor', 'proxy-nca'].filter((l) => checkCompatibility(m, l).ok);
  assert.deepEqual(table, {
    none: ['npair', 'triplet', 'contrastive', 'ms', 'proxy-anchor', 'proxy-nca'],
    'hdml-lite': ['npair', 'triplet', 'contrastive', 'ms'],
    ee: ['npair', 'triplet', 'contrastive', 'ms'],
    symm: ['npair', 'triplet', 'contrastive', 'ms'],
    ps: ['proxy-anchor', 'proxy-nca'],
    'daml-lite': ['npair', 'triplet', 'contrastive', 'ms'],
    'gca-hng': ['npair', 'ms', 'proxy-anchor'],
  });
  const ps = checkCompatibility('ps', 'npair');
  assert.ok(!ps.ok && /proxy-based loss/.test(ps.reason) && /no proxies/.test(ps.reason), JSON.stringify(ps));
  const ee = checkCompatibility('ee', 'proxy-anchor');
  assert.ok(!ee.ok && /pair-based loss/.test(ee.reason), JSON.stringify(ee));
  const odd = checkCompatibility('symm', 'ms', { samplesPerClass: 3 });
  assert.ok(!odd.ok && /even number of samples per class/.test(odd.reason));
  assert.ok(checkCompatibility('ee', 'ms', { samplesPerClass: 4 }).ok);
  assert.ok(!checkCompatibility('hdml-lite', 'ms', { samplesPerClass: 1 }).ok);
  // The authors' names are not given to the simplified methods: asking for them says so.
  for (const name of ['hdml', 'daml']) {
    const r = checkCompatibility(name, 'npair');
    assert.ok(!r.ok && r.reason.includes(`'${name}-lite'`) && /not implemented/.test(r.reason), JSON.stringify(r));
  }
  assert.ok(!checkCompatibility('ps', 'proxy-anchor', { classesPerBatch: 1 }).ok);
  const unknown = checkCompatibility('mixup', 'ms');
  assert.ok(!unknown.ok && /unknown method 'mixup'/.test(unknown.reason));
  assert.throws(() => assertCompatible('ps', 'triplet'), /^Error: ps \+ triplet: ps \(Proxy Synthesis\) needs a proxy-based loss/);
  assert.equal(resolveMethodName('Embedding-Expansion'), 'ee');
  assert.equal(resolveMethodName('gca_hng'), 'gca-hng');
  assert.throws(() => generatorInfo('gca-hng'), /not a registry generator/);
  assert.deepEqual([...GENERATOR_NAMES], ['none', 'hdml-lite', 'ee', 'symm', 'ps', 'daml-lite']);
  assert.deepEqual(generatorInfo('ps').defaults, { alpha: 0.4, mu: 1 });
  assert.deepEqual(generatorInfo('ee').defaults, { innerPoints: 2, l2Normalize: true, normalizeEmbeddings: true });
  assert.deepEqual(generatorInfo('hdml-lite').defaults, { alpha: 90, synWeight: 1 });
  // generatorObjective refuses an instance mismatch too.
  const pa = createLoss('proxy-anchor', {}, { sd: new StateDict(), numClasses: 2, embeddingSize: 2, rng: new Random(1) });
  assert.throws(
    () => generatorObjective(createGenerator('symm'), pa, { embeddings: tf.zeros([4, 2]) as tf.Tensor2D, labels: [0, 1, 0, 1], rng: new Random(0) }),
    /pair-based/,
  );
  const none = generatorObjective(createGenerator('none'), pa, { embeddings: tf.ones([4, 2]) as tf.Tensor2D, labels: [0, 1, 0, 1], rng: new Random(0) });
  assertClose([scalar(none.total)], [scalar(pa.compute(tf.ones([4, 2]) as tf.Tensor2D, [0, 1, 0, 1]))], 1e-6, 'none = the base loss');
});

test('every generator with every compatible loss gives a finite objective and embedding gradients and leaves no tensor behind (chunk layouts P = 3, K = 2 and P = 2, K = 4)', () => {
  for (const [P, K] of [
    [3, 2],
    [2, 4],
  ] as const) {
    const y = Array.from({ length: P * K }, (_, i) => i % P);
    for (const method of GENERATOR_NAMES) {
      for (const lossName of ['npair', 'triplet', 'contrastive', 'multi-similarity', 'proxy-anchor', 'proxy-nca']) {
        if (!checkCompatibility(method, lossName, { samplesPerClass: K, classesPerBatch: P }).ok) continue;
        const sd = new StateDict();
        const loss = createLoss(lossName, undefined, { sd, numClasses: 3, embeddingSize: 4, rng: new Random(1) });
        const gen = createGenerator(method, undefined, { sd, embeddingSize: 4, rng: new Random(2) });
        const z = tf.variable(tf.tensor2d(randomMat(new Random(3), P * K, 4)));
        const before = tf.memory().numTensors;
        const { value, grads } = tf.variableGrads(() => generatorObjective(gen, loss, { embeddings: z, labels: y, rng: new Random(4), jAvg: 2 }).total, [z]);
        assert.ok(Number.isFinite(scalar(value)), `${method} + ${lossName}: value`);
        const g = (grads[z.name] as tf.Tensor).dataSync();
        assert.ok(g.every(Number.isFinite) && g.some((v) => v !== 0), `${method} + ${lossName}: gradient`);
        tf.dispose([value, ...Object.values(grads)]);
        assert.equal(tf.memory().numTensors, before, `${method} + ${lossName}: no tensor left behind`);
        z.dispose();
        sd.dispose();
      }
    }
  }
});
