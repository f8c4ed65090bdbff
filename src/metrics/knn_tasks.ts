// The blocked k-nearest-neighbour search, independent of who computes the score blocks (plain
// TypeScript in this thread, or WebAssembly matrix products in worker threads).
//
// Two layouts of work:
// - rows: task t is query block t against every gallery block; its top-k lists live only while
//   the task runs, so memory stays O(block × k) whatever the number of queries.
// - symmetric (gallery = queries): task I scores the tiles (I, J) for J ≥ I only and uses each
//   off-diagonal tile twice, by rows for block I and by columns for block J. That halves the
//   arithmetic, but every row's list must live until all tasks are done.
import { TopKStore } from './topk_store.ts';
import { addColumnBias, keyToIndex, offerTileColumns, offerTileRows, type PositivesFirst, type TilePlace, type TileScores } from './tile_scan.ts';

export interface KnnPlan {
  queryCount: number;
  galleryCount: number;
  /** Neighbours per query; already clipped to what exists. */
  k: number;
  symmetric: boolean;
  /** Gallery item i is not a neighbour of query i (needs queries = gallery). */
  skipSelf: boolean;
  queryBlock: number;
  galleryBlock: number;
  /** Added to every score of a gallery column (rows layout only). */
  bias: Float64Array | null;
  tie: PositivesFirst | null;
}

export interface TileScorer {
  /** Scores of queries query0.. against gallery items gallery0.. (row-major rows × cols). */
  score(place: TilePlace): TileScores;
}

/** Sorted neighbour lists, row-major [queryCount, k]. */
export interface KnnOutput {
  indices: Int32Array;
  scores: Float64Array;
}

export function taskCount(plan: KnnPlan): number {
  return Math.ceil(plan.queryCount / plan.queryBlock);
}

function place(plan: KnnPlan, queryBlock: number, galleryBlock: number): TilePlace {
  const query0 = queryBlock * plan.queryBlock;
  const gallery0 = galleryBlock * plan.galleryBlock;
  return {
    query0,
    gallery0,
    rows: Math.min(plan.queryBlock, plan.queryCount - query0),
    cols: Math.min(plan.galleryBlock, plan.galleryCount - gallery0),
  };
}

/** rows layout: scores query block `task` against the whole gallery and writes its lists. */
export function runRowTask(plan: KnnPlan, task: number, scorer: TileScorer, scratch: TopKStore, out: KnnOutput): void {
  const blocks = Math.ceil(plan.galleryCount / plan.galleryBlock);
  let rows = 0;
  for (let b = 0; b < blocks; b++) {
    const p = place(plan, task, b);
    rows = p.rows;
    const tile = scorer.score(p);
    if (plan.bias) addColumnBias(tile, p, plan.bias);
    offerTileRows(scratch, 0, tile, p, plan.skipSelf, plan.tie);
  }
  const query0 = task * plan.queryBlock;
  for (let r = 0; r < rows; r++) drainRow(plan, scratch, r, query0 + r, out);
}

/** symmetric layout: tiles (task, J ≥ task), offered into a store indexed by global row. */
export function runSymmetricTask(plan: KnnPlan, task: number, scorer: TileScorer, store: TopKStore): void {
  const blocks = Math.ceil(plan.queryCount / plan.queryBlock);
  for (let b = task; b < blocks; b++) {
    const p = place(plan, task, b);
    const tile = scorer.score(p);
    offerTileRows(store, p.query0, tile, p, plan.skipSelf && b === task, plan.tie);
    if (b !== task) offerTileColumns(store, tile, p, plan.tie);
  }
}

/** symmetric layout, last step: merges the per-thread stores for rows [from, to) and writes them. */
export function mergeRows(plan: KnnPlan, stores: TopKStore[], from: number, to: number, out: KnnOutput): void {
  const [first, ...rest] = stores;
  if (!first) return;
  for (let row = from; row < to; row++) {
    for (const other of rest) first.absorb(row, other, row);
    drainRow(plan, first, row, row, out);
  }
}

function drainRow(plan: KnnPlan, store: TopKStore, storeRow: number, query: number, out: KnnOutput): void {
  const offset = query * plan.k;
  const n = store.drainSorted(storeRow, out.indices, out.scores, offset);
  if (n !== plan.k) throw new Error(`knn: query ${query} got ${n} neighbours, expected ${plan.k}`);
  if (plan.tie) for (let i = offset; i < offset + n; i++) out.indices[i] = keyToIndex(out.indices[i] as number, plan.galleryCount);
}
