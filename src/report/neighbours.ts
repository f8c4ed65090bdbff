// The one exact neighbour search the embedding views share: cosine similarity on L2-normalised
// rows (as the evaluation), each item's own row excluded, lists as long as the longest R (class
// size − 1) so that every query's AP@R is exact; the UMAP map takes the first columns of the same
// lists as its k-nearest-neighbour graph.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { classIds, embeddings, nearestNeighbours, normalizeRows, type Embeddings, type NeighbourLists } from '../metrics/index.ts';
import type { TestEmbeddings } from './run_data.ts';

export interface SharedNeighbours {
  lists: NeighbourLists;
  /** Dense class id of each row, and the size of each class. */
  ids: Int32Array;
  classSizes: Int32Array;
}

/** Queries per block of the cooperative search. */
const BLOCK = 256;

/**
 * The search in blocks of queries against the whole set, yielding to the event loop between
 * blocks (a server stays responsive). Same lists as the self search, at up to twice the
 * multiply-adds (each pair is scored from both ends).
 */
async function cooperativeSearch(x: Embeddings, k: number): Promise<NeighbourLists> {
  const n = x.rows;
  const indices = new Int32Array(n * k);
  const scores = new Float64Array(n * k);
  for (let from = 0; from < n; from += BLOCK) {
    const rows = Math.min(BLOCK, n - from);
    const q = embeddings(x.data.subarray(from * x.dim, (from + rows) * x.dim), rows, x.dim);
    // One more than needed: the query itself is among its own neighbours.
    const l = await nearestNeighbours(q, x, { k: k + 1, engine: 'js' });
    for (let r = 0; r < rows; r++) {
      const self = from + r;
      let j = 0;
      for (let c = 0; c < l.k && j < k; c++) {
        const idx = l.indices[r * l.k + c] as number;
        if (idx === self) continue;
        indices[self * k + j] = idx;
        scores[self * k + j] = l.scores[r * l.k + c] as number;
        j++;
      }
    }
    await yieldToEventLoop();
  }
  return { rows: n, k, indices, scores };
}

export async function sharedNeighbours(t: TestEmbeddings, minK: number, options: { cooperative?: boolean } = {}): Promise<SharedNeighbours> {
  const x = normalizeRows(embeddings(t.data, t.rows, t.dim));
  const c = classIds(t.labels);
  let maxR = 0;
  for (const s of c.sizes) maxR = Math.max(maxR, s - 1);
  const k = Math.max(0, Math.min(Math.max(maxR, minK), t.rows - 1));
  const lists = options.cooperative ? await cooperativeSearch(x, k) : await nearestNeighbours(x, 'self', { k, excludeSelf: true });
  return { lists, ids: c.ids, classSizes: c.sizes };
}
