// matmul on every kernel path against the scalar dot (in both Q4_K orders), output by output, for
// every token count that picks a different route (dot_tile, the decode GEMV for 1..kGemvTokens
// tokens, the repacked GEMM above, and rows packed at load, which take the GEMM at every count, in
// token chunks): row counts with and without a partial last row group, one and several blocks per row.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu_dot.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_ops.h"
#include "engine/quant_blocks.h"
#include "engine/thread_pool.h"

using namespace flashfix;
using namespace flashfix::cpu;

namespace {

class MatmulPath : public ::testing::TestWithParam<CpuPath> {
 protected:
  void SetUp() override {
    if (!cpu_path_supported(GetParam())) GTEST_SKIP() << "this CPU lacks " << cpu_path_name(GetParam());
    previous_ = kernels().path;
    select_cpu_path(GetParam());
  }
  void TearDown() override { select_cpu_path(previous_); }
  CpuPath previous_ = CpuPath::Scalar;
};

TEST_P(MatmulPath, EveryRouteMatchesScalarDot) {
  ThreadPool pool(2);
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss(0.f, 1.f);
  for (TensorType wt : {TensorType::Q4_K, TensorType::Q8_0}) {
    for (int64_t n_in : {256, 1024}) {
      for (int64_t n_out : {int64_t(3 * kGemmRows), int64_t(3 * kGemmRows + 5), int64_t(7)}) {
        const size_t rb = row_bytes(wt, n_in);
        std::vector<uint8_t> w(rb * size_t(n_out));
        std::vector<float> row(static_cast<size_t>(n_in));
        for (int64_t r = 0; r < n_out; ++r) {
          for (float& v : row) v = 0.05f * gauss(rng);
          quantize_row(wt, row.data(), w.data() + size_t(r) * rb, n_in);
        }
        // The rows as the backend packs them at load (cpu_packed_weights.h), where the path can.
        std::vector<uint8_t> packed;
        if (const GemmKernel* g = gemm_for(wt)) {
          const int64_t groups = (n_out + kGemmRows - 1) / kGemmRows;
          packed.resize(size_t(groups) * g->packed_bytes(n_in));
          for (int64_t i = 0; i < groups; ++i)
            g->pack(w.data() + size_t(i * kGemmRows) * rb, rb, int(std::min<int64_t>(kGemmRows, n_out - i * kGemmRows)), n_in,
                    packed.data() + size_t(i) * g->packed_bytes(n_in));
        }
        const TensorType at = activation_type(wt);
        // Q4_K's orders share one packed layout (the backend packs dense pairs-order matrices too).
        for (const DotOrder order : {DotOrder::Standard, DotOrder::SubBlockPairs}) {
          for (const bool use_packed : {false, true}) {
            if ((use_packed && packed.empty()) || (order == DotOrder::SubBlockPairs && wt != TensorType::Q4_K)) continue;
            const MatView m{wt, n_in, n_out, w.data(), rb, order, use_packed ? packed.data() : nullptr};
            // Every count up to two past the GEMV's, and one spanning several of the 32-token chunks
            // that rows packed at load are run in (cpu_ops.cpp groups_by_packed_gemm), with a partial tile.
            std::vector<int64_t> token_counts;
            for (int64_t n_tok = 1; n_tok <= kGemvTokens + 2; ++n_tok) token_counts.push_back(n_tok);
            token_counts.push_back(2 * 32 + kTileTokens + 3);
            for (const int64_t n_tok : token_counts) {
              std::vector<float> x(size_t(n_tok * n_in)), y(size_t(n_tok * n_out), -777.f);
              for (float& v : x) v = gauss(rng);
              matmul(pool, m, x.data(), n_tok, y.data());
              std::vector<uint8_t> a(row_bytes(at, n_in));
              for (int64_t t = 0; t < n_tok; ++t) {
                quantize_activation(at, x.data() + t * n_in, a.data(), n_in);
                for (int64_t r = 0; r < n_out; ++r)
                  ASSERT_EQ(y[size_t(t * n_out + r)], order == DotOrder::SubBlockPairs
                                                          ? dot_q4_K_pairs(w.data() + size_t(r) * rb, a.data(), n_in)
                                                          : vec_dot(wt, w.data() + size_t(r) * rb, a.data(), n_in))
                      << type_traits(wt).name << (order == DotOrder::SubBlockPairs ? " pairs" : "") << (use_packed ? " packed" : "")
                      << " n_in " << n_in << " n_out " << n_out
                      << " tokens " << n_tok << " token " << t << " row " << r;
              }
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, MatmulPath, ::testing::Values(CpuPath::Scalar, CpuPath::Avx2, CpuPath::Avx512),
                         [](const auto& info) { return std::string(cpu_path_name(info.param)); });

}  // namespace
