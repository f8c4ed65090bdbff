// Exact k-nearest-neighbour search by inner product, the native engine of src/metrics/knn.ts:
// OpenBLAS score tiles, per-row top-k heaps, both cores. Same order as the TypeScript engines:
// higher score first, ties by lower key (key = gallery index, or index + galleryCount for items of
// another label when `tie` labels are given, so equal scores rank the query's class first).
#pragma once
#include <cstdint>

namespace hn {

struct KnnRequest {
  const float* queries = nullptr;  // [queryCount, dim], row-major
  const float* gallery = nullptr;  // [galleryCount, dim]; equal to queries in symmetric mode
  int64_t queryCount = 0;
  int64_t galleryCount = 0;
  int64_t dim = 0;
  int64_t k = 0;          // already clipped to the candidates that exist
  bool symmetric = false; // gallery = queries: each pair is scored once and used both ways
  bool skipSelf = false;  // gallery item i is not a neighbour of query i
  const double* bias = nullptr;          // added to every score of gallery column j (rows mode)
  const int32_t* queryLabels = nullptr;  // with galleryLabels: the "same label first" tie rule
  const int32_t* galleryLabels = nullptr;
  int32_t* outIndices = nullptr;  // [queryCount, k], best first
  double* outScores = nullptr;    // [queryCount, k]
};

/** Fills outIndices/outScores; false (with `error` set) when a row ends with fewer than k neighbours. */
bool knn_search(const KnnRequest& request, const char** error);

}  // namespace hn
