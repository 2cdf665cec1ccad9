// Weights packed at load (cpu_packed_weights.h): which matrices are packed, that the copy holds the
// file's bytes exactly, and that a backend reading it computes the same bits as one reading the file.
#include <gtest/gtest.h>

#include <vector>

#include "engine/backend.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_packed_weights.h"
#include "golden.h"

using namespace flashfix;
using namespace flashfix::cpu;
using namespace flashfix::test;

namespace {

bool has_gemm() { return gemm_for(TensorType::Q4_K) != nullptr; }

// Every position's logits of the golden prompt in one pass, then 8 greedy decode steps' logits.
std::vector<float> prompt_and_decode(Backend& be, const Golden& g) {
  const auto V = size_t(g.n_vocab);
  auto seq = be.new_sequence(256);
  std::vector<float> out(g.tokens.size() * V);
  be.forward(*seq, g.tokens, Logits::All, out.data());
  std::vector<float> step(V);
  int32_t tok = g.tokens.back();
  for (int i = 0; i < 8; ++i) {
    be.forward(*seq, std::span<const int32_t>(&tok, 1), Logits::Last, step.data());
    out.insert(out.end(), step.begin(), step.end());
    tok = int32_t(std::max_element(step.begin(), step.end()) - step.begin());
  }
  return out;
}

TEST(PackedWeights, PacksTheQ4KMatricesWithTheFilesBytes) {
  if (!has_gemm()) GTEST_SKIP() << "this path has no Q4_K GEMM to pack for";
  Golden g = load_golden("tiny-qwen3moe-s11-Q4_K_M");
  auto model = Model::load(g.model_path);
  ThreadPool pool(2);
  const PackedWeights packed(*model, pool);
  // Q4_K_M keeps Q4_K in some matrices and Q6_K/Q8_0 elsewhere: only the Q4_K ones are packed.
  int64_t q4k = 0;
  uint64_t q4k_bytes = 0;
  for (const LayerWeights& l : model->weights().layers)
    for (Weight t : {l.attn_q, l.attn_k, l.attn_v, l.attn_output, l.ffn_gate_exps, l.ffn_up_exps, l.ffn_down_exps}) {
      ASSERT_NE(t, nullptr);
      if (t->type != TensorType::Q4_K) {
        EXPECT_EQ(packed.slab(t, 0), nullptr) << t->name;
        continue;
      }
      ++q4k, q4k_bytes += t->nbytes;
      ASSERT_NE(packed.slab(t, 0), nullptr) << t->name;
      // A stacked tensor's slabs are consecutive, each the expert's rows' bytes.
      if (t->dim(2) > 1) {
        EXPECT_EQ(packed.slab(t, 1) - packed.slab(t, 0), ptrdiff_t(t->nbytes / uint64_t(t->dim(2))));
      }
    }
  ASSERT_GT(q4k, 0);
  EXPECT_EQ(packed.matrices(), q4k);
  EXPECT_EQ(packed.bytes(), q4k_bytes);
}

TEST(PackedWeights, SameLogitsAsTheFilesLayout) {
  if (!has_gemm()) GTEST_SKIP() << "this path has no Q4_K GEMM to pack for";
  for (const char* name : {"tiny-qwen3moe-s11-Q4_K_M"}) {  // the golden model with Q4_K matrices
    Golden g = load_golden(name);
    auto model = Model::load(g.model_path);
    auto file_layout = make_cpu_backend(*model, 2, /*repack_weights=*/false);
    auto packed = make_cpu_backend(*model, 2, /*repack_weights=*/true);
    const std::vector<float> want = prompt_and_decode(*file_layout, g);
    // The pages the packed backend dropped are read again by the other: same bits, again.
    EXPECT_EQ(prompt_and_decode(*packed, g), want) << name;
    EXPECT_EQ(prompt_and_decode(*file_layout, g), want) << name;
  }
}

// The copy belongs to the path that made it: after a switch the backend reads the file's layout.
TEST(PackedWeights, OtherPathsReadTheFile) {
  if (!has_gemm()) GTEST_SKIP() << "this path has no Q4_K GEMM to pack for";
  Golden g = load_golden("tiny-qwen3moe-s11-Q4_K_M");
  auto model = Model::load(g.model_path);
  auto be = make_cpu_backend(*model, 2);
  const CpuPath made_on = kernels().path;
  ThreadPool pool(1);
  const PackedWeights packed(*model, pool);
  const Weight q = model->weights().layers[0].attn_q;
  ASSERT_EQ(q->type, TensorType::Q4_K);
  select_cpu_path(CpuPath::Scalar);
  EXPECT_EQ(packed.slab(q, 0), nullptr);
  const std::vector<float> scalar = prompt_and_decode(*be, g);
  select_cpu_path(made_on);
  EXPECT_NE(packed.slab(q, 0), nullptr);
  EXPECT_EQ(prompt_and_decode(*be, g), scalar);
}

}  // namespace
