// The retrieval gallery's queries: every test item searched against the others (textbook
// semantics, as the evaluation: own row excluded, R = class size − 1), scored by AP@R and the rank
// of its first correct result, and ordered worst first: lowest AP@R, then the latest first correct
// result (none at all is worst), then the lower index.
import { scoreQuery } from '../metrics/retrieval.ts';
import type { SharedNeighbours } from './neighbours.ts';

export interface GalleryQuery {
  /** Row of the query in the test embeddings (= index in the dataset's test split). */
  index: number;
  /** AP@R of the query's list. */
  apAtR: number;
  /** 1-based rank of the first result of the query's class (Infinity when none in the list). */
  firstCorrect: number;
  /** R: the other items of the query's class. */
  relevant: number;
  /** The top k results: row, cosine similarity, whether of the query's class. */
  results: Array<{ index: number; score: number; correct: boolean }>;
}

/** Scores every query with R ≥ 1 and returns them worst first. */
export function rankQueries(nb: SharedNeighbours, k: number): GalleryQuery[] {
  const { lists, ids, classSizes } = nb;
  const out: GalleryQuery[] = [];
  for (let q = 0; q < lists.rows; q++) {
    const label = ids[q] as number;
    const R = (classSizes[label] as number) - 1;
    if (R < 1) continue;
    const row = q * lists.k;
    const { ap, firstHit } = scoreQuery(lists.indices, row, lists.k, ids, label, R);
    const results = [];
    for (let i = 0; i < Math.min(k, lists.k); i++) {
      const j = lists.indices[row + i] as number;
      results.push({ index: j, score: lists.scores[row + i] as number, correct: ids[j] === label });
    }
    out.push({ index: q, apAtR: ap / R, firstCorrect: firstHit < 0 ? Infinity : firstHit + 1, relevant: R, results });
  }
  return out.sort((a, b) => a.apAtR - b.apAtR || b.firstCorrect - a.firstCorrect || a.index - b.index);
}
