// The forward pass against the reference logits in ../shared/golden, as its README defines "matches".
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "engine/backend.h"
#include "engine/cpu_kernels.h"
#include "golden_check.h"

using namespace flashfix;
using namespace flashfix::test;

namespace {

// Every golden model on every kernel path (scalar everywhere, AVX2 / AVX-512 where the CPU has them).
class GoldenForward : public ::testing::TestWithParam<std::tuple<std::string, cpu::CpuPath>> {
 protected:
  void SetUp() override {
    if (!cpu::cpu_path_supported(path())) GTEST_SKIP() << "this CPU lacks " << cpu::cpu_path_name(path());
    previous_ = cpu::kernels().path;
    cpu::select_cpu_path(path());
  }
  void TearDown() override { cpu::select_cpu_path(previous_); }
  std::string model_name() const { return std::get<0>(GetParam()); }
  cpu::CpuPath path() const { return std::get<1>(GetParam()); }

 private:
  cpu::CpuPath previous_ = cpu::CpuPath::Scalar;
};

TEST_P(GoldenForward, MatchesReference) {
  Golden g = load_golden(model_name());
  auto model = Model::load(g.model_path);
  ASSERT_EQ(model->config().n_vocab, g.n_vocab);
  auto be = make_cpu_backend(*model, 2);
  expect_matches_reference(g, prompt_logits(*be, g.tokens, g.n_vocab), greedy(*be, g.tokens, g.n_vocab, int(g.greedy.size())),
                           std::string(cpu::cpu_path_name(path())), meets_readme_bar_on_cpu(g.name));
}

// The CPU engine sums every operation in the reference's order (docs/ENGINE.md, "Agreement with the
// reference"), so its prompt logits are the reference's bit for bit at every position of every
// golden model, F32 and quantized, on every kernel path: any change to an order shows here first.
TEST_P(GoldenForward, BitIdenticalToReference) {
  Golden g = load_golden(model_name());
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  const auto ours = prompt_logits(*be, g.tokens, g.n_vocab);
  ASSERT_EQ(ours.size(), g.logits.size());
  for (size_t t = 0; t < g.tokens.size(); ++t) {
    const size_t row = t * size_t(g.n_vocab);
    size_t differing = 0;
    for (int64_t i = 0; i < g.n_vocab; ++i) differing += std::memcmp(&ours[row + size_t(i)], &g.logits[row + size_t(i)], sizeof(float)) != 0;
    EXPECT_EQ(differing, 0u) << "logits differing from the reference's at position " << t;
  }
}

// Prompt processing in one pass and token-by-token decoding compute the same logits.
TEST_P(GoldenForward, BatchEqualsTokenByToken) {
  Golden g = load_golden(model_name());
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  auto batch = prompt_logits(*be, g.tokens, g.n_vocab);
  auto seq = be->new_sequence(256);
  std::vector<float> row(static_cast<size_t>(g.n_vocab));
  for (size_t t = 0; t < g.tokens.size(); ++t) {
    be->forward(*seq, std::span<const int32_t>(&g.tokens[t], 1), Logits::Last, row.data());
    EXPECT_LE(rel_l2(row.data(), &batch[t * size_t(g.n_vocab)], g.n_vocab), 1e-5) << "position " << t;
  }
}

// Every kernel path computes the same float operations in the same order (the scalar kernels emulate
// the SIMD lanes), so the logits are bit-identical across paths: the scalar path is an exact oracle.
TEST_P(GoldenForward, SameBitsAsScalarPath) {
  if (path() == cpu::CpuPath::Scalar) GTEST_SKIP() << "the scalar path is the baseline";
  Golden g = load_golden(model_name());
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  auto ours = prompt_logits(*be, g.tokens, g.n_vocab);
  cpu::select_cpu_path(cpu::CpuPath::Scalar);
  auto scalar = prompt_logits(*be, g.tokens, g.n_vocab);
  ASSERT_EQ(ours.size(), scalar.size());
  size_t differing = 0;
  for (size_t i = 0; i < ours.size(); ++i) differing += std::memcmp(&ours[i], &scalar[i], sizeof(float)) != 0;
  EXPECT_EQ(differing, 0u) << "logits that differ from the scalar path's";
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenForward,
                         ::testing::Combine(::testing::ValuesIn(golden_models()),
                                            ::testing::Values(cpu::CpuPath::Scalar, cpu::CpuPath::Avx2, cpu::CpuPath::Avx512)),
                         [](const auto& info) {
                           std::string s = std::get<0>(info.param) + "_" + std::string(cpu::cpu_path_name(std::get<1>(info.param)));
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// A prompt longer than the sliding window and than one micro-batch exercises the SWA ring buffer:
// splitting the same prompt into several forward calls must not change any logit.
TEST(Forward, ChunkedPromptMatchesOnePass) {
  auto model = Model::load(golden_dir() + "/tiny-step35-s11.gguf");
  auto be = make_cpu_backend(*model, 2);
  const int64_t V = model->config().n_vocab;
  std::vector<int32_t> tokens(700);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 7919 + 13) % 4000);
  auto one = be->new_sequence(1024);
  std::vector<float> all(tokens.size() * size_t(V));
  be->forward(*one, tokens, Logits::All, all.data());
  auto parts = be->new_sequence(1024);
  std::vector<float> row(static_cast<size_t>(V));
  size_t pos = 0;
  for (size_t len : {300u, 1u, 250u, 149u}) {
    be->forward(*parts, std::span<const int32_t>(&tokens[pos], len), Logits::Last, row.data());
    pos += len;
    EXPECT_LE(rel_l2(row.data(), &all[(pos - 1) * size_t(V)], V), 1e-5) << "after " << pos << " tokens";
  }
}

TEST(Forward, RejectsOverflowAndBadTokens) {
  auto model = Model::load(golden_dir() + "/tiny-qwen3moe-s11.gguf");
  auto be = make_cpu_backend(*model, 1);
  auto seq = be->new_sequence(4);
  std::vector<float> logits(size_t(model->config().n_vocab));
  std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_THROW(be->forward(*seq, five, Logits::Last, logits.data()), std::length_error);
  EXPECT_EQ(seq->n_past(), 0);
  std::vector<int32_t> bad = {1, 999999};
  EXPECT_THROW(be->forward(*seq, bad, Logits::Last, logits.data()), std::out_of_range);
  EXPECT_EQ(seq->n_past(), 0);
}

}  // namespace
