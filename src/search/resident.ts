// Exact search over vectors held in memory, for the service's unfiltered queries. LanceDB costs a
// few milliseconds of CPU per query whatever the index (3 ms on 360 rows, 6–10 ms for IVF-PQ on
// 100k), which caps a 2-core service near 150 queries/s. Here the queries that arrive while a scan
// runs are answered together by the next one: one matrix product of the waiting queries against
// all vectors (the addon's k-NN, OpenBLAS), then each query's candidates re-scored in float64, so
// the distances are exact and equal ties are ordered by id as LanceDB's results are here.
import { loadNativeAddon } from '../engine/native_kernels.ts';
import { nearestNeighbours } from '../metrics/knn.ts';
import type { SearchHit, SearchMetric } from './types.ts';

/** Above this many bytes of vectors the index is not held in memory (LanceDB answers instead). */
export const RESIDENT_MAX_BYTES = 512 * 2 ** 20;
/** Queries answered by one scan at most (a larger backlog takes several scans). */
const MAX_BATCH = 256;
/** Candidates re-scored beyond k: float32 products can swap near-ties. */
const EXTRA_CANDIDATES = 8;

interface Pending {
  query: Float32Array;
  k: number;
  resolve: (hits: SearchHit[]) => void;
  reject: (err: unknown) => void;
}

export class ResidentVectors {
  private readonly pending: Pending[] = [];
  private scanning = false;
  /** The gallery as the scan scores it: unit rows for cosine, raw rows (with −‖g‖²/2) for l2. */
  private readonly scanned: Float32Array;
  private readonly bias: Float64Array | undefined;
  private readonly norms: Float64Array;
  private readonly engine: 'native' | 'auto';

  constructor(
    private readonly vectors: Float32Array,
    private readonly dim: number,
    private readonly metric: SearchMetric,
    private readonly labels: (string | null)[],
    private readonly paths: (string | null)[],
  ) {
    const rows = vectors.length / dim;
    this.norms = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += (vectors[i * dim + d] as number) ** 2;
      this.norms[i] = Math.sqrt(s);
    }
    if (metric === 'cosine') {
      this.scanned = new Float32Array(vectors.length);
      for (let i = 0; i < rows; i++) {
        const n = (this.norms[i] as number) || 1;
        for (let d = 0; d < dim; d++) this.scanned[i * dim + d] = (vectors[i * dim + d] as number) / n;
      }
    } else {
      this.scanned = vectors;
      // q·g − ‖g‖²/2 ranks as −‖q − g‖²/2: the nearest scores highest.
      this.bias = Float64Array.from(this.norms, (n) => -(n * n) / 2);
    }
    // The addon when built; otherwise the k-NN's own choice (slower, still exact).
    this.engine = loadNativeAddon() ? 'native' : 'auto';
  }

  get rows(): number {
    return this.vectors.length / this.dim;
  }

  /** The stored row of an id (a copy), with its label and path. */
  item(id: number): { vector: Float32Array; label: string | null; path: string | null } {
    return {
      vector: this.vectors.slice(id * this.dim, (id + 1) * this.dim),
      label: this.labels[id] ?? null,
      path: this.paths[id] ?? null,
    };
  }

  /** The k nearest rows of one query (validated by the caller). */
  search(query: Float32Array, k: number): Promise<SearchHit[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ query, k, resolve, reject });
      if (!this.scanning) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.scanning = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH);
        try {
          const hits = await this.scan(batch);
          batch.forEach((p, i) => p.resolve(hits[i] as SearchHit[]));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.scanning = false;
    }
  }

  private async scan(batch: Pending[]): Promise<SearchHit[][]> {
    const { dim } = this;
    const q = new Float32Array(batch.length * dim);
    batch.forEach((p, i) => {
      let n = 1;
      if (this.metric === 'cosine') n = Math.hypot(...p.query) || 1;
      for (let d = 0; d < dim; d++) q[i * dim + d] = (p.query[d] as number) / n;
    });
    const kmax = Math.max(...batch.map((p) => p.k));
    const candidates = Math.min(this.rows, kmax + EXTRA_CANDIDATES);
    const lists = await nearestNeighbours(
      { rows: batch.length, dim, data: q },
      { rows: this.rows, dim, data: this.scanned },
      { k: candidates, engine: this.engine, ...(this.bias ? { bias: this.bias } : {}) },
    );
    return batch.map((p, b) => {
      const hits: SearchHit[] = [];
      for (let j = 0; j < lists.k; j++) {
        const id = lists.indices[b * lists.k + j] as number;
        if (id < 0) continue;
        hits.push({ id, distance: this.distance(p.query, id), label: this.labels[id] ?? null, path: this.paths[id] ?? null });
      }
      return hits.sort((a, c) => a.distance - c.distance || a.id - c.id).slice(0, p.k);
    });
  }

  /** Exact, in float64: Euclidean, or 1 − cosine similarity. */
  private distance(query: Float32Array, id: number): number {
    const { dim, vectors } = this;
    let dot = 0;
    let qq = 0;
    let sq = 0;
    for (let d = 0; d < dim; d++) {
      const a = query[d] as number;
      const g = vectors[id * dim + d] as number;
      dot += a * g;
      qq += a * a;
      sq += (a - g) * (a - g);
    }
    if (this.metric === 'l2') return Math.sqrt(sq);
    const denom = Math.sqrt(qq) * (this.norms[id] as number);
    return denom > 0 ? Math.max(0, 1 - dot / denom) : 1;
  }
}
