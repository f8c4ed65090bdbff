// A brute-force, in-memory SearchIndex for the service's tests (the LanceDB index is tested on its
// own). It understands one filter form, label = '…', and throws a UserError for any other, the way
// the real index reports filters it cannot parse.
import { UserError } from '../../src/errors.ts';
import type { IndexManifest, SearchHit, SearchIndex, SearchItem, SearchMetric, SearchOptions } from '../../src/search/types.ts';

export interface MemoryIndexOptions {
  vectors: Float32Array;
  dim: number;
  labels?: (string | null)[];
  paths?: (string | null)[];
  metric?: SearchMetric;
  imagesRoot?: string | null;
  /** Milliseconds each search waits first (to test draining). */
  delayMs?: number;
}

/** The distance of the index's metric between a query row and a stored row. */
export function distance(metric: SearchMetric, a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  let sq = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    aa += x * x;
    bb += y * y;
    sq += (x - y) * (x - y);
  }
  if (metric === 'l2') return Math.sqrt(sq);
  const norm = Math.sqrt(aa) * Math.sqrt(bb);
  return norm === 0 ? 1 : 1 - dot / norm;
}

export class MemoryIndex implements SearchIndex {
  readonly dir = '(memory)';
  readonly engine = 'memory' as const;
  readonly manifest: IndexManifest;
  searches = 0;
  delayMs: number;
  private readonly rows: Float32Array[];

  constructor(private readonly opts: MemoryIndexOptions) {
    const count = opts.vectors.length / opts.dim;
    this.rows = Array.from({ length: count }, (_, i) => opts.vectors.subarray(i * opts.dim, (i + 1) * opts.dim));
    this.delayMs = opts.delayMs ?? 0;
    this.manifest = {
      format: 'hardneg-index/1',
      dim: opts.dim,
      count,
      metric: opts.metric ?? 'l2',
      kind: 'exact',
      imagesRoot: opts.imagesRoot ?? null,
      model: null,
      createdAt: new Date(0).toISOString(),
      software: { hardneg: 'test', lancedb: 'none' },
    };
  }

  private filter(where: string | undefined): (id: number) => boolean {
    if (where === undefined) return () => true;
    const m = /^\s*label\s*=\s*'([^']*)'\s*$/.exec(where);
    if (!m) throw new UserError(`where: cannot parse filter '${where}'`);
    const want = m[1];
    return (id) => this.opts.labels?.[id] === want;
  }

  async search(queries: Float32Array, opts: SearchOptions): Promise<SearchHit[][]> {
    this.searches++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const keep = this.filter(opts.where);
    const dim = this.opts.dim;
    const out: SearchHit[][] = [];
    for (let q = 0; q * dim < queries.length; q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim);
      const scored: SearchHit[] = [];
      for (let id = 0; id < this.rows.length; id++) {
        if (!keep(id)) continue;
        scored.push({ id, distance: distance(this.manifest.metric, query, this.rows[id] as Float32Array), ...this.meta(id) });
      }
      scored.sort((a, b) => a.distance - b.distance || a.id - b.id);
      out.push(scored.slice(0, opts.k));
    }
    return out;
  }

  private meta(id: number): { label: string | null; path: string | null } {
    return { label: this.opts.labels?.[id] ?? null, path: this.opts.paths?.[id] ?? null };
  }

  async item(id: number): Promise<SearchItem | null> {
    return id >= 0 && id < this.rows.length ? { id, ...this.meta(id) } : null;
  }

  async vector(id: number): Promise<Float32Array | null> {
    const row = this.rows[id];
    return row ? Float32Array.from(row) : null;
  }

  close(): void {}
}
