#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <numeric>

#include "engine/thread_pool.h"

using flashfix::ThreadPool;

TEST(ThreadPool, CoversEveryIndexOnceWithValidThreadIds) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 3, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<bool> bad_thread{false};
      pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
        if (t < 0 || t >= threads) bad_thread = true;
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
      EXPECT_FALSE(bad_thread);
    }
  }
}

TEST(ThreadPool, ManyConsecutiveLoops) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 2000; ++rep)
    pool.parallel_for(10, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
  EXPECT_EQ(sum.load(), 2000 * 45);
}

// Chunks are claimed dynamically and the caller does not wait for late workers: loops of every size,
// back to back, with some chunks slow, must still run every index exactly once per loop.
TEST(ThreadPool, BackToBackLoopsWithUnevenChunks) {
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(200);
    for (int rep = 0; rep < 3000; ++rep) {
      const int64_t n = 2 + rep % 199;
      pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
        if (b == 0 && rep % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].exchange(0), 1) << "loop " << rep << " index " << i;
    }
  }
}
