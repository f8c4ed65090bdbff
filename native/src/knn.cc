// Exact k-NN: see knn.h. Two layouts, as the TypeScript engines (src/metrics/knn_tasks.ts):
// - symmetric: tile (I, J ≥ I) of the self-score matrix is computed once and offered by rows to
//   block I and by columns to block J; every thread keeps lists for all rows, merged at the end.
// - rows: each task is one block of queries against the whole gallery, its lists live only while
//   the task runs.
// Threads take tiles or tasks from a shared counter; OpenBLAS runs single-threaded inside each.
#include "knn.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "pool.h"

namespace hn {

namespace {

constexpr int64_t kSymmetricBlock = 1024;
constexpr int64_t kQueryBlock = 256;
constexpr int64_t kGalleryBlock = 2048;

struct Entry {
  double score;
  int32_t key;
};

/** a ranks below b: lower score, or equal score and higher key. */
inline bool worse(double as, int32_t ak, double bs, int32_t bk) { return as < bs || (as == bs && ak > bk); }

inline bool better_entry(const Entry& a, const Entry& b) { return worse(b.score, b.key, a.score, a.key); }

/** `rows` lists of at most k entries, each a heap whose root is the worst entry kept. */
class TopK {
 public:
  TopK(int64_t rows, int64_t k)
      : k_(k), scores_(rows * k), keys_(rows * k), sizes_(rows, 0), floors_(rows, initial_floor()) {}

  /** Candidates below this score can be skipped without a call to offer. */
  double floor(int64_t row) const { return floors_[row]; }
  int64_t size(int64_t row) const { return sizes_[row]; }
  Entry at(int64_t row, int64_t i) const { return {scores_[row * k_ + i], keys_[row * k_ + i]}; }

  void reset() {
    std::fill(sizes_.begin(), sizes_.end(), 0);
    std::fill(floors_.begin(), floors_.end(), initial_floor());
  }

  void offer(int64_t row, double score, int32_t key) {
    if (k_ == 0) return;
    double* s = scores_.data() + row * k_;
    int32_t* ix = keys_.data() + row * k_;
    int32_t& size = sizes_[row];
    if (size < k_) {
      int64_t i = size++;
      while (i > 0) {  // sift up: a parent never ranks above its children
        int64_t parent = (i - 1) / 2;
        if (!worse(score, key, s[parent], ix[parent])) break;
        s[i] = s[parent];
        ix[i] = ix[parent];
        i = parent;
      }
      s[i] = score;
      ix[i] = key;
      if (size == k_) floors_[row] = s[0];
      return;
    }
    if (!worse(s[0], ix[0], score, key)) return;
    int64_t i = 0;
    for (;;) {  // sift down from the root
      int64_t child = 2 * i + 1;
      if (child >= k_) break;
      if (child + 1 < k_ && worse(s[child + 1], ix[child + 1], s[child], ix[child])) child++;
      if (!worse(s[child], ix[child], score, key)) break;
      s[i] = s[child];
      ix[i] = ix[child];
      i = child;
    }
    s[i] = score;
    ix[i] = key;
    floors_[row] = s[0];
  }

 private:
  /** With k = 0 nothing is ever kept, so every candidate can be skipped. */
  double initial_floor() const { return k_ == 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity(); }

  int64_t k_;
  std::vector<double> scores_;
  std::vector<int32_t> keys_;
  std::vector<int32_t> sizes_;
  std::vector<double> floors_;
};

struct Search {
  const KnnRequest& r;

  int32_t key(int64_t q, int64_t j) const {
    if (r.queryLabels == nullptr || r.queryLabels[q] == r.galleryLabels[j]) return static_cast<int32_t>(j);
    return static_cast<int32_t>(j + r.galleryCount);
  }

  int64_t index(int32_t key) const { return key >= r.galleryCount ? key - r.galleryCount : key; }

  /** tile (rows × cols) = queries[q0..] · gallery[g0..]ᵀ */
  void score(float* tile, const float* a, int64_t rows, const float* b, int64_t cols) const {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(r.dim), 1.0f, a,
                static_cast<int>(r.dim), b, static_cast<int>(r.dim), 0.0f, tile, static_cast<int>(cols));
  }

  /** Row i of the tile goes to store row row0 + i (query q0 + i); gallery items g0... */
  void offer_rows(TopK& store, int64_t row0, const float* tile, int64_t q0, int64_t rows, int64_t g0, int64_t cols) const {
    for (int64_t i = 0; i < rows; i++) {
      const int64_t q = q0 + i;
      const int64_t row = row0 + i;
      const float* t = tile + i * cols;
      double floor = store.floor(row);
      for (int64_t c = 0; c < cols; c++) {
        const int64_t j = g0 + c;
        double s = t[c];
        if (r.bias != nullptr) s += r.bias[j];
        if (s < floor || (r.skipSelf && j == q)) continue;
        store.offer(row, s, key(q, j));
        floor = store.floor(row);
      }
    }
  }

  /** The transposed use of a symmetric tile: column c is query g0 + c, its neighbours q0... */
  void offer_columns(TopK& store, const float* tile, int64_t q0, int64_t rows, int64_t g0, int64_t cols) const {
    for (int64_t i = 0; i < rows; i++) {
      const int64_t j = q0 + i;
      const float* t = tile + i * cols;
      for (int64_t c = 0; c < cols; c++) {
        const int64_t row = g0 + c;
        const double s = t[c];
        if (s < store.floor(row)) continue;
        store.offer(row, s, key(row, j));
      }
    }
  }

  /** Sorted best first into the output row of query q; false when fewer than k were found. */
  bool write(int64_t q, std::vector<Entry>& entries) const {
    if (static_cast<int64_t>(entries.size()) < r.k) return false;
    std::partial_sort(entries.begin(), entries.begin() + r.k, entries.end(), better_entry);
    for (int64_t i = 0; i < r.k; i++) {
      r.outIndices[q * r.k + i] = static_cast<int32_t>(index(entries[i].key));
      r.outScores[q * r.k + i] = entries[i].score;
    }
    return true;
  }

  bool symmetric() const {
    const int64_t n = r.queryCount;
    const int64_t blocks = (n + kSymmetricBlock - 1) / kSymmetricBlock;
    std::vector<std::pair<int64_t, int64_t>> tiles;
    for (int64_t I = 0; I < blocks; I++)
      for (int64_t J = I; J < blocks; J++) tiles.emplace_back(I, J);
    const int threads = pool().threads();
    std::vector<std::unique_ptr<TopK>> stores(threads);
    std::atomic<int64_t> next{0};
    pool().run(threads, [&](int t) {
      std::vector<float> tile;
      for (;;) {
        const int64_t w = next.fetch_add(1);
        if (w >= static_cast<int64_t>(tiles.size())) return;
        if (!stores[t]) stores[t] = std::make_unique<TopK>(n, r.k);  // only threads that got work
        if (tile.empty()) tile.resize(kSymmetricBlock * kSymmetricBlock);
        const auto [I, J] = tiles[w];
        const int64_t q0 = I * kSymmetricBlock, g0 = J * kSymmetricBlock;
        const int64_t rows = std::min(kSymmetricBlock, n - q0), cols = std::min(kSymmetricBlock, n - g0);
        score(tile.data(), r.queries + q0 * r.dim, rows, r.queries + g0 * r.dim, cols);
        offer_rows(*stores[t], q0, tile.data(), q0, rows, g0, cols);
        if (I != J) offer_columns(*stores[t], tile.data(), q0, rows, g0, cols);
      }
    });
    std::atomic<bool> ok{true};
    parallel_for(n, 256, [&](int64_t begin, int64_t end, int) {
      std::vector<Entry> entries;
      for (int64_t q = begin; q < end; q++) {
        entries.clear();
        for (const auto& store : stores)
          if (store)
            for (int64_t i = 0; i < store->size(q); i++) entries.push_back(store->at(q, i));
        if (!write(q, entries)) ok = false;
      }
    });
    return ok;
  }

  bool rows() const {
    const int64_t tasks = (r.queryCount + kQueryBlock - 1) / kQueryBlock;
    std::atomic<int64_t> next{0};
    std::atomic<bool> ok{true};
    pool().run(pool().threads(), [&](int) {
      std::unique_ptr<TopK> store;
      std::vector<float> tile;
      std::vector<Entry> entries;
      for (;;) {
        const int64_t task = next.fetch_add(1);
        if (task >= tasks) return;
        if (!store) {
          store = std::make_unique<TopK>(kQueryBlock, r.k);
          tile.resize(kQueryBlock * kGalleryBlock);
        }
        store->reset();
        const int64_t q0 = task * kQueryBlock, rows = std::min(kQueryBlock, r.queryCount - q0);
        for (int64_t g0 = 0; g0 < r.galleryCount; g0 += kGalleryBlock) {
          const int64_t cols = std::min(kGalleryBlock, r.galleryCount - g0);
          score(tile.data(), r.queries + q0 * r.dim, rows, r.gallery + g0 * r.dim, cols);
          offer_rows(*store, 0, tile.data(), q0, rows, g0, cols);
        }
        for (int64_t i = 0; i < rows; i++) {
          entries.clear();
          for (int64_t e = 0; e < store->size(i); e++) entries.push_back(store->at(i, e));
          if (!write(q0 + i, entries)) ok = false;
        }
      }
    });
    return ok;
  }
};

}  // namespace

bool knn_search(const KnnRequest& request, const char** error) {
  if (request.symmetric && (request.bias != nullptr || request.gallery != request.queries || request.queryCount != request.galleryCount)) {
    *error = "knn: the symmetric layout needs gallery = queries and no bias";
    return false;
  }
  if (request.queryCount == 0 || request.k == 0) return true;
  Search search{request};
  if (!(request.symmetric ? search.symmetric() : search.rows())) {
    *error = "knn: a query got fewer neighbours than k";
    return false;
  }
  return true;
}

}  // namespace hn
