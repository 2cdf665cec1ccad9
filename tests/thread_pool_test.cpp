#include <gtest/gtest.h>

#include <atomic>
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
