// Reorder a sampler batch into the chunk layout (docs/algorithm.md §1.2).
//
// The sampler yields rows class-major: row j = p·K + k is the k-th sample of the p-th drawn class.
// The training loop needs K chunks of P rows: X′[k·P + p] = X[p·K + k], so chunk k holds the k-th
// sample of every class, with the same class order in every chunk.

function checkPK(length: number, P: number, K: number): void {
  if (!Number.isInteger(P) || !Number.isInteger(K) || P < 1 || K < 1) throw new RangeError(`P and K must be positive integers, got P=${P}, K=${K}`);
  if (length !== P * K) throw new RangeError(`expected P·K = ${P}·${K} = ${P * K} rows, got ${length}`);
}

/** order[k·P + p] = p·K + k: the class-major row that lands at each chunk-layout row. */
export function chunkOrder(P: number, K: number): Int32Array {
  checkPK(P * K, P, K);
  const order = new Int32Array(P * K);
  for (let k = 0; k < K; k++) for (let p = 0; p < P; p++) order[k * P + p] = p * K + k;
  return order;
}

/** Class-major (row p·K + k) → chunk layout (row k·P + p). Works for indices and labels alike. */
export function toChunkLayout(indices: ArrayLike<number>, P: number, K: number): Int32Array {
  checkPK(indices.length, P, K);
  const out = new Int32Array(P * K);
  for (let k = 0; k < K; k++) for (let p = 0; p < P; p++) out[k * P + p] = indices[p * K + k] as number;
  return out;
}

/** Chunk layout (row k·P + p) → class-major (row p·K + k); the inverse of toChunkLayout. */
export function fromChunkLayout(rows: ArrayLike<number>, P: number, K: number): Int32Array {
  checkPK(rows.length, P, K);
  const out = new Int32Array(P * K);
  for (let k = 0; k < K; k++) for (let p = 0; p < P; p++) out[p * K + k] = rows[k * P + p] as number;
  return out;
}

/**
 * Reorders whole rows of `rowSize` values (e.g. images, H·W·C floats each) from class-major to
 * chunk layout, into a new array of the same type.
 */
export function rowsToChunkLayout<T extends Float32Array | Int32Array | Uint8Array>(data: T, rowSize: number, P: number, K: number): T {
  checkPK(data.length / rowSize, P, K);
  const out = new (data.constructor as { new (n: number): T })(data.length);
  const order = chunkOrder(P, K);
  for (let i = 0; i < order.length; i++) {
    const src = order[i] as number;
    out.set(data.subarray(src * rowSize, (src + 1) * rowSize), i * rowSize);
  }
  return out;
}
