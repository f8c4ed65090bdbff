import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random, STREAMS } from '../src/engine/random.ts';
import {
  BalancedBatchSampler,
  type SamplerState,
  chunkOrder,
  fromChunkLayout,
  rowsToChunkLayout,
  toChunkLayout,
} from '../src/samplers/balanced_batch_sampler.ts';
import { inferChunkLayout } from '../src/samplers/chunk_layout.ts';

/** labels: sizes[c] images of class c, interleaved so that class indices are not contiguous. */
function makeLabels(sizes: number[]): number[] {
  const labels: number[] = [];
  const left = [...sizes];
  while (left.some((n) => n > 0))
    left.forEach((n, c) => {
      if (n > 0) {
        labels.push(c);
        left[c] = n - 1;
      }
    });
  return labels;
}

/**
 * The official sampler, transliterated line by line from docs/algorithm.md §1.1 (the Python
 * `BalancedBatchSampler`), with numpy's calls mapped onto one Random stream:
 * np.random.shuffle → shuffle; choice(set, P, replace=False) → permutation(len)[:P];
 * choice(idx, K, replace=True) → K × int(len).
 */
function officialBatches(labels: number[], P: number, K: number, seed: number, epochs: number): number[][] {
  const rng = new Random(seed, STREAMS.sampler);
  const labelsSet = [...new Set(labels)].sort((a, b) => a - b);
  const labelToIndices = new Map<number, number[]>();
  for (const l of labelsSet)
    labelToIndices.set(
      l,
      labels.flatMap((y, i) => (y === l ? [i] : [])),
    );
  for (const l of labelsSet) rng.shuffle(labelToIndices.get(l) as number[]);
  const usedLabelIndicesCount = new Map(labelsSet.map((l) => [l, 0]));
  const nDataset = labels.length;
  const batchSize = P * K;
  const out: number[][] = [];
  for (let e = 0; e < epochs; e++) {
    let count = 0;
    while (count + batchSize < nDataset) {
      const perm = rng.shuffle(labelsSet.map((_, i) => i));
      const classes = perm.slice(0, P).map((i) => labelsSet[i] as number);
      const indices: number[] = [];
      for (const c of classes) {
        const idx = labelToIndices.get(c) as number[];
        const used = usedLabelIndicesCount.get(c) as number;
        if (used + K > idx.length) {
          for (let k = 0; k < K; k++) indices.push(idx[rng.int(idx.length)] as number);
        } else {
          indices.push(...idx.slice(used, used + K));
        }
        usedLabelIndicesCount.set(c, used + K);
        if ((usedLabelIndicesCount.get(c) as number) + K > idx.length) {
          rng.shuffle(idx);
          usedLabelIndicesCount.set(c, 0);
        }
      }
      out.push(indices);
      count += batchSize;
    }
  }
  return out;
}

test('batches follow the official sampler exactly (draw order, cursors, reshuffles, small classes)', () => {
  const labels = makeLabels([12, 7, 3, 20, 9, 5, 16]);
  const [P, K] = [4, 4];
  const s = new BalancedBatchSampler(labels, { P, K, seed: 11 });
  const epochs = 5;
  const expected = officialBatches(labels, P, K, 11, epochs);
  assert.equal(expected.length, epochs * s.batchesPerEpoch());
  for (const want of expected) assert.deepEqual([...s.nextBatch()], want);
});

test('each batch is P·K indices, class-major, with P distinct classes', () => {
  const labels = makeLabels([30, 25, 40, 18, 22, 35, 27, 19]);
  const [P, K] = [5, 3];
  const s = new BalancedBatchSampler(labels, { P, K, seed: 3 });
  for (let b = 0; b < 50; b++) {
    const batch = s.nextBatch();
    assert.equal(batch.length, P * K);
    const classes: number[] = [];
    for (let p = 0; p < P; p++) {
      const block = [...batch.subarray(p * K, (p + 1) * K)].map((i) => labels[i] as number);
      assert.ok(
        block.every((y) => y === block[0]),
        `batch ${b}: slot ${p} mixes classes ${block}`,
      );
      classes.push(block[0] as number);
      assert.equal(new Set(batch.subarray(p * K, (p + 1) * K)).size, K, 'a class with ≥ K images never repeats an image in a batch');
    }
    assert.equal(new Set(classes).size, P, `batch ${b}: classes ${classes} not distinct`);
  }
});

test('every class and slot is drawn about uniformly', () => {
  const labels = makeLabels([20, 20, 20, 20, 20, 20]);
  const s = new BalancedBatchSampler(labels, { P: 2, K: 2, seed: 5 });
  const first = [0, 0, 0, 0, 0, 0];
  const any = [0, 0, 0, 0, 0, 0];
  const T = 3000;
  for (let b = 0; b < T; b++) {
    const batch = s.nextBatch();
    const c0 = labels[batch[0] as number] as number;
    const c1 = labels[batch[2] as number] as number;
    first[c0]!++;
    any[c0]!++;
    any[c1]!++;
  }
  for (let c = 0; c < 6; c++) {
    assert.ok(Math.abs((first[c] as number) / T - 1 / 6) < 0.03, `class ${c} first ${first[c]}/${T}`);
    assert.ok(Math.abs((any[c] as number) / T - 2 / 6) < 0.04, `class ${c} drawn ${any[c]}/${T}`);
  }
});

test('cursors advance by K, leftovers are skipped and the class is reshuffled', () => {
  // P = number of classes, so every class is drawn in every batch.
  const sizes = [10, 7, 9];
  const labels = makeLabels(sizes);
  const K = 3;
  const s = new BalancedBatchSampler(labels, { P: 3, K, seed: 2 });
  const blocks: number[][][] = sizes.map(() => []);
  const cursors: number[][] = sizes.map(() => []);
  const orders: number[][][] = sizes.map(() => []);
  for (let b = 0; b < 12; b++) {
    const batch = s.nextBatch();
    for (let p = 0; p < 3; p++) {
      const block = [...batch.subarray(p * K, (p + 1) * K)];
      blocks[labels[block[0] as number] as number]!.push(block);
    }
    const st = s.state();
    st.used.forEach((u, c) => cursors[c]!.push(u));
    st.order.forEach((o, c) => orders[c]!.push(o));
  }
  assert.deepEqual(cursors[0], [3, 6, 0, 3, 6, 0, 3, 6, 0, 3, 6, 0]);
  assert.deepEqual(cursors[1], [3, 0, 3, 0, 3, 0, 3, 0, 3, 0, 3, 0]);
  assert.deepEqual(cursors[2], [3, 6, 0, 3, 6, 0, 3, 6, 0, 3, 6, 0]);
  sizes.forEach((size, c) => {
    const perPass = Math.floor(size / K);
    const members = labels.flatMap((y, i) => (y === c ? [i] : []));
    for (let pass = 0; pass * perPass < blocks[c]!.length; pass++) {
      const seen = blocks[c]!.slice(pass * perPass, (pass + 1) * perPass).flat();
      assert.equal(new Set(seen).size, perPass * K, `class ${c} pass ${pass} repeats an image`);
      assert.ok(seen.every((i) => members.includes(i)));
      // The pass read the first perPass·K entries of the order in force during it.
      const order = pass === 0 ? undefined : orders[c]![pass * perPass - 1];
      if (order) assert.deepEqual(seen, order.slice(0, perPass * K));
    }
    // The order changes at each reshuffle and stays a permutation of the class.
    const o = orders[c]!;
    assert.deepEqual(
      [...(o[0] as number[])].sort((a, b) => a - b),
      members,
    );
    assert.notDeepEqual(o[perPass - 1], o[2 * perPass - 1]);
    assert.deepEqual(o[perPass], o[perPass - 1], 'no reshuffle before the pass is used up');
  });
});

test('a class with fewer than K images is drawn with replacement, with one warning', () => {
  const labels = makeLabels([2, 12, 12]);
  const small = labels.flatMap((y, i) => (y === 0 ? [i] : []));
  const warnings: string[] = [];
  const s = new BalancedBatchSampler(labels, { P: 3, K: 5, seed: 9, onWarning: (m) => warnings.push(m), classNames: ['tiny', 'a', 'b'] });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] as string, /class 0 \(tiny\) has 2 images, fewer than K = 5.*with replacement/);
  let duplicates = 0;
  for (let b = 0; b < 20; b++) {
    const batch = s.nextBatch();
    for (let p = 0; p < 3; p++) {
      const block = [...batch.subarray(p * 5, (p + 1) * 5)];
      if (labels[block[0] as number] !== 0) continue;
      assert.ok(
        block.every((i) => small.includes(i)),
        `${block} not all from the small class`,
      );
      if (new Set(block).size < 5) duplicates++;
    }
    assert.equal(s.state().used[0], 0, 'the small class cursor is reset after every draw');
  }
  assert.equal(duplicates, 20, '5 draws from 2 images always repeat');
  assert.equal(warnings.length, 1, 'warned once, not per batch');
});

test('an epoch has ⌈N/B⌉ − 1 batches', () => {
  // [N, P, K, batches]: ⌊N/B⌋ unless B divides N; CUB's train split (5,864 images) at P·K = 80: 73.
  for (const [n, P, K, want] of [
    [26, 3, 3, 2],
    [27, 3, 3, 2],
    [28, 3, 3, 3],
    [100, 4, 5, 4],
    [101, 4, 5, 5],
    [5864, 20, 4, 73],
  ] as const) {
    const labels = Array.from({ length: n }, (_, i) => i % 20);
    const s = new BalancedBatchSampler(labels, { P, K, seed: 1 });
    assert.equal(s.batchesPerEpoch(), want, `N=${n} P=${P} K=${K}`);
    let count = 0;
    for (const batch of s.epoch()) {
      assert.equal(batch.length, P * K);
      count++;
    }
    assert.equal(count, want);
    assert.deepEqual(s.position(), { epoch: 1, batch: 0 });
    assert.equal([...s.epoch()].length, want);
    assert.deepEqual(s.position(), { epoch: 2, batch: 0 });
  }
});

test('the same seed gives the same batches, another seed others', () => {
  const labels = makeLabels([15, 15, 15, 15, 15]);
  const run = (seed: number): number[][] => {
    const s = new BalancedBatchSampler(labels, { P: 3, K: 2, seed });
    return Array.from({ length: 30 }, () => [...s.nextBatch()]);
  };
  assert.deepEqual(run(42), run(42));
  assert.notDeepEqual(run(42), run(43));
  // A caller-provided stream is used (and advanced) as given.
  const rng = new Random(42, STREAMS.sampler);
  const s = new BalancedBatchSampler(labels, { P: 3, K: 2, rng });
  assert.deepEqual(
    Array.from({ length: 30 }, () => [...s.nextBatch()]),
    run(42),
  );
});

test('state() / restore() continue exactly, mid-epoch, through JSON', () => {
  const labels = makeLabels([9, 14, 3, 11, 8, 20, 6]);
  const opts = { P: 4, K: 3 };
  const a = new BalancedBatchSampler(labels, { ...opts, seed: 7 });
  for (let b = 0; b < 7; b++) a.nextBatch();
  assert.ok(a.position().batch > 0, 'mid-epoch');
  const saved: SamplerState = JSON.parse(JSON.stringify(a.state()));
  const b = new BalancedBatchSampler(labels, { ...opts, seed: 999 });
  b.nextBatch();
  b.restore(saved);
  assert.deepEqual(b.position(), a.position());
  for (let i = 0; i < 40; i++) {
    assert.deepEqual([...b.nextBatch()], [...a.nextBatch()], `batch ${i} after restore`);
    assert.deepEqual(b.position(), a.position());
  }
  assert.deepEqual(b.state(), a.state());
  // The saved state is a snapshot: later batches do not change it.
  assert.deepEqual(JSON.parse(JSON.stringify(saved)), saved);
});

test('restore() rejects a state of another dataset or shape, leaving the sampler unchanged', () => {
  const labels = makeLabels([9, 14, 3, 11]);
  const a = new BalancedBatchSampler(labels, { P: 2, K: 3, seed: 1 });
  const st = a.state();
  const other = new BalancedBatchSampler(labels, { P: 2, K: 2, seed: 1 });
  assert.throws(() => other.restore(st), /P=2, K=3.*P=2, K=2/);
  const fewer = new BalancedBatchSampler(labels.slice(1), { P: 2, K: 3, seed: 1 });
  assert.throws(() => fewer.restore(st), /saved for 37 images; this split has 36/);
  const swapped = [...labels];
  [swapped[0], swapped[1]] = [swapped[1] as number, swapped[0] as number];
  const moved = new BalancedBatchSampler(swapped, { P: 2, K: 3, seed: 1 });
  const before = moved.state();
  assert.throws(() => moved.restore(st), /images of class \d differ/);
  assert.deepEqual(moved.state(), before);
  assert.throws(() => a.restore({ ...st, batchInEpoch: 99 }), /position/);
});

test('too few classes for P, or too few images for one batch, is a clear error', () => {
  assert.throws(() => new BalancedBatchSampler([0, 0, 1, 1, 2, 2], { P: 4, K: 1 }), /P = 4 classes per batch, but the training split has only 3 classes/);
  assert.throws(() => new BalancedBatchSampler([0, 1, 0, 1], { P: 2, K: 2 }), /N = 4 images.*P·K = 2·2 = 4/);
  assert.throws(() => new BalancedBatchSampler([0, 1], { P: 0, K: 2 }), /P \(classes per batch\) must be a positive integer/);
});

test('toChunkLayout puts the k-th sample of class slot p at row k·P + p', () => {
  // Class-major: a0 a1 a2 b0 b1 b2 → chunks a0 b0 | a1 b1 | a2 b2.
  assert.deepEqual([...toChunkLayout([10, 11, 12, 20, 21, 22], 2, 3)], [10, 20, 11, 21, 12, 22]);
  assert.deepEqual([...fromChunkLayout([10, 20, 11, 21, 12, 22], 2, 3)], [10, 11, 12, 20, 21, 22]);
  assert.deepEqual([...chunkOrder(3, 2)], [0, 2, 4, 1, 3, 5]);
  const rows = Float32Array.from([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]); // 4 rows of 2 values, P=2, K=2
  assert.deepEqual([...rowsToChunkLayout(rows, 2, 2, 2)], [0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5]);
  assert.throws(() => toChunkLayout([1, 2, 3], 2, 2), /P·K = 2·2 = 4 rows, got 3/);

  // A sampler batch reordered this way is in the layout the generator expects.
  const labels = makeLabels([10, 10, 10, 10, 10]);
  const s = new BalancedBatchSampler(labels, { P: 4, K: 3, seed: 4 });
  for (let b = 0; b < 5; b++) {
    const chunked = toChunkLayout(s.nextBatch(), 4, 3);
    assert.deepEqual(inferChunkLayout([...chunked].map((i) => labels[i] as number)), { P: 4, K: 3 });
  }
});
