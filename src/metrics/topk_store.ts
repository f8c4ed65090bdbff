// The k best (score, index) pairs of many rows at once, each row a binary heap whose root is the
// worst entry kept, so most candidates are rejected by one comparison with `floors[row]`.
// "Better" is a total order (higher score, then lower index), so the kept set and its sorted order
// do not depend on the order in which candidates arrive: blocks may be scanned in any order.

export interface TopKBuffers {
  scores: Float64Array;
  indices: Int32Array;
  sizes: Int32Array;
  /** Root score of a full row, -Infinity before: a candidate below it can be skipped. */
  floors: Float64Array;
}

/** Plain or SharedArrayBuffer-backed storage for `rows` lists of at most `k` entries. */
export function allocTopK(rows: number, k: number, shared = false): TopKBuffers {
  const make = (bytes: number): ArrayBuffer | SharedArrayBuffer => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const buffers = {
    scores: new Float64Array(make(rows * k * 8)),
    indices: new Int32Array(make(rows * k * 4)),
    sizes: new Int32Array(make(rows * 4)),
    floors: new Float64Array(make(rows * 8)),
  };
  buffers.floors.fill(k === 0 ? Infinity : -Infinity);
  return buffers;
}

export class TopKStore {
  readonly scores: Float64Array;
  readonly indices: Int32Array;
  readonly sizes: Int32Array;
  readonly floors: Float64Array;

  constructor(
    readonly rows: number,
    readonly k: number,
    buffers: TopKBuffers = allocTopK(rows, k),
  ) {
    this.scores = buffers.scores;
    this.indices = buffers.indices;
    this.sizes = buffers.sizes;
    this.floors = buffers.floors;
  }

  reset(): void {
    this.sizes.fill(0);
    this.floors.fill(this.k === 0 ? Infinity : -Infinity);
  }

  /** Offers a candidate; callers skip scores below `floors[row]` first, for speed. */
  offer(row: number, score: number, index: number): void {
    const k = this.k;
    if (k === 0) return;
    const base = row * k;
    const size = this.sizes[row] as number;
    const s = this.scores;
    const ix = this.indices;
    if (size < k) {
      this.siftUp(base, size, score, index);
      this.sizes[row] = size + 1;
      if (size + 1 === k) this.floors[row] = s[base] as number;
      return;
    }
    const rootScore = s[base] as number;
    if (score < rootScore || (score === rootScore && index > (ix[base] as number))) return;
    this.siftDown(base, k, score, index);
    this.floors[row] = s[base] as number;
  }

  /** Writes the row best first into out[offset..offset+size) and returns size; empties the row. */
  drainSorted(row: number, outIndices: Int32Array, outScores: Float64Array | null, offset: number): number {
    const base = row * this.k;
    const size = this.sizes[row] as number;
    // Pop the worst entry into the last free slot until the heap is empty.
    for (let n = size; n > 0; n--) {
      const worstScore = this.scores[base] as number;
      const worstIndex = this.indices[base] as number;
      outIndices[offset + n - 1] = worstIndex;
      if (outScores) outScores[offset + n - 1] = worstScore;
      if (n > 1) this.siftDown(base, n - 1, this.scores[base + n - 1] as number, this.indices[base + n - 1] as number);
    }
    this.sizes[row] = 0;
    this.floors[row] = this.k === 0 ? Infinity : -Infinity;
    return size;
  }

  /** Offers every entry of `other`'s row `fromRow` to this store's row `row`. */
  absorb(row: number, other: TopKStore, fromRow: number): void {
    const base = fromRow * other.k;
    const size = other.sizes[fromRow] as number;
    for (let i = 0; i < size; i++) {
      const score = other.scores[base + i] as number;
      if (score >= (this.floors[row] as number)) this.offer(row, score, other.indices[base + i] as number);
    }
  }

  // Heap of `size` entries at `base`: every parent is worse than or equal to its children.
  private siftUp(base: number, position: number, score: number, index: number): void {
    const s = this.scores;
    const ix = this.indices;
    let i = position;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const ps = s[base + parent] as number;
      const pi = ix[base + parent] as number;
      if (ps < score || (ps === score && pi > index)) break; // parent already worse
      s[base + i] = ps;
      ix[base + i] = pi;
      i = parent;
    }
    s[base + i] = score;
    ix[base + i] = index;
  }

  /** Puts (score, index) at the root of a heap of `size` entries and restores the order. */
  private siftDown(base: number, size: number, score: number, index: number): void {
    const s = this.scores;
    const ix = this.indices;
    let i = 0;
    while (true) {
      let child = 2 * i + 1;
      if (child >= size) break;
      let cs = s[base + child] as number;
      let ci = ix[base + child] as number;
      if (child + 1 < size) {
        const rs = s[base + child + 1] as number;
        const ri = ix[base + child + 1] as number;
        if (rs < cs || (rs === cs && ri > ci)) {
          child += 1;
          cs = rs;
          ci = ri;
        }
      }
      if (score < cs || (score === cs && index > ci)) break; // new entry is the worse one
      s[base + i] = cs;
      ix[base + i] = ci;
      i = child;
    }
    s[base + i] = score;
    ix[base + i] = index;
  }
}
