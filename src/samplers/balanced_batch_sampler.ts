// The official class-balanced P×K batch sampler (`BalancedBatchSampler`, docs/algorithm.md §1.1),
// with its own seeded Random stream instead of numpy's global generator (QUIRK 15/17), and its
// whole state serialisable so a resumed run draws exactly the batches the interrupted one would.
//
// State, built once and kept across epochs:
//   - classes: the unique labels, ascending;
//   - order[c]: the ascending dataset indices of class c, shuffled once in place (Fisher–Yates);
//   - used[c] = 0: the cursor into order[c].
// One batch:
//   1. draw P distinct classes uniformly without replacement, keeping the drawn order. Structure of
//      numpy's `choice(labels_set, P, replace=False)`: a full Fisher–Yates permutation of the class
//      list, of which the first P are taken (not bit-compatible with numpy: our generator differs);
//   2. for each drawn class c, in order: if used[c] + K > |order[c]| (a class with fewer than K
//      images), K indices drawn uniformly *with replacement* from order[c]; otherwise
//      order[c][used[c] .. used[c]+K). Then used[c] += K, and if used[c] + K > |order[c]|, order[c]
//      is reshuffled in place and used[c] = 0 (the leftover images of that pass are skipped);
//   3. the B = P·K indices are returned class-major (row p·K + k = k-th sample of drawn class p).
// An epoch is `while count + B < N` (count += B per batch), i.e. ⌈N/B⌉ − 1 batches; nothing is reset
// between epochs. Use toChunkLayout (chunk_reorder.ts) to get the training loop's row k·P + p.
import { UserError } from '../errors.ts';
import { Random, STREAMS } from '../engine/random.ts';

export { chunkOrder, fromChunkLayout, rowsToChunkLayout, toChunkLayout } from './chunk_reorder.ts';

export interface BalancedBatchSamplerOptions {
  /** Classes per batch (TRAIN.NUM_SAMPLED_CLASSES). */
  P: number;
  /** Samples per class (TRAIN.NUM_PER_CLASS). */
  K: number;
  /** Seed of a new Random(seed, STREAMS.sampler); ignored when `rng` is given. Default 0. */
  seed?: number;
  /** A dedicated generator to use (and mutate) instead; its state is part of state(). */
  rng?: Random;
  /** Called once per class that has fewer than K images (sampled with replacement). */
  onWarning?: (message: string) => void;
  /** Names of the label values, for messages only. */
  classNames?: readonly string[];
}

/** Everything needed to continue exactly where a sampler stopped; plain JSON. */
export interface SamplerState {
  version: 1;
  P: number;
  K: number;
  /** Dataset size N. */
  n: number;
  /** Unique labels, ascending; order[i] and used[i] belong to classes[i]. */
  classes: number[];
  order: number[][];
  used: number[];
  rng: { state: string; inc: string };
  /** Epochs completed so far, and batches drawn in the current epoch. */
  epoch: number;
  batchInEpoch: number;
}

export class BalancedBatchSampler {
  readonly P: number;
  readonly K: number;
  readonly batchSize: number;
  readonly n: number;
  /** The unique labels, ascending. */
  readonly classes: readonly number[];
  private readonly rng: Random;
  private order: number[][];
  private used: number[];
  private epochIndex = 0;
  private batchIndex = 0;

  constructor(labels: ArrayLike<number>, opts: BalancedBatchSamplerOptions) {
    const { P, K } = opts;
    if (!Number.isInteger(P) || P < 1) throw new UserError(`sampler: P (classes per batch) must be a positive integer, got ${P}`);
    if (!Number.isInteger(K) || K < 1) throw new UserError(`sampler: K (samples per class) must be a positive integer, got ${K}`);
    this.P = P;
    this.K = K;
    this.batchSize = P * K;
    this.n = labels.length;
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i] as number;
      if (!Number.isInteger(y)) throw new UserError(`sampler: label ${y} at index ${i} is not an integer`);
      let list = byClass.get(y);
      if (!list) byClass.set(y, (list = []));
      list.push(i);
    }
    this.classes = [...byClass.keys()].sort((a, b) => a - b);
    if (this.classes.length < P) {
      throw new UserError(
        `sampler: P = ${P} classes per batch, but the training split has only ${this.classes.length} class${this.classes.length === 1 ? '' : 'es'}; lower P to at most ${this.classes.length}`,
      );
    }
    if (this.batchesPerEpoch() < 1) {
      throw new UserError(
        `sampler: the training split has N = ${this.n} images, not more than one batch of P·K = ${P}·${K} = ${this.batchSize}, so an epoch would have ⌈N/B⌉ − 1 = 0 batches; lower P or K`,
      );
    }
    this.rng = opts.rng ?? new Random(opts.seed ?? 0, STREAMS.sampler);
    // Ascending index lists, each shuffled once in place, in ascending class order.
    this.order = this.classes.map((c) => this.rng.shuffle(byClass.get(c) as number[]));
    this.used = this.classes.map(() => 0);
    const warn = opts.onWarning;
    if (warn) {
      this.classes.forEach((c, i) => {
        const size = (this.order[i] as number[]).length;
        if (size < K) {
          const name = opts.classNames?.[c];
          warn(
            `class ${c}${name !== undefined ? ` (${name})` : ''} has ${size} image${size === 1 ? '' : 's'}, fewer than K = ${K}: its ${K} samples per batch are drawn with replacement, so a batch repeats images`,
          );
        }
      });
    }
  }

  /** ⌈N/B⌉ − 1: the number of batches of the official `while count + B < N` loop. */
  batchesPerEpoch(): number {
    return Math.max(0, Math.ceil(this.n / this.batchSize) - 1);
  }

  /** Epochs completed and batches drawn in the current one (0 ≤ batch < batchesPerEpoch()). */
  position(): { epoch: number; batch: number } {
    return { epoch: this.epochIndex, batch: this.batchIndex };
  }

  /**
   * The next batch: B = P·K dataset indices, class-major (row p·K + k). Epochs follow one another
   * without any reset; position() tells where the batch falls.
   */
  nextBatch(): Int32Array {
    const { P, K } = this;
    const out = new Int32Array(this.batchSize);
    // numpy choice(replace=False): a full permutation of the class slots, the first P of it.
    const slots = this.rng.shuffle(this.classes.map((_, i) => i));
    for (let p = 0; p < P; p++) {
      const s = slots[p] as number;
      const idx = this.order[s] as number[];
      const used = this.used[s] as number;
      if (used + K > idx.length) {
        for (let k = 0; k < K; k++) out[p * K + k] = idx[this.rng.int(idx.length)] as number;
      } else {
        for (let k = 0; k < K; k++) out[p * K + k] = idx[used + k] as number;
      }
      let next = used + K;
      if (next + K > idx.length) {
        this.rng.shuffle(idx);
        next = 0;
      }
      this.used[s] = next;
    }
    this.batchIndex++;
    if (this.batchIndex >= this.batchesPerEpoch()) {
      this.batchIndex = 0;
      this.epochIndex++;
    }
    return out;
  }

  /** The batches left in the current epoch (all of it when called at an epoch boundary). */
  *epoch(): Generator<Int32Array, void, undefined> {
    const start = this.epochIndex;
    while (this.epochIndex === start) yield this.nextBatch();
  }

  state(): SamplerState {
    return {
      version: 1,
      P: this.P,
      K: this.K,
      n: this.n,
      classes: [...this.classes],
      order: this.order.map((o) => [...o]),
      used: [...this.used],
      rng: this.rng.getState(),
      epoch: this.epochIndex,
      batchInEpoch: this.batchIndex,
    };
  }

  /**
   * Continues from a state() of a sampler over the same labels with the same P and K. Checks that
   * the state fits (each stored order a permutation of its class's indices) before changing anything.
   */
  restore(s: SamplerState): void {
    const bad = (why: string): never => {
      throw new UserError(`sampler state does not fit this sampler: ${why}`);
    };
    if (s === null || typeof s !== 'object' || s.version !== 1) bad(`unknown version ${JSON.stringify((s as { version?: unknown } | null)?.version)}`);
    if (s.P !== this.P || s.K !== this.K) bad(`it was saved with P=${s.P}, K=${s.K}; this sampler has P=${this.P}, K=${this.K}`);
    if (s.n !== this.n) bad(`it was saved for ${s.n} images; this split has ${this.n}`);
    if (!Array.isArray(s.classes) || s.classes.length !== this.classes.length || s.classes.some((c, i) => c !== this.classes[i])) {
      bad(`it was saved for ${Array.isArray(s.classes) ? s.classes.length : '?'} classes; this split has ${this.classes.length} different ones`);
    }
    if (!Array.isArray(s.order) || !Array.isArray(s.used) || s.order.length !== this.classes.length || s.used.length !== this.classes.length)
      bad('order/used do not have one entry per class');
    const current = this.order;
    s.order.forEach((o, i) => {
      const mine = current[i] as number[];
      if (!Array.isArray(o) || o.length !== mine.length)
        bad(`class ${this.classes[i]} has ${mine.length} images, the state lists ${Array.isArray(o) ? o.length : '?'}`);
      const a = [...o].sort((x, y) => x - y);
      const b = [...mine].sort((x, y) => x - y);
      if (a.some((v, j) => v !== b[j])) bad(`the images of class ${this.classes[i]} differ`);
      const u = s.used[i];
      if (!Number.isInteger(u) || (u as number) < 0 || (u as number) > mine.length) bad(`cursor ${u} of class ${this.classes[i]} is out of range`);
    });
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.batchInEpoch) || s.batchInEpoch < 0 || s.batchInEpoch >= this.batchesPerEpoch()) {
      bad(`position epoch ${s.epoch}, batch ${s.batchInEpoch} is invalid (an epoch has ${this.batchesPerEpoch()} batches)`);
    }
    if (typeof s.rng?.state !== 'string' || typeof s.rng?.inc !== 'string') bad('missing generator state');
    this.rng.setState(s.rng);
    this.order = s.order.map((o) => [...o]);
    this.used = [...s.used];
    this.epochIndex = s.epoch;
    this.batchIndex = s.batchInEpoch;
  }
}
