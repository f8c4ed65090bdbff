// Retrieval metrics on one set that is both query set and database (CUB, Cars, SOP):
// Recall@k, MAP@R and R-Precision (Musgrave et al. 2020), in two semantics (docs/algorithm.md §7).
//
// textbook (default): query i's own row is excluded by index; R = class size − 1; queries with
//   R = 0 are left out of every mean; neighbour lists are as long as R needs.
// official (GCA-HNG eval_utils.evaluate_retrieval): the top 1 + K neighbours are taken, K = 1000
//   (min(1000, n − 1) where the official code would fail), and rank 0 is dropped whatever it is;
//   R = class size − 1 even when R > K; a singleton class makes the MAP@R and R-Precision means
//   NaN (0/0) and its queries count as recall misses.
import { classIds, normalizeRows, type Embeddings } from './embeddings.ts';
import { nearestNeighbours, type KnnEngine, type NeighbourLists } from './knn.ts';

export type Semantics = 'textbook' | 'official';

export interface RetrievalMetrics {
  /** Recall@k as a fraction, keyed by k. */
  recall: Record<string, number>;
  /** Fractions in [0, 1] (the official code prints ×100); NaN under official semantics with R = 0. */
  mapAtR: number;
  rPrecision: number;
  /** Number of queries the means are taken over. */
  queries: number;
}

export interface RetrievalOptions {
  ks?: number[];
  semantics?: Semantics;
  engine?: KnnEngine;
  threads?: number;
}

/** The official neighbour cap. */
export const OFFICIAL_MAX_NEIGHBOURS = 1000;

export function checkKs(ks: readonly number[]): void {
  for (const k of ks) if (!Number.isInteger(k) || k < 1) throw new Error(`recall k must be a positive integer, got ${k}`);
}

export interface ListScoring {
  lists: NeighbourLists;
  /** Leading columns of every list to ignore (1 for the official rank-0 drop). */
  skipColumns: number;
  queryIds: Int32Array;
  galleryIds: Int32Array;
  /** R of each query: the number of relevant gallery items. */
  relevant: Int32Array;
  ks: readonly number[];
  /** Queries with R = 0 are left out (textbook) rather than scored as NaN and misses (official). */
  skipEmpty: boolean;
  /** MAP@R and R-Precision look at no more than this many neighbours (official truncation). */
  depth?: number;
}

/**
 * One query's list (`length` neighbours from `offset`): the 0-based position of its first hit
 * (−1 when none), the hits among the first `depth`, and Σ_{i<depth, hit} (hits so far)/(i + 1),
 * which is AP@R·R when depth = R.
 */
export function scoreQuery(
  indices: ArrayLike<number>,
  offset: number,
  length: number,
  galleryIds: ArrayLike<number>,
  label: number,
  depth: number,
): { ap: number; found: number; firstHit: number } {
  let firstHit = -1;
  let found = 0;
  let ap = 0;
  for (let i = 0; i < length; i++) {
    if (galleryIds[indices[offset + i] as number] !== label) continue;
    if (firstHit < 0) firstHit = i;
    if (i >= depth) break;
    found++;
    ap += found / (i + 1);
  }
  return { ap, found, firstHit };
}

/**
 * Scores neighbour lists: rel_i = [label of neighbour i = query label];
 * Recall@k = [some rel_i = 1, i ≤ k]; R-Precision = Σ_{i≤R} rel_i / R;
 * AP@R = Σ_{i≤R} rel_i · (Σ_{j≤i} rel_j) / i / R. Positions beyond the list (or `depth`) count as misses.
 */
export function scoreLists(s: ListScoring): RetrievalMetrics {
  const { lists, skipColumns, queryIds, galleryIds, relevant, ks } = s;
  const length = Math.max(0, lists.k - skipColumns);
  const maxDepth = Math.min(length, s.depth ?? Infinity);
  const hits = new Float64Array(ks.length);
  let apSum = 0;
  let rpSum = 0;
  let queries = 0;
  for (let q = 0; q < lists.rows; q++) {
    const R = relevant[q] as number;
    if (R === 0 && s.skipEmpty) continue;
    queries++;
    const label = queryIds[q];
    const offset = q * lists.k + skipColumns;
    const { ap, found, firstHit } = scoreQuery(lists.indices, offset, length, galleryIds, label as number, Math.min(R, maxDepth));
    for (let j = 0; j < ks.length; j++) if (firstHit >= 0 && firstHit < (ks[j] as number)) hits[j] = (hits[j] as number) + 1;
    apSum += ap / R;
    rpSum += found / R;
  }
  const recall: Record<string, number> = {};
  ks.forEach((k, j) => (recall[String(k)] = (hits[j] as number) / queries));
  return { recall, mapAtR: apSum / queries, rPrecision: rpSum / queries, queries };
}

/** Recall@k, MAP@R and R-Precision of embeddings X (raw, normalised here) with class labels. */
export async function evaluateRetrieval(x: Embeddings, labels: ArrayLike<number>, options: RetrievalOptions = {}): Promise<RetrievalMetrics> {
  if (labels.length !== x.rows) throw new Error(`retrieval: ${x.rows} embeddings but ${labels.length} labels`);
  const ks = options.ks ?? [1, 2, 4, 8];
  checkKs(ks);
  const classes = classIds(labels);
  const relevant = classes.ids.map((id) => (classes.sizes[id] as number) - 1);
  const normalised = normalizeRows(x);
  const knn = { engine: options.engine, threads: options.threads };
  if ((options.semantics ?? 'textbook') === 'official') {
    const K = Math.min(OFFICIAL_MAX_NEIGHBOURS, x.rows - 1);
    const lists = await nearestNeighbours(normalised, 'self', { ...knn, k: K + 1 });
    return scoreLists({ lists, skipColumns: 1, queryIds: classes.ids, galleryIds: classes.ids, relevant, ks, skipEmpty: false });
  }
  const k = relevant.reduce((m, r) => Math.max(m, r), Math.max(...ks));
  const lists = await nearestNeighbours(normalised, 'self', { ...knn, k, excludeSelf: true });
  return scoreLists({ lists, skipColumns: 0, queryIds: classes.ids, galleryIds: classes.ids, relevant, ks, skipEmpty: true });
}
