// A decode step allocates nothing once its scratch buffers have grown: this binary replaces the
// global operator new with a counting one and decodes tokens on the golden models.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "engine/backend.h"
#include "engine/draft.h"
#include "engine/sampler.h"
#include "golden.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// GCC pairs the replaced operator delete's free() with operator new at inlined call sites and warns
// of a mismatch that is not there: both replacements below use malloc/free.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

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

// A speculative step with MTP drafts: the heads catch up and draft, the trunk verifies, one token is
// accepted. After warm-up neither the heads nor the source allocate.
TEST(DecodeAllocations, NoneInMtpDraftingAfterWarmup) {
  Golden g = load_golden("tiny-step35-s11-Q6_K");
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  constexpr int64_t kCtx = 256;
  auto store = be->new_kv_store(kCtx / kKvBlockTokens, kCtx / kKvBlockTokens);
  BlockTable table;
  for (int32_t b = 0; b < kCtx / kKvBlockTokens; ++b) table.full.push_back(b), table.sliding.push_back(b);
  auto src = make_mtp_draft(DraftSetup{*be, *store, kCtx});
  std::vector<int32_t> tokens = g.tokens, run;
  tokens.reserve(kCtx), run.reserve(8);
  std::vector<float> logits(static_cast<size_t>(g.n_vocab));
  BatchRun prompt{&table, 0, tokens, int64_t(tokens.size()) - 1, logits.data()};
  be->forward(*store, std::span<const BatchRun>(&prompt, 1));
  tokens.push_back(1);
  auto step = [&] {
    const int64_t computed = int64_t(tokens.size()) - 1;
    run.assign(1, tokens.back());
    src->propose(DraftContext{tokens, computed, &table, store.get()}, 3, run);
    const BatchRun verify{&table, computed, run, int64_t(run.size()) - 1, logits.data()};
    be->forward(*store, std::span<const BatchRun>(&verify, 1));
    src->accepted(0);
    tokens.push_back((run[1] + 1) % 4000);
  };
  for (int i = 0; i < 2; ++i) step();
  const long before = g_allocations.load();
  for (int i = 0; i < 8; ++i) step();
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(run.size(), 4u);
}

// Sampling a token from a full Qwen3-sized vocabulary (top-p, min-p, repetition penalty) reuses the
// sampler's buffers once they have grown.
TEST(DecodeAllocations, NoneInSamplingAfterWarmup) {
  Sampler s({.temperature = 0.8f, .top_k = 0, .top_p = 0.9f, .min_p = 0.01f, .repeat_penalty = 1.1f, .seed = 1});
  std::vector<float> logits(151936);
  std::vector<int32_t> history(200);
  for (size_t i = 0; i < history.size(); ++i) history[i] = int32_t(i * 7 % 500);
  auto fill = [&](int step) {
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = float((i * 2654435761u + size_t(step)) % 1000) * 0.01f;
  };
  for (int i = 0; i < 2; ++i) fill(i), s.sample(logits, history);
  const long before = g_allocations.load();
  for (int i = 2; i < 10; ++i) fill(i), s.sample(logits, history);
  EXPECT_EQ(g_allocations.load() - before, 0);
}
