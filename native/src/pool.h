// A small persistent thread pool with dynamic chunking. parallel_for cuts [0, n) into a few
// chunks per thread; the calling thread and the workers take chunks from the job's counter until
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
    // Not while a job runs (k-NN calls run() from a libuv thread).
    std::lock_guard<std::mutex> serial(run_mutex_);
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
    // One job at a time (kernels called from two JavaScript threads take turns).
    std::lock_guard<std::mutex> serial(run_mutex_);
    if (workers_.empty() || chunks <= 1) {
      for (int c = 0; c < chunks; c++) chunk(c);
      return;
    }
    // Each job has its own counter, and a worker touches a job only between taking it from job_
    // and leaving it (users_), both under mutex_; run() returns only once no worker holds it. The
    // pool used to share one next/done pair and chunks_ across jobs, read outside the lock: a
    // worker woken for one job and preempted before its fetch_add could take an index from the
    // next job's counter, compare it with the next job's chunk count, run a chunk twice, push
    // done past the count (the caller returns early, or spins forever) and call through a
    // job_ whose stack frame is gone. oneDNN's OpenMP threads, competing for the cores, make such
    // preemptions common; this was the suspect for the heap corruption seen with 2 threads.
    Job job{&chunk, chunks};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      ++generation_;
    }
    wake_.notify_all();
    job.work();
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = nullptr;  // every chunk is taken; a worker that wakes late finds no job
    left_.wait(lock, [&] { return users_ == 0; });
  }

 private:
  struct Job {
    const std::function<void(int)>* fn;
    int chunks;
    std::atomic<int> next{0};

    void work() {
      for (int c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) (*fn)(c);
    }
  };

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        if (job_ == nullptr) continue;
        job = job_;
        ++users_;
      }
      job->work();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--users_ == 0) left_.notify_all();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;  // a new job (or stop)
  std::condition_variable left_;  // users_ fell to 0
  uint64_t generation_ = 0;
  Job* job_ = nullptr;
  int users_ = 0;  // workers inside job_->work()
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
