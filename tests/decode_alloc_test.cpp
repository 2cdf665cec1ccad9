// A decode step allocates nothing once its scratch buffers have grown: this binary replaces the
// global operator new with a counting one and decodes tokens on the golden models.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "engine/backend.h"
#include "golden.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace flashfix;
using namespace flashfix::test;

TEST(DecodeAllocations, NoneAfterWarmup) {
  for (const char* name : {"tiny-qwen3moe-s11-Q4_K_M", "tiny-step35-s11-Q6_K"}) {
    Golden g = load_golden(name);
    const long at_start = g_allocations.load();
    auto model = Model::load(g.model_path);
    ASSERT_GT(g_allocations.load(), at_start) << "the counting operator new is not in use";
    auto be = make_cpu_backend(*model, 2);
    auto seq = be->new_sequence(256);
    std::vector<float> logits(static_cast<size_t>(g.n_vocab));
    be->forward(*seq, g.tokens, Logits::Last, logits.data());
    int32_t tok = 1;
    for (int i = 0; i < 2; ++i) be->forward(*seq, std::span<const int32_t>(&tok, 1), Logits::Last, logits.data());
    const long before = g_allocations.load();
    for (int i = 0; i < 8; ++i) be->forward(*seq, std::span<const int32_t>(&tok, 1), Logits::Last, logits.data());
    EXPECT_EQ(g_allocations.load() - before, 0) << name;
  }
}
