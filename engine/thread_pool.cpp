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

// Spin iterations before a worker sleeps: with pause (~tens of cycles) and, after the first
// kPauseOnly, a yield every 64, about a millisecond, longer than the gap between two loops of one
// decode step.
constexpr int kSpinIterations = 1 << 15;
// The first ~20 us of a wait only pause: the next loop of a decode step usually comes within that,
// and a yield there is a system call (~0.5 us) that also delays seeing it. Later waits yield every
// 64 iterations so a spinning pool does not starve other processes on a shared machine.
constexpr int kPauseOnly = 1024;

inline void relax(int i) {
  if (i >= kPauseOnly && i % 64 == 63) std::this_thread::yield();
  else FF_CPU_RELAX();
}

// Guided self-scheduling: a thread claims 1/kGuidedShare of what is left per thread (at least one
// unit) from a shared counter, so chunks start large (few claims) and shrink to single units at the
// end: every thread finishes within about one unit of the others, and a thread that is descheduled
// (a shared machine) or slower leaves the others its share instead of holding them up. Equal chunks
// (4 per thread) left the last-finishing thread ~1/16 of each loop alone: with a decode step's ~170
// loops, ~5% of the step spent spinning.
constexpr uint64_t kGuidedShare = 2;

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

// The loop's n indices are split into `count` units (n itself up to 0xffff), unit u covering
// [n * u / count, n * (u + 1) / count). The claim word packs (job tag : 32 | next unit : 16 | unit
// count : 16). Claiming a chunk of units is one CAS on it, and whether the claim is valid is decided
// from the word alone: a thread that wakes late can never take units of a newer job with an older
// job's count, and the job's fields are stable for as long as one of its units is claimed and not
// done (the caller waits for all of them).
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
  const int64_t units = std::min<int64_t>(n, 0xffff);
  done_.store(0, std::memory_order_relaxed);
  const uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
  claim_.store(claim_word(g & 0xffffffff, 0, uint64_t(units)), std::memory_order_release);
  {
    // The bump happens under the mutex so a worker that checked the counter and is about to sleep
    // cannot miss it; notify is cheap when nobody sleeps.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.store(g, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_chunks(0);
  // Wait for the units, not for the workers: one the OS has not scheduled yet holds nothing up.
  for (int i = 0; done_.load(std::memory_order_acquire) != units; ++i) relax(i);
}

void ThreadPool::run_chunks(int index) {
  const auto threads = uint64_t(size());
  uint64_t w = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t c = claim_next(w), count = claim_count(w);
    if (c >= count) return;
    const uint64_t take = std::max<uint64_t>(1, (count - c) / (kGuidedShare * threads));
    if (!claim_.compare_exchange_weak(w, w + (take << 16), std::memory_order_acq_rel, std::memory_order_acquire))
      continue;  // w now holds the current word
    (*job_)(job_n_ * int64_t(c) / int64_t(count), job_n_ * int64_t(c + take) / int64_t(count), index);
    done_.fetch_add(int64_t(take), std::memory_order_release);
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
