// Each case is selected by name on the command line (CTest runs one per test); a failed check
// prints file:line and the expression, and the process exits 1.
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>

#include "ring_buffer.h"

static int failures = 0;
#define CHECK_EQ(actual, expected)                                                            \
  do {                                                                                        \
    auto a_ = (actual);                                                                       \
    auto e_ = (expected);                                                                     \
    if (!(a_ == e_)) {                                                                        \
      std::printf("%s:%d: check failed: %s == %s (got %lld, want %lld)\n", __FILE__, __LINE__, \
                  #actual, #expected, (long long)a_, (long long)e_);                          \
      ++failures;                                                                             \
    }                                                                                         \
  } while (0)

static void push_pop() {
  RingBuffer rb(3);
  rb.push(1);
  rb.push(2);
  CHECK_EQ(*rb.pop(), 1);
  CHECK_EQ(*rb.pop(), 2);
  CHECK_EQ(rb.pop().has_value(), false);
}

static void wraps_around() {
  RingBuffer rb(2);
  rb.push(1);
  rb.push(2);
  CHECK_EQ(*rb.pop(), 1);
  rb.push(3);
  CHECK_EQ(*rb.pop(), 2);
  CHECK_EQ(*rb.pop(), 3);
}

static void overwrites_oldest_when_full() {
  RingBuffer rb(3);
  for (int v = 1; v <= 5; ++v) rb.push(v);
  CHECK_EQ(rb.size(), 3u);
  CHECK_EQ(*rb.pop(), 3);
  CHECK_EQ(*rb.pop(), 4);
  CHECK_EQ(*rb.pop(), 5);
}

static void size_tracks_contents() {
  RingBuffer rb(2);
  CHECK_EQ(rb.size(), 0u);
  rb.push(7);
  CHECK_EQ(rb.size(), 1u);
  rb.pop();
  CHECK_EQ(rb.size(), 0u);
}

int main(int argc, char** argv) {
  const std::map<std::string, std::function<void()>> cases = {
      {"push_pop", push_pop},
      {"wraps_around", wraps_around},
      {"overwrites_oldest_when_full", overwrites_oldest_when_full},
      {"size_tracks_contents", size_tracks_contents},
  };
  if (argc != 2 || !cases.count(argv[1])) {
    std::fprintf(stderr, "usage: ring_buffer_test CASE\n");
    return 2;
  }
  cases.at(argv[1])();
  return failures == 0 ? 0 : 1;
}
