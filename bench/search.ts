// Search index benchmark: 100,000 × 128 clustered float32 vectors (seeded), an exact and an ANN
// (IVF-PQ) index built from them (seconds each), recall@10 of ANN vs exact on 200 queries, and
// in-process search latency, one query per call, at concurrency 1 and 32 (Promise-based, as the
// HTTP service calls it): p50, p99, queries/s; the same for the in-memory engine (exact), and the
// HTTP service of `hardneg serve --index` under 2,000 requests from 1 and 32 clients, once with
// its default engine and once with --engine lancedb.
// Run alone: node --import tsx bench/search.ts [rows] [kind]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { seededRandom } from '../src/metrics/index.ts';
import { buildIndex, type IndexKind, openIndex } from '../src/search/index_store.ts';
import { loadTest } from '../src/search/load_test.ts';
import type { SearchEngine, SearchIndex } from '../src/search/types.ts';
import type { BenchResult } from './timing.ts';

export interface LatencyStats {
  concurrency: number;
  p50_ms: number;
  p99_ms: number;
  qps: number;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** `total` single-query searches by `concurrency` workers. */
async function latency(index: SearchIndex, queries: Float32Array[], concurrency: number, total: number): Promise<LatencyStats> {
  const times: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (let i; (i = next++) < total;) {
      const t = performance.now();
      await index.search(queries[i % queries.length] as Float32Array, { k: 10 });
      times.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  return { concurrency, p50_ms: round(quantile(times, 0.5)), p99_ms: round(quantile(times, 0.99)), qps: round(total / seconds) };
}

export interface HttpLoopbackStats extends LatencyStats {
  requests: number;
  errors: number;
  max_ms: number;
}

/**
 * The same queries through the HTTP API of `hardneg serve --index`, run as its own process (as a
 * user runs it) and loaded from this one over loopback: 2,000 requests per concurrency level, the
 * issue's acceptance load. Separate processes so the load generator does not share the server's
 * event loop.
 */
export async function httpLoopbackBench(
  indexDir: string,
  queries: Float32Array[],
  concurrency: number[],
  requests = 2000,
  engine: SearchEngine = 'auto',
): Promise<HttpLoopbackStats[]> {
  const args = [join(ROOT, 'bin', 'hardneg'), 'serve', '--index', indexDir, '--port', '0', '--engine', engine];
  const server = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      let out = '';
      let err = '';
      server.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /http:\/\/[^\s/]+:\d+\//.exec(out);
        if (m) resolveUrl(m[0]);
      });
      server.stderr.on('data', (b: Buffer) => (err += b.toString()));
      server.once('exit', (code) => reject(new Error(`hardneg serve --index exited with ${code}: ${err.trim()}`)));
    });
    const stats: HttpLoopbackStats[] = [];
    for (const clients of concurrency) {
      const r = await loadTest({
        url: `${url}api/search`,
        clients,
        requests,
        body: (i) => ({ vector: Array.from(queries[i % queries.length] as Float32Array), k: 10 }),
      });
      stats.push({
        concurrency: clients,
        requests: r.requests,
        errors: r.errors,
        p50_ms: round(r.p50_ms),
        p99_ms: round(r.p99_ms),
        max_ms: round(r.max_ms),
        qps: round(r.qps),
      });
    }
    return stats;
  } finally {
    server.kill('SIGTERM');
  }
}

/** The index opened with engine 'memory': recall@10 against LanceDB's exact scan, and latency. */
async function memoryEngineBench(dir: string, queries: Float32Array[], exactHits: { id: number }[][]) {
  const index = await openIndex(dir, { engine: 'memory' });
  try {
    let found = 0;
    for (const [q, query] of queries.entries()) {
      const truth = new Set((exactHits[q] as { id: number }[]).map((h) => h.id));
      const [hits] = await index.search(query, { k: 10 });
      found += (hits as { id: number }[]).filter((h) => truth.has(h.id)).length;
    }
    return {
      recall_at_10: round(found / (queries.length * 10), 4),
      latency: [await latency(index, queries, 1, 200), await latency(index, queries, 32, 2000)],
    };
  } finally {
    index.close();
  }
}

export async function benchSearch(options: { rows?: number; dim?: number; clusters?: number; queries?: number; annKind?: Exclude<IndexKind, 'exact'> } = {}) {
  const { rows = 100_000, dim = 128, clusters = 100, queries: nq = 200, annKind = 'ivf-pq' } = options;
  const random = seededRandom(1);
  const centres = Float32Array.from({ length: clusters * dim }, () => (random() - 0.5) * 4);
  const x = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    const c = Math.floor(random() * clusters);
    for (let d = 0; d < dim; d++) x[i * dim + d] = (centres[c * dim + d] as number) + (random() - 0.5);
  }
  // Queries near stored points (a perturbed copy), as image queries of a collection are.
  const queries = Array.from({ length: nq }, () => {
    const row = Math.floor(random() * rows);
    return Float32Array.from(x.subarray(row * dim, (row + 1) * dim), (v) => v + (random() - 0.5) * 0.3);
  });
  const dir = mkdtempSync(join(tmpdir(), 'hardneg-bench-search-'));
  try {
    const exactBuild = await buildIndex({ out: join(dir, 'exact'), vectors: x, dim, kind: 'exact' });
    const annBuild = await buildIndex({ out: join(dir, 'ann'), vectors: x, dim, kind: annKind });
    const exact = await openIndex(join(dir, 'exact'));
    const ann = await openIndex(join(dir, 'ann'));
    try {
      let found = 0;
      const exactHits = await exact.search(Float32Array.from(queries.flatMap((q) => Array.from(q))), { k: 10 });
      for (const [q, query] of queries.entries()) {
        const truth = new Set((exactHits[q] as { id: number }[]).map((h) => h.id));
        const [hits] = await ann.search(query, { k: 10 });
        found += (hits as { id: number }[]).filter((h) => truth.has(h.id)).length;
      }
      const result = {
        rows,
        dim,
        ann_kind: annKind,
        build_s: { exact: round(exactBuild.seconds.total), ann: round(annBuild.seconds.total) },
        ann_settings: annBuild.manifest.ann,
        recall_at_10: round(found / (nq * 10), 4),
        latency: {
          exact: [await latency(exact, queries, 1, 50), await latency(exact, queries, 32, 200)],
          ann: [await latency(ann, queries, 1, 200), await latency(ann, queries, 32, 1000)],
        },
        // What `serve` uses by default when the vectors fit in memory: exact, batched scans.
        memory: await memoryEngineBench(join(dir, 'ann'), queries, exactHits),
        // `serve --index` as a user starts it (engine auto: memory here), and with --engine lancedb.
        http_loopback: await httpLoopbackBench(join(dir, 'ann'), queries, [1, 32]),
        http_loopback_lancedb: await httpLoopbackBench(join(dir, 'ann'), queries, [1, 32], 2000, 'lancedb'),
      };
      return result;
    } finally {
      exact.close();
      ann.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bench/run.ts case: median_ms is the ANN p50 at concurrency 1. */
export async function benchSearchCase(): Promise<BenchResult & Awaited<ReturnType<typeof benchSearch>>> {
  const r = await benchSearch();
  const c1 = r.latency.ann[0] as LatencyStats;
  return {
    case: `search n=${r.rows} D=${r.dim} ${r.ann_kind} recall@10=${r.recall_at_10}`,
    median_ms: c1.p50_ms,
    min_ms: c1.p50_ms,
    runs: 1,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    ...r,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = process.argv[2] ? Number(process.argv[2]) : undefined;
  const annKind = process.argv[3] as Exclude<IndexKind, 'exact'> | undefined;
  console.log(JSON.stringify(await benchSearch({ rows, annKind })));
}
