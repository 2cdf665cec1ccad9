#include "engine/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FF_CPU_RELAX() _mm_pause()
#else
#define FF_CPU_RELAX() ((void)0)
#endif

namespace flashfix {
namespace {

// Spin iterations before a worker sleeps: with pause (~tens of cycles) and a yield every 64, about
// a millisecond, longer than the gap between two loops of one decode step.
constexpr int kSpinIterations = 1 << 15;

inline void relax(int i) {
  if (i % 64 == 63) std::this_thread::yield();
  else FF_CPU_RELAX();
}

void run_chunk(const ThreadPool::RangeFn& fn, int64_t n, int parts, int index) {
  int64_t begin = n * index / parts, end = n * (index + 1) / parts;
  if (begin < end) fn(begin, end, index);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run(int64_t n, const RangeFn& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  {
    // The bump happens under the mutex so a worker that checked the counter and is about to sleep
    // cannot miss it; notify is cheap when nobody sleeps.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_chunk(fn, n, size(), 0);
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) relax(i);
  job_ = nullptr;
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && i < kSpinIterations; ++i) {
      relax(i);
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = g;
    run_chunk(*job_, job_n_, size(), index);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace flashfix
