// A small persistent thread pool with dynamic chunking. parallel_for cuts [0, n) into a few
// chunks per thread; the calling thread and the workers take chunks from a shared counter until
// none are left. A worker that the OS has not scheduled yet simply finds no work left, so on a
// busy machine the caller never waits for a thread that has not started (a static split would).
// Workers sleep on a condition variable between jobs.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hn {

class Pool {
 public:
  ~Pool() { resize(1); }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    n = std::max(1, n);
    if (n == threads()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stop_ = false;
    for (int i = 1; i < n; i++) workers_.emplace_back([this] { loop(); });
  }

  /** Runs chunk(c) for every c in [0, chunks) on the caller and the workers; returns when all are done. */
  void run(int chunks, const std::function<void(int)>& chunk) {
    if (workers_.empty() || chunks <= 1) {
      for (int c = 0; c < chunks; c++) chunk(c);
      return;
    }
    // One job at a time (kernels called from two JavaScript threads take turns).
    std::lock_guard<std::mutex> serial(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &chunk;
      chunks_ = chunks;
      done_.store(0, std::memory_order_relaxed);
      next_.store(0, std::memory_order_release);
      ++generation_;
    }
    wake_.notify_all();
    work();
    // Only chunks that a worker has already taken can be outstanding here.
    while (done_.load(std::memory_order_acquire) != chunks) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = nullptr;
  }

 private:
  void work() {
    for (;;) {
      int c = next_.fetch_add(1, std::memory_order_acq_rel);
      if (c >= chunks_) return;
      (*job_)(c);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        if (job_ == nullptr) continue;
      }
      work();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  uint64_t generation_ = 0;
  const std::function<void(int)>* job_ = nullptr;
  int chunks_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> done_{0};
  bool stop_ = false;
};

Pool& pool();

/** How many chunks parallel_for cuts n items into: up to 4 per thread, at least `grain` items each. */
inline int num_parts(int64_t n, int64_t grain) {
  const int t = pool().threads();
  if (t == 1 || n < 2 * grain) return 1;
  return static_cast<int>(std::min<int64_t>(4 * t, n / grain));
}

/** Calls body(begin, end, part) on num_parts(n, grain) disjoint ranges covering [0, n), in parallel. */
template <class Body>
void parallel_for(int64_t n, int64_t grain, const Body& body) {
  const int parts = num_parts(n, grain);
  if (parts == 1) {
    if (n > 0) body(int64_t{0}, n, 0);
    return;
  }
  pool().run(parts, [&](int p) {
    const int64_t begin = n * p / parts, end = n * (p + 1) / parts;
    if (begin < end) body(begin, end, p);
  });
}

}  // namespace hn
