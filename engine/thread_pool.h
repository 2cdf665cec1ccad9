// A fixed pool of worker threads for data-parallel loops. The calling thread takes part in every
// loop, so a pool of N threads keeps N cores busy and a pool of 1 runs inline with no handoff.
//
// Decode runs a few hundred short loops per token, so the handoff must cost microseconds, not the
// ~1 ms of a condition-variable wake-up: workers spin (pause, then yield) on a generation counter for
// a while after each loop and only then sleep on the condition variable; the caller spins on the
// count of unfinished chunks. Yielding keeps a spinning pool from starving other processes on a
// shared machine.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace flashfix {

class ThreadPool {
 public:
  // n_threads <= 0 picks the machine's hardware concurrency.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls fn(begin, end, thread) over disjoint chunks covering [0, n); thread is in [0, size()).
  // Chunks are contiguous and claimed dynamically, large first and shrinking towards the end
  // (guided scheduling, thread_pool.cpp); returns when every chunk is done. Not reentrant: fn must
  // not call parallel_for.
  //
  // fn is taken by reference (a non-owning callable view), not copied into a std::function: a loop
  // body capturing a few references would otherwise cost a heap allocation per loop, hundreds per
  // decoded token.
  class RangeFn {
   public:
    template <class F>
    RangeFn(F& f) : obj_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, int64_t b, int64_t e, int t) { (*static_cast<F*>(o))(b, e, t); }) {}
    void operator()(int64_t b, int64_t e, int t) const { call_(obj_, b, e, t); }

   private:
    void* obj_;
    void (*call_)(void*, int64_t, int64_t, int);
  };
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    run(n, RangeFn(fn));
  }

 private:
  void run(int64_t n, const RangeFn& fn);
  void run_chunks(int index);
  void worker(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;  // guards sleeping on start_cv_ against a missed generation bump
  std::condition_variable start_cv_;
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<uint64_t> claim_{0};       // see thread_pool.cpp
  std::atomic<int64_t> done_{0};         // units of the current job finished
  std::atomic<uint64_t> generation_{0};  // bumped per job: wakes the workers
  std::atomic<bool> stop_{false};
};

}  // namespace flashfix
