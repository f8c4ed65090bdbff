// Score blocks in plain TypeScript: float64 dot products of row-major rows.
// About 2-3 GFLOP/s per core; used for small problems, where starting worker threads costs more.
import type { TilePlace, TileScores } from './tile_scan.ts';
import type { TileScorer } from './knn_tasks.ts';

export class JsTileScorer implements TileScorer {
  private buffer = new Float64Array(0);
  private readonly queries: Float64Array;
  private readonly gallery: Float64Array;

  constructor(
    queries: Float32Array | Float64Array,
    gallery: Float32Array | Float64Array,
    private readonly dim: number,
  ) {
    // One array type keeps the inner loop monomorphic.
    this.queries = queries instanceof Float64Array ? queries : Float64Array.from(queries);
    this.gallery = gallery === queries ? this.queries : gallery instanceof Float64Array ? gallery : Float64Array.from(gallery);
  }

  score(place: TilePlace): TileScores {
    const { query0, gallery0, rows, cols } = place;
    if (this.buffer.length < rows * cols) this.buffer = new Float64Array(rows * cols);
    const out = this.buffer;
    for (let r = 0; r < rows; r++) {
      const qo = (query0 + r) * this.dim;
      for (let c = 0; c < cols; c++) out[r * cols + c] = dot(this.queries, qo, this.gallery, (gallery0 + c) * this.dim, this.dim);
    }
    return out.subarray(0, rows * cols);
  }
}

/** Σ a[ao+d]·b[bo+d] with four independent float64 accumulators (instruction-level parallelism). */
export function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d + 4 <= n; d += 4) {
    s0 += (a[ao + d] as number) * (b[bo + d] as number);
    s1 += (a[ao + d + 1] as number) * (b[bo + d + 1] as number);
    s2 += (a[ao + d + 2] as number) * (b[bo + d + 2] as number);
    s3 += (a[ao + d + 3] as number) * (b[bo + d + 3] as number);
  }
  for (; d < n; d++) s0 += (a[ao + d] as number) * (b[bo + d] as number);
  return s0 + s1 + (s2 + s3);
}
