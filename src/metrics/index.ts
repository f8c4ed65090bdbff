// Retrieval evaluation: exact k-nearest-neighbour search, Recall@k, MAP@R, R-Precision (one set or
// In-Shop query/gallery), and NMI of a k-means clustering.
export { embeddings, normalizeRows, classIds, jointClassIds, type Embeddings, type ClassIds } from './embeddings.ts';
export { nearestNeighbours, type KnnEngine, type KnnOptions, type NeighbourLists } from './knn.ts';
export {
  evaluateRetrieval,
  scoreLists,
  checkKs,
  OFFICIAL_MAX_NEIGHBOURS,
  type Semantics,
  type RetrievalMetrics,
  type RetrievalOptions,
  type ListScoring,
} from './retrieval.ts';
export { evaluateInShop, INSHOP_KS } from './inshop.ts';
export { kMeans, seededRandom, type KMeansOptions, type KMeansResult } from './kmeans.ts';
export { normalizedMutualInformation, evaluateNmi } from './nmi.ts';
