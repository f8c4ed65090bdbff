// Exact k-nearest-neighbour search by inner product (cosine similarity on normalised rows), in
// blocks so that no queries × gallery matrix is ever held. Order: higher score first, ties by
// lower gallery index (or, on request, items of the query's class first).
import { availableParallelism } from 'node:os';
import type { Embeddings } from './embeddings.ts';
import { JsTileScorer } from './knn_js.ts';
import { blockTransposed, knnWorkerPool, sharedCopy } from './knn_pool.ts';
import { mergeRows, runRowTask, runSymmetricTask, taskCount, type KnnOutput, type KnnPlan } from './knn_tasks.ts';
import type { PositivesFirst } from './tile_scan.ts';
import { TopKStore } from './topk_store.ts';
import { loadNativeAddon, nativeStatus, type NativeAddon } from '../engine/native_kernels.ts';

export type KnnEngine = 'auto' | 'js' | 'wasm' | 'native';

export interface KnnOptions {
  /** Neighbours per query; clipped to the number of candidates. */
  k: number;
  /** Self search only: item i is never a neighbour of query i (exclusion by index). */
  excludeSelf?: boolean;
  /** Added to the score of every pair with gallery item j (k-means: -‖c_j‖²/2). */
  bias?: Float64Array;
  /** Ties between equal scores go to gallery items whose label equals the query's. */
  positivesFirst?: PositivesFirst;
  /**
   * 'js': this thread, float64 sums; 'wasm': worker threads, float32 matrix products; 'native':
   * the OpenBLAS addon (native/), float32 products, HARDNEG_THREADS threads; 'auto': native for
   * large searches when the addon is built, else wasm.
   */
  engine?: KnnEngine;
  /** Worker threads for 'wasm' (default: available cores, at most 8); 'native' uses the addon's thread count. */
  threads?: number;
}

/** Row-major [rows, k] neighbour indices and scores, best first. */
export interface NeighbourLists {
  rows: number;
  k: number;
  indices: Int32Array;
  scores: Float64Array;
}

/** Below this many multiply-adds plain TypeScript beats starting the worker threads (~1.5 s). */
const WASM_MIN_WORK = 2e9;
/**
 * Largest memory for the per-thread lists of the symmetric layout (12 bytes an entry) before
 * falling back to rows, which computes every pair twice but needs almost none (SOP's 60,502
 * queries × 1001 neighbours × 2 threads is 1.45 GB).
 */
const SYMMETRIC_MAX_BYTES = 2 * 2 ** 30;
/** Each worker holds its own TensorFlow.js (~100 MB); more than this is rarely worth it by default. */
const DEFAULT_MAX_THREADS = 8;

/**
 * The k best gallery items of every query. `gallery = 'self'` searches the queries themselves and
 * computes each pair once.
 */
export async function nearestNeighbours(queries: Embeddings, gallery: Embeddings | 'self', options: KnnOptions): Promise<NeighbourLists> {
  const self = gallery === 'self';
  const g = self ? queries : gallery;
  if (g.dim !== queries.dim) throw new Error(`knn: queries have dimension ${queries.dim}, gallery ${g.dim}`);
  if (options.excludeSelf && !self) throw new Error('knn: excludeSelf needs gallery = "self"');
  const skipSelf = self && options.excludeSelf === true;
  const k = Math.max(0, Math.min(Math.floor(options.k), g.rows - (skipSelf ? 1 : 0)));
  const work = (queries.rows * g.rows * queries.dim) / (self ? 2 : 1);
  const auto = options.engine === undefined || options.engine === 'auto';
  // The addon is loaded only where it may be used (loading starts its thread pool).
  const addon = options.engine === 'native' || (auto && work >= WASM_MIN_WORK) ? loadNativeAddon() : null;
  if (options.engine === 'native' && !addon) throw new Error(`knn: engine 'native' is not available: ${nativeStatus().reason}`);
  const engine = auto ? (work >= WASM_MIN_WORK ? (addon ? 'native' : 'wasm') : 'js') : (options.engine as Exclude<KnnEngine, 'auto'>);
  const threads = Math.max(1, Math.floor(options.threads ?? Math.min(availableParallelism(), DEFAULT_MAX_THREADS)));
  const storeCopies = engine === 'js' ? 1 : engine === 'native' && addon ? addon.info().threads : threads;
  const symmetric = self && !options.bias && storeCopies * queries.rows * k * 12 <= SYMMETRIC_MAX_BYTES;
  const base = { queryCount: queries.rows, galleryCount: g.rows, k, symmetric, skipSelf, bias: options.bias ?? null, tie: options.positivesFirst ?? null };

  let out: KnnOutput | null = null;
  if (engine === 'native' && addon && queries.rows > 0 && g.rows > 0) out = await searchNative(addon, base, queries, g);
  if (engine === 'wasm' && queries.rows > 0 && g.rows > 0) {
    const block = symmetric ? Math.min(2048, Math.max(256, Math.ceil(queries.rows / (2 * threads)))) : 0;
    const plan: KnnPlan = symmetric
      ? { ...base, queryBlock: block, galleryBlock: block }
      : { ...base, queryBlock: Math.min(1024, Math.max(64, Math.ceil(queries.rows / (4 * threads)))), galleryBlock: 4096 };
    const pool = await knnWorkerPool(threads).catch((err: unknown) => {
      if (options.engine === 'wasm') throw err;
      return null; // 'auto': no workers here; the plain loop finds the same neighbours, only slower
    });
    if (pool) out = await pool.search(plan, queries.dim, sharedCopy(queries.data), blockTransposed(g.data, g.rows, g.dim, plan.galleryBlock));
  }
  if (!out) {
    const block = symmetric ? 256 : 64;
    out = searchInThisThread({ ...base, queryBlock: block, galleryBlock: symmetric ? block : 1024 }, queries, g);
  }
  return { rows: queries.rows, k, indices: out.indices, scores: out.scores };
}

async function searchNative(
  addon: NativeAddon,
  plan: Omit<KnnPlan, 'queryBlock' | 'galleryBlock'>,
  queries: Embeddings,
  gallery: Embeddings,
): Promise<KnnOutput> {
  const out: KnnOutput = { indices: new Int32Array(plan.queryCount * plan.k), scores: new Float64Array(plan.queryCount * plan.k) };
  const params = Float64Array.of(plan.queryCount, plan.galleryCount, queries.dim, plan.k, plan.symmetric ? 1 : 0, plan.skipSelf ? 1 : 0);
  const tie = plan.tie;
  const f32 = (x: Embeddings): Float32Array => (x.data instanceof Float32Array ? x.data : Float32Array.from(x.data));
  const q = f32(queries);
  await addon.knn(q, queries === gallery ? q : f32(gallery), params, plan.bias, tie?.queryLabels ?? null, tie?.galleryLabels ?? null, out.indices, out.scores);
  return out;
}

function searchInThisThread(plan: KnnPlan, queries: Embeddings, gallery: Embeddings): KnnOutput {
  const out: KnnOutput = { indices: new Int32Array(plan.queryCount * plan.k), scores: new Float64Array(plan.queryCount * plan.k) };
  const scorer = new JsTileScorer(queries.data, gallery.data, queries.dim);
  const tasks = taskCount(plan);
  if (plan.symmetric) {
    const store = new TopKStore(plan.queryCount, plan.k);
    for (let t = 0; t < tasks; t++) runSymmetricTask(plan, t, scorer, store);
    mergeRows(plan, [store], 0, plan.queryCount, out);
  } else {
    const scratch = new TopKStore(plan.queryBlock, plan.k);
    for (let t = 0; t < tasks; t++) runRowTask(plan, t, scorer, scratch, out);
  }
  return out;
}
