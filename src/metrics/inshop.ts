// The In-Shop protocol: separate query and gallery sets; R = number of gallery items of the
// query's class (nothing to exclude, the query is not in the gallery).
//
// official (eval_utils.evaluate_retrieval_Inshop): Recall@k counts a hit when fewer than k gallery
//   negatives score strictly above the best gallery positive. That is "a positive among the top k"
//   with ties resolved in favour of positives, which is the order the search is asked for here.
//   MAP@R and R-Precision use the top K = min(1000, gallery size) only. A query with no gallery
//   positive (the official code raises) counts as a miss and makes those two means NaN.
// textbook: the same search with ties by index, lists as long as R needs, and queries without a
//   gallery positive left out.
import { jointClassIds, normalizeRows, type Embeddings } from './embeddings.ts';
import { nearestNeighbours } from './knn.ts';
import { checkKs, OFFICIAL_MAX_NEIGHBOURS, scoreLists, type RetrievalMetrics, type RetrievalOptions } from './retrieval.ts';

export const INSHOP_KS = [1, 10, 20, 30, 40, 50];

export async function evaluateInShop(
  query: Embeddings,
  queryLabels: ArrayLike<number>,
  gallery: Embeddings,
  galleryLabels: ArrayLike<number>,
  options: RetrievalOptions = {},
): Promise<RetrievalMetrics> {
  if (queryLabels.length !== query.rows) throw new Error(`inshop: ${query.rows} query embeddings but ${queryLabels.length} labels`);
  if (galleryLabels.length !== gallery.rows) throw new Error(`inshop: ${gallery.rows} gallery embeddings but ${galleryLabels.length} labels`);
  if (query.dim !== gallery.dim) throw new Error(`inshop: query dimension ${query.dim} differs from gallery dimension ${gallery.dim}`);
  const ks = options.ks ?? INSHOP_KS;
  checkKs(ks);
  const ids = jointClassIds(queryLabels, galleryLabels);
  const relevant = ids.query.ids.map((id) => ids.gallery.sizes[id] as number);
  const q = normalizeRows(query);
  const g = normalizeRows(gallery);
  const knn = { engine: options.engine, threads: options.threads };
  const maxK = Math.max(...ks);
  const scoring = { skipColumns: 0, queryIds: ids.query.ids, galleryIds: ids.gallery.ids, relevant, ks };
  if ((options.semantics ?? 'textbook') === 'official') {
    const K = Math.min(OFFICIAL_MAX_NEIGHBOURS, gallery.rows);
    const positivesFirst = { queryLabels: ids.query.ids, galleryLabels: ids.gallery.ids };
    const lists = await nearestNeighbours(q, g, { ...knn, k: Math.max(K, maxK), positivesFirst });
    return scoreLists({ ...scoring, lists, skipEmpty: false, depth: K });
  }
  const k = relevant.reduce((m, r) => Math.max(m, r), maxK);
  const lists = await nearestNeighbours(q, g, { ...knn, k });
  return scoreLists({ ...scoring, lists, skipEmpty: true });
}
