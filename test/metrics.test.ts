import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../src/io/npy.ts';
import { toNumbers } from '../src/io/host_tensor.ts';
import {
  embeddings,
  evaluateInShop,
  evaluateNmi,
  evaluateRetrieval,
  kMeans,
  nearestNeighbours,
  normalizedMutualInformation,
  normalizeRows,
  seededRandom,
  type Embeddings,
  type RetrievalMetrics,
} from '../src/metrics/index.ts';
import { TopKStore } from '../src/metrics/topk_store.ts';
import { GOLDEN } from './helpers/golden.ts';

const METRICS = join(GOLDEN, 'metrics');
const TOL = 1e-6;

interface ExpectedMetrics {
  recall: Record<string, number>;
  map_at_r: number | null;
  r_precision: number | null;
}

function loadEmbeddings(path: string): Embeddings {
  const t = readNpy(path);
  return embeddings(toNumbers(t), t.shape[0] as number, t.shape[1] as number);
}

const loadLabels = (path: string): number[] => toNumbers(readNpy(path));

function close(actual: number, expected: number | null, what: string): void {
  if (expected === null) assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  else assert.ok(Math.abs(actual - expected) <= TOL, `${what}: ${actual} vs expected ${expected} (diff ${actual - expected})`);
}

/** Compares with a fixture entry, whose MAP@R and R-Precision are in percent. */
function assertMetrics(actual: RetrievalMetrics, expected: ExpectedMetrics, what: string): void {
  for (const [k, v] of Object.entries(expected.recall)) close(actual.recall[k] as number, v, `${what} Recall@${k}`);
  close(actual.mapAtR, expected.map_at_r === null ? null : expected.map_at_r / 100, `${what} MAP@R`);
  close(actual.rPrecision, expected.r_precision === null ? null : expected.r_precision / 100, `${what} R-Precision`);
}

/** Every metrics entry of an expected.json, flattened: [path, entry]. */
function metricEntries(json: Record<string, unknown>, prefix = ''): [string, ExpectedMetrics][] {
  const found: [string, ExpectedMetrics][] = [];
  for (const [key, value] of Object.entries(json)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
    if ('recall' in value && 'map_at_r' in value) found.push([prefix + key, value as ExpectedMetrics]);
    else found.push(...metricEntries(value as Record<string, unknown>, `${prefix}${key}.`));
  }
  return found;
}

const cases = readdirSync(METRICS)
  .filter((f) => f.endsWith('.expected.json'))
  .map((f) => f.slice(0, -'.expected.json'.length));

test('there are metric fixtures', () => assert.ok(cases.length >= 3, `found ${cases.length} cases`));

for (const name of cases) {
  const file = (suffix: string): string => join(METRICS, `${name}.${suffix}`);
  const expected = JSON.parse(readFileSync(file('expected.json'), 'utf8')) as Record<string, unknown>;

  test(`${name}: every metric entry of expected.json`, async () => {
    const x = loadEmbeddings(file('X.npy'));
    const t = loadLabels(file('T.npy'));
    const entries = metricEntries(expected);
    assert.ok(entries.length >= 5, 'retrieval (2), retrieval_f64 (2), inshop (2)');
    for (const [path, entry] of entries) {
      // `*_textbook` entries are textbook semantics; all others are (recomputations of) the official code.
      const semantics = path.includes('textbook') ? 'textbook' : 'official';
      const ks = Object.keys(entry.recall).map(Number);
      const actual = path.startsWith('inshop')
        ? await evaluateInShop(
            loadEmbeddings(file('query_X.npy')),
            loadLabels(file('query_T.npy')),
            loadEmbeddings(file('gallery_X.npy')),
            loadLabels(file('gallery_T.npy')),
            { ks, semantics },
          )
        : await evaluateRetrieval(x, t, { ks, semantics });
      assertMetrics(actual, entry, `${name} ${path} (${semantics})`);
    }
  });

  test(`${name}: official neighbours (ranks 1..10) match knn_top10 except within ties`, async () => {
    const x = normalizeRows(loadEmbeddings(file('X.npy')));
    const reference = toNumbers(readNpy(file('knn_top10.npy')));
    const lists = await nearestNeighbours(x, 'self', { k: 12 });
    let compared = 0;
    for (let q = 0; q < x.rows; q++) {
      // Runs of (near-)equal scores among ranks 0..11 may come in any order: compare them as sets,
      // and skip those that cross rank 0|1 or 10|11 (the official tie order decides what is in).
      const scores = lists.scores.subarray(q * 12, q * 12 + 12);
      for (let start = 0; start < 12;) {
        let end = start + 1;
        while (end < 12 && (scores[end - 1] as number) - (scores[end] as number) < 1e-6) end++;
        if (start >= 1 && end <= 11) {
          const ours = Array.from(lists.indices.subarray(q * 12 + start, q * 12 + end)).sort((a, b) => a - b);
          const theirs = reference.slice(q * 10 + start - 1, q * 10 + end - 1).sort((a, b) => a - b);
          assert.deepEqual(ours, theirs, `${name}: query ${q}, ranks ${start}..${end - 1}`);
          compared += end - start;
        }
        start = end;
      }
    }
    assert.ok(compared >= x.rows * 10 * 0.8, `only ${compared} of ${x.rows * 10} positions compared`);
  });
}

// Five unit vectors in 2-D at angles 0°, 12°, 20°, 90°, 100° with labels A A B B A (cosine order =
// angle order). Neighbours (self excluded) and their labels:
//   q0 (A, R=2): 12° A, 20° B, 90° B, 100° A  -> rel 1 0 0 1: R@1 hit; RP 1/2; AP (1/2)(1/1) = 1/2
//   q1 (A, R=2): 20° B, 0° A, 90° B, 100° A   -> rel 0 1 0 1: R@2 hit; RP 1/2; AP (1/2)(1/2) = 1/4
//   q2 (B, R=1): 12° A, 0° A, 90° B, 100° A   -> rel 0 0 1 0: R@4 hit; RP 0;   AP 0
//   q3 (B, R=1): 100° A, 20° B, 12° A, 0° A   -> rel 0 1 0 0: R@2 hit; RP 0;   AP 0
//   q4 (A, R=2): 90° B, 20° B, 12° A, 0° A    -> rel 0 0 1 1: R@4 hit; RP 0;   AP 0
// Recall@1 = 1/5, @2 = 3/5, @4 = 5/5; MAP@R = (1/2 + 1/4)/5 = 0.15; R-Precision = (1/2 + 1/2)/5 = 0.2.
const unit = (degrees: number[]): Embeddings =>
  embeddings(
    degrees.flatMap((a) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)]),
    degrees.length,
    2,
  );

for (const semantics of ['textbook', 'official'] as const) {
  test(`hand case: five points in 2-D (${semantics})`, async () => {
    const m = await evaluateRetrieval(unit([0, 12, 20, 90, 100]), [7, 7, 3, 3, 7], { ks: [1, 2, 4], semantics });
    assert.deepEqual(Object.keys(m.recall), ['1', '2', '4']);
    close(m.recall['1'] as number, 0.2, 'R@1');
    close(m.recall['2'] as number, 0.6, 'R@2');
    close(m.recall['4'] as number, 1, 'R@4');
    close(m.mapAtR, 0.15, 'MAP@R');
    close(m.rPrecision, 0.2, 'RP');
  });
}

// 0° A, 10° A, 50° C: the two A's find each other first (R = 1, AP = RP = 1); C is alone (R = 0).
// textbook leaves C out (means over 2 queries); official counts it a miss and gets NaN for the means.
test('hand case: a singleton class (textbook leaves it out, official gives NaN)', async () => {
  const x = unit([0, 10, 50]);
  const textbook = await evaluateRetrieval(x, [0, 0, 5], { ks: [1, 2] });
  assert.equal(textbook.queries, 2);
  assert.deepEqual(textbook.recall, { '1': 1, '2': 1 });
  close(textbook.mapAtR, 1, 'MAP@R');
  close(textbook.rPrecision, 1, 'RP');
  const official = await evaluateRetrieval(x, [0, 0, 5], { ks: [1, 2], semantics: 'official' });
  assert.equal(official.queries, 3);
  close(official.recall['1'] as number, 2 / 3, 'R@1');
  assert.ok(Number.isNaN(official.mapAtR) && Number.isNaN(official.rPrecision), `${official.mapAtR}, ${official.rPrecision}`);
});

// 1100 A's spread over 0°..1° and two B's at 90°, 91°. An A query has its 1099 class mates first:
// textbook AP = RP = 1; official keeps only 1000 neighbours but divides by R = 1099, so
// AP = RP = 1000/1099 for every A. B queries: R = 1, the other B first, AP = RP = 1.
test('hand case: official truncation at 1000 neighbours', async () => {
  const degrees = [...Array.from({ length: 1100 }, (_, i) => i / 1100), 90, 91];
  const labels = [...Array<number>(1100).fill(1), 2, 2];
  const officialAp = (1100 * (1000 / 1099) + 2) / 1102;
  const official = await evaluateRetrieval(unit(degrees), labels, { ks: [1], semantics: 'official' });
  close(official.mapAtR, officialAp, 'official MAP@R');
  close(official.rPrecision, officialAp, 'official RP');
  close(official.recall['1'] as number, 1, 'official R@1');
  const textbook = await evaluateRetrieval(unit(degrees), labels, { ks: [1] });
  close(textbook.mapAtR, 1, 'textbook MAP@R');
  close(textbook.rPrecision, 1, 'textbook RP');
});

// In-Shop ties: query (1, 0.1) of class 0; gallery g0 = (1,0) class 1, g1 = (1,0) class 0,
// g2 = (0,1) class 0, so g0 and g1 tie. official: no negative strictly above the best positive,
// a hit at 1; list g1 g0 g2: RP = 1/2, AP = (1/2)(1/1) = 1/2. textbook (ties by index): g0 g1 g2,
// a miss at 1, hit at 2; RP = 1/2, AP = (1/2)(1/2) = 1/4.
test('hand case: In-Shop ties favour positives under official semantics only', async () => {
  const query = embeddings([1, 0.1], 1, 2);
  const gallery = embeddings([1, 0, 1, 0, 0, 1], 3, 2);
  const official = await evaluateInShop(query, [0], gallery, [1, 0, 0], { ks: [1, 2], semantics: 'official' });
  assert.deepEqual(official.recall, { '1': 1, '2': 1 });
  close(official.mapAtR, 0.5, 'official MAP@R');
  close(official.rPrecision, 0.5, 'official RP');
  const textbook = await evaluateInShop(query, [0], gallery, [1, 0, 0], { ks: [1, 2] });
  assert.deepEqual(textbook.recall, { '1': 0, '2': 1 });
  close(textbook.mapAtR, 0.25, 'textbook MAP@R');
  close(textbook.rPrecision, 0.5, 'textbook RP');
});

function randomEmbeddings(rows: number, dim: number, seed: number, duplicates = 0): Embeddings {
  const random = seededRandom(seed);
  const data = Float64Array.from({ length: rows * dim }, () => random() - 0.5);
  for (let i = 0; i < duplicates; i++) data.copyWithin((3 * i + 1) * dim, 3 * i * dim, (3 * i + 1) * dim);
  return normalizeRows(embeddings(data, rows, dim));
}

function bruteForce(x: Embeddings, g: Embeddings, k: number, skipSelf: boolean): number[][] {
  return Array.from({ length: x.rows }, (_, q) => {
    const candidates: [number, number][] = [];
    for (let j = 0; j < g.rows; j++) {
      if (skipSelf && j === q) continue;
      let s = 0;
      for (let d = 0; d < x.dim; d++) s += (x.data[q * x.dim + d] as number) * (g.data[j * g.dim + d] as number);
      candidates.push([s, j]);
    }
    candidates.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    return candidates.slice(0, k).map(([, j]) => j);
  });
}

test('knn equals a brute-force sort (ties by index), self and query/gallery, with duplicates', async () => {
  const x = randomEmbeddings(600, 7, 1, 40); // 600 rows: several blocks of the symmetric layout
  const rows = (lists: { indices: Int32Array; k: number }): number[][] =>
    Array.from({ length: x.rows }, (_, q) => Array.from(lists.indices.subarray(q * lists.k, (q + 1) * lists.k)));
  assert.deepEqual(rows(await nearestNeighbours(x, 'self', { k: 25, excludeSelf: true, engine: 'js' })), bruteForce(x, x, 25, true));
  assert.deepEqual(rows(await nearestNeighbours(x, 'self', { k: 25, engine: 'js' })), bruteForce(x, x, 25, false));
  const g = randomEmbeddings(1500, 7, 2);
  assert.deepEqual(rows(await nearestNeighbours(x, g, { k: 30, engine: 'js' })), bruteForce(x, g, 30, false));
  const clipped = await nearestNeighbours(x, 'self', { k: 5000, excludeSelf: true, engine: 'js' });
  assert.equal(clipped.k, 599);
});

test('knn on worker threads (wasm, float32) agrees with the float64 search up to near ties', async () => {
  const x = randomEmbeddings(1200, 24, 3, 30);
  const g = randomEmbeddings(900, 24, 4);
  for (const [gallery, excludeSelf] of [
    ['self', true],
    ['self', false],
    [g, false],
  ] as const) {
    const exact = await nearestNeighbours(x, gallery, { k: 20, excludeSelf, engine: 'js' });
    const wasm = await nearestNeighbours(x, gallery, { k: 20, excludeSelf, engine: 'wasm', threads: 2 });
    let compared = 0;
    for (let q = 0; q < x.rows; q++) {
      const s = exact.scores.subarray(q * 20, q * 20 + 20);
      if (s.some((v, i) => i > 0 && (s[i - 1] as number) - v < 1e-5 && (s[i - 1] as number) !== v)) continue; // float32 may swap these
      compared++;
      assert.deepEqual(wasm.indices.subarray(q * 20, q * 20 + 20), exact.indices.subarray(q * 20, q * 20 + 20), `query ${q}`);
      for (let i = q * 20; i < q * 20 + 20; i++) assert.ok(Math.abs((wasm.scores[i] as number) - (exact.scores[i] as number)) < 1e-5, `score ${i}`);
    }
    assert.ok(compared > x.rows * 0.8, `only ${compared} rows without near ties`);
  }
});

test('top-k store keeps the k best in any arrival order', () => {
  const random = seededRandom(9);
  const candidates = Array.from({ length: 500 }, (_, i) => [Math.floor(random() * 50) / 50, i] as [number, number]); // many equal scores
  const expected = [...candidates].sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 37);
  const store = new TopKStore(1, 37);
  for (const [s, i] of [...candidates].sort(() => random() - 0.5)) if (s >= (store.floors[0] as number)) store.offer(0, s, i);
  const indices = new Int32Array(37);
  const scores = new Float64Array(37);
  assert.equal(store.drainSorted(0, indices, scores, 0), 37);
  assert.deepEqual(
    Array.from(indices),
    expected.map(([, i]) => i),
  );
  assert.deepEqual(
    Array.from(scores),
    expected.map(([s]) => s),
  );
});

// Contingency of [0,0,0,1,1,1] vs [0,0,1,1,2,2]: rows (2,1,0), (0,1,2); N = 6.
// MI = 2·(2/6)·ln((2/6)/((1/2)(1/3))) = (2/3) ln 2; H(U) = ln 2, H(V) = ln 3;
// NMI = (2/3) ln 2 / ((ln 2 + ln 3)/2) ≈ 0.5158.
test('NMI: hand-computed contingency table, perfect and independent labelings', () => {
  close(normalizedMutualInformation([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]), ((2 / 3) * Math.LN2) / ((Math.LN2 + Math.log(3)) / 2), 'NMI');
  assert.equal(normalizedMutualInformation([5, 5, 9, 9, 2], [1, 1, 0, 0, 7]), 1);
  assert.equal(normalizedMutualInformation([0, 0, 1, 1], [0, 1, 0, 1]), 0);
  assert.equal(normalizedMutualInformation([3, 3, 3], [1, 1, 1]), 1);
});

test('NMI of k-means on well separated classes is 1; k-means is deterministic per seed', async () => {
  const random = seededRandom(4);
  const centres = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
    [-1, 0, 0],
  ];
  const labels = Array.from({ length: 120 }, (_, i) => i % 4);
  const data = labels.flatMap((c) => (centres[c] as number[]).map((v) => v + 0.05 * (random() - 0.5)));
  const x = embeddings(data, 120, 3);
  assert.equal(await evaluateNmi(x, labels, { seed: 1 }), 1);
  const a = await kMeans(normalizeRows(x), 7, { seed: 5 });
  const b = await kMeans(normalizeRows(x), 7, { seed: 5 });
  assert.deepEqual(a.assignments, b.assignments);
  assert.ok(a.iterations >= 1 && a.inertia >= 0, `iterations ${a.iterations}, inertia ${a.inertia}`);
});
