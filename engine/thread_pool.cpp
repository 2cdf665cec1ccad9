#include "engine/thread_pool.h"

#include <algorithm>

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

// Chunks per thread: loops are split finer than one range per thread and chunks are claimed from a
// shared counter, so when one thread is descheduled (a shared machine) or slower, the others take
// its share instead of waiting for it.
constexpr int64_t kChunksPerThread = 4;

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

// The claim word packs (job tag : 32 | next chunk : 16 | chunk count : 16). Claiming a chunk is one
// CAS on it, and whether the claim is valid is decided from the word alone: a thread that wakes late
// can never take a chunk of a newer job with an older job's count, and the job's fields are stable
// for as long as one of its chunks is claimed and not done (the caller waits for all of them).
namespace {
constexpr uint64_t claim_word(uint64_t tag, uint64_t next, uint64_t count) { return tag << 32 | next << 16 | count; }
constexpr uint64_t claim_next(uint64_t w) { return (w >> 16) & 0xffff; }
constexpr uint64_t claim_count(uint64_t w) { return w & 0xffff; }
}  // namespace

void ThreadPool::run(int64_t n, const RangeFn& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  const int64_t chunks = std::min<int64_t>({n, int64_t(size()) * kChunksPerThread, 0xffff});
  done_.store(0, std::memory_order_relaxed);
  const uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
  claim_.store(claim_word(g & 0xffffffff, 0, uint64_t(chunks)), std::memory_order_release);
  {
    // The bump happens under the mutex so a worker that checked the counter and is about to sleep
    // cannot miss it; notify is cheap when nobody sleeps.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.store(g, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_chunks(0);
  // Wait for the chunks, not for the workers: one the OS has not scheduled yet holds nothing up.
  for (int i = 0; done_.load(std::memory_order_acquire) != chunks; ++i) relax(i);
}

void ThreadPool::run_chunks(int index) {
  uint64_t w = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t c = claim_next(w), count = claim_count(w);
    if (c >= count) return;
    if (!claim_.compare_exchange_weak(w, w + (uint64_t(1) << 16), std::memory_order_acq_rel, std::memory_order_acquire))
      continue;  // w now holds the current word
    (*job_)(job_n_ * int64_t(c) / int64_t(count), job_n_ * int64_t(c + 1) / int64_t(count), index);
    done_.fetch_add(1, std::memory_order_release);
    w = claim_.load(std::memory_order_acquire);
  }
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
    run_chunks(index);
  }
}

}  // namespace flashfix
