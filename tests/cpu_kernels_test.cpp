// Every SIMD kernel path against the scalar reference on random blocks of every type (in the spirit
// of ggml's test-backend-ops): activation quantizers and dot products must be bit-identical, for every
// tile width (the scalar kernels emulate the SIMD float order lane by lane), except AVX-512's bf16 dot,
// whose vdpbf16ps adds pairs of products in its own order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu_dot.h"
#include "engine/cpu_expf.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_silu.h"
#include "engine/quant_blocks.h"

using namespace flashfix;
using namespace flashfix::cpu;

namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A weight row of type t for n elements: quantized from random floats where the engine has a
// quantizer, else random codes with sane scales.
std::vector<uint8_t> weight_row(TensorType t, int64_t n, uint32_t seed) {
  std::vector<uint8_t> row(row_bytes(t, n));
  if (can_quantize_to(t)) {
    auto x = gaussian(size_t(n), seed, 0.05f);
    quantize_row(t, x.data(), row.data(), n);
    return row;
  }
  std::mt19937 rng(seed);
  for (auto& b : row) b = uint8_t(rng());
  const int64_t nb = n / type_traits(t).block_elems;
  for (int64_t b = 0; b < nb; ++b) {
    const uint16_t d = fp32_to_fp16(0.001f + 0.01f * float(rng() % 100) / 100.f);
    if (t == TensorType::Q4_0) reinterpret_cast<block_q4_0*>(row.data())[b].d = d;
    if (t == TensorType::IQ4_XS) reinterpret_cast<block_iq4_xs*>(row.data())[b].d = d;
    if (t == TensorType::MXFP4) reinterpret_cast<block_mxfp4*>(row.data())[b].e = uint8_t(118 + rng() % 8);
  }
  return row;
}

class KernelPath : public ::testing::TestWithParam<CpuPath> {
 protected:
  void SetUp() override {
    if (!cpu_path_supported(GetParam())) GTEST_SKIP() << "this CPU lacks " << cpu_path_name(GetParam());
  }
  const CpuKernels& path() const {
    switch (GetParam()) {
      case CpuPath::Avx2: return *avx2_kernels();
      case CpuPath::Avx512: return *avx512_kernels();
      default: return scalar_kernels();
    }
  }
};

TEST_P(KernelPath, ActivationQuantizersAreBitIdentical) {
  const int64_t n = 1024;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    auto x = gaussian(size_t(n), seed, seed % 2 ? 1.f : 1e-3f);
    std::fill_n(x.begin() + 256, 256, 0.f);               // an all-zero block of either size
    x[600] = -5.f, x[601] = 5.f, x[700] = -5.f;            // ties for the largest magnitude
    for (int i = 800; i < 832; ++i) x[size_t(i)] = float(i - 816) * 0.5f;  // exact halves: round-to-even
    for (TensorType at : {TensorType::Q8_0, TensorType::Q8_K}) {
      std::vector<uint8_t> want(row_bytes(at, n)), got(row_bytes(at, n));
      quantize_activation(at, x.data(), want.data(), n);
      (at == TensorType::Q8_0 ? path().quantize_q8_0 : path().quantize_q8_K)(x.data(), got.data(), n);
      EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size())) << type_traits(at).name << " seed " << seed;
    }
  }
}

// A dot-tile kernel of one path for a weight type in one summation order (cpu_kernels.h DotOrder).
DotTileFn tile_in(const CpuKernels& k, TensorType wt, DotOrder order) {
  switch (order) {
    case DotOrder::SubBlockPairs: return k.dot_tile_q4_K_pairs;
    case DotOrder::VecDotF32: return k.dot_tile_f32_vec;
    case DotOrder::Standard: break;
  }
  return k.dot_tile(wt);
}

TEST_P(KernelPath, DotTilesMatchScalar) {
  const std::pair<TensorType, DotOrder> kinds[] = {
      {TensorType::F32, DotOrder::Standard},  {TensorType::F16, DotOrder::Standard},   {TensorType::BF16, DotOrder::Standard},
      {TensorType::Q8_0, DotOrder::Standard}, {TensorType::Q4_0, DotOrder::Standard},  {TensorType::MXFP4, DotOrder::Standard},
      {TensorType::Q4_K, DotOrder::Standard}, {TensorType::Q5_K, DotOrder::Standard},  {TensorType::Q6_K, DotOrder::Standard},
      {TensorType::IQ4_XS, DotOrder::Standard}, {TensorType::Q4_K, DotOrder::SubBlockPairs}, {TensorType::F32, DotOrder::VecDotF32}};
  for (auto [wt, order] : kinds) {
    const TensorType at = activation_type(wt);
    const bool plain = type_traits(wt).block_elems == 1;
    for (int64_t n : plain ? std::vector<int64_t>{7, 512, 515} : std::vector<int64_t>{256, 768}) {
      DotTileFn fast = tile_in(path(), wt, order);
      ASSERT_NE(fast, nullptr) << type_traits(wt).name << " order " << int(order);
      DotTileFn ref = tile_in(scalar_kernels(), wt, order);
      for (uint32_t seed = 1; seed <= 5; ++seed) {
        const auto w = weight_row(wt, n, seed);
        std::vector<float> wf(static_cast<size_t>(n));
        dequantize_row(wt, w.data(), wf.data(), n);
        const size_t arow = row_bytes(at, n), stride = arow + 64;  // rows need not be adjacent
        std::vector<uint8_t> acts(stride * kTileTokens);
        std::vector<std::vector<float>> xs;
        for (int t = 0; t < kTileTokens; ++t) {
          xs.push_back(gaussian(size_t(n), seed * 100 + uint32_t(t)));
          quantize_activation(at, xs.back().data(), acts.data() + size_t(t) * stride, n);
        }
        for (int nt = 1; nt <= kTileTokens; ++nt) {
          float want[2 * kTileTokens], got[2 * kTileTokens];
          ref(w.data(), acts.data(), stride, nt, n, want, 2);
          fast(w.data(), acts.data(), stride, nt, n, got, 2);
          const bool own_order = wt == TensorType::BF16 && GetParam() == CpuPath::Avx512;
          for (int t = 0; t < nt; ++t) {
            const std::string where = std::string(type_traits(wt).name) + " order " + std::to_string(int(order)) + " n " +
                                      std::to_string(n) + " seed " + std::to_string(seed) + " tile " + std::to_string(nt) +
                                      " token " + std::to_string(t);
            if (!own_order) {
              EXPECT_EQ(got[2 * t], want[2 * t]) << where;
              continue;
            }
            double mag = 0;  // sum |w||x| bounds what reordering float additions can change
            for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wf[size_t(i)]) * xs[size_t(t)][size_t(i)]);
            EXPECT_NEAR(got[2 * t], want[2 * t], 1e-5 * mag + 1e-6) << where;
          }
        }
      }
    }
  }
}

// The other orders' scalar oracles sum the same products: Q4_K pairs agree with the standard Q4_K dot
// to rounding, and ggml_vec_dot_f32's order is a plain fma chain (hence dot_f32's bits) below 16
// elements and close to it otherwise.
TEST(DotOrders, OraclesSumTheSameProducts) {
  for (int64_t n : {256, 1024}) {
    const auto w = weight_row(TensorType::Q4_K, n, 31 + uint32_t(n));
    auto x = gaussian(size_t(n), 32);
    std::vector<uint8_t> a(row_bytes(TensorType::Q8_K, n));
    quantize_activation(TensorType::Q8_K, x.data(), a.data(), n);
    const float standard = vec_dot(TensorType::Q4_K, w.data(), a.data(), n), pairs = dot_q4_K_pairs(w.data(), a.data(), n);
    EXPECT_NEAR(pairs, standard, 1e-5f * (std::fabs(standard) + 1.f)) << n;
  }
  for (int64_t n : {1, 7, 15, 64, 131, 1024}) {
    const auto a = gaussian(size_t(n), 33), b = gaussian(size_t(n), 34);
    const float lanes16 = vec_dot(TensorType::F32, a.data(), b.data(), n), vecdot = dot_f32_vec(a.data(), b.data(), n);
    if (n < 16) {
      EXPECT_EQ(vecdot, lanes16) << n;
    }
    EXPECT_NEAR(vecdot, lanes16, 1e-5f * float(n)) << n;
  }
}

// The repacked GEMMs against the scalar dot, output by output: full and partial row groups (missing
// rows are packed as zeros and never written), every tile width, several blocks per row.
TEST_P(KernelPath, RepackedGemmsMatchScalar) {
  for (auto [wt, order] : {std::pair{TensorType::Q4_K, DotOrder::Standard}, std::pair{TensorType::Q8_0, DotOrder::Standard},
                           std::pair{TensorType::Q6_K, DotOrder::Standard}, std::pair{TensorType::Q4_K, DotOrder::SubBlockPairs}}) {
    const GemmKernel* gemm = order == DotOrder::SubBlockPairs ? path().gemm_q4_K_pairs : path().gemm(wt);
    if (!gemm) continue;  // this path computes the type by dot_tile only (checked above)
    auto oracle = [wt, order](const void* w, const void* a, int64_t n) {
      return order == DotOrder::SubBlockPairs ? dot_q4_K_pairs(w, a, n) : vec_dot(wt, w, a, n);
    };
    const TensorType at = activation_type(wt);
    for (int64_t n : {256, 1024}) {
      for (int nrows : {kGemmRows, 13, 1}) {
        const size_t rb = row_bytes(wt, n) + 6;  // rows need not be adjacent or aligned
        std::vector<uint8_t> rows(rb * size_t(nrows));
        for (int r = 0; r < nrows; ++r) {
          const auto w = weight_row(wt, n, 7000 + uint32_t(r) + uint32_t(n));
          std::memcpy(rows.data() + size_t(r) * rb, w.data(), w.size());
        }
        const size_t arow = row_bytes(at, n), stride = arow + 32;
        std::vector<uint8_t> acts(stride * kTileTokens);
        for (int t = 0; t < kTileTokens; ++t) {
          auto x = gaussian(size_t(n), 500 + uint32_t(t), t % 3 ? 1.f : 1e-3f);
          quantize_activation(at, x.data(), acts.data() + size_t(t) * stride, n);
        }
        std::vector<uint8_t> packed(gemm->packed_bytes(n) + 64);
        uint8_t* aligned = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64;
        gemm->pack(rows.data(), rb, nrows, n, aligned);
        for (int nt = 1; nt <= kTileTokens; ++nt) {
          const size_t ys = kGemmRows + 3;
          std::vector<float> y(ys * kTileTokens, -777.f);
          gemm->tile(aligned, acts.data(), stride, nt, n, y.data(), ys, nrows);
          for (int t = 0; t < kTileTokens; ++t)
            for (int r = 0; r < int(ys); ++r) {
              const std::string where = std::string(type_traits(wt).name) + " n " + std::to_string(n) + " rows " +
                                        std::to_string(nrows) + " tile " + std::to_string(nt) + " token " +
                                        std::to_string(t) + " row " + std::to_string(r);
              if (t >= nt || r >= nrows) {
                EXPECT_EQ(y[size_t(t) * ys + size_t(r)], -777.f) << where << " written outside the tile";
                continue;
              }
              const float want = oracle(rows.data() + size_t(r) * rb, acts.data() + size_t(t) * stride, n);
              EXPECT_EQ(y[size_t(t) * ys + size_t(r)], want) << where << " order " << int(order);
            }
        }
      }
    }
  }
}

// The decode GEMVs against the scalar dot, output by output: 1..kGemvTokens tokens, one to several
// blocks per row, rows neither adjacent nor aligned; nothing outside the row group's outputs written.
TEST_P(KernelPath, GemvsMatchScalar) {
  for (auto [wt, order] : {std::pair{TensorType::Q4_K, DotOrder::Standard}, std::pair{TensorType::Q8_0, DotOrder::Standard},
                           std::pair{TensorType::Q4_K, DotOrder::SubBlockPairs}}) {
    const GemvFn gemv = order == DotOrder::SubBlockPairs ? path().gemv_q4_K_pairs : path().gemv(wt);
    if (!gemv) continue;  // this path computes the type by dot_tile or the GEMM only (checked above)
    auto oracle = [wt, order](const void* w, const void* a, int64_t n) {
      return order == DotOrder::SubBlockPairs ? dot_q4_K_pairs(w, a, n) : vec_dot(wt, w, a, n);
    };
    const TensorType at = activation_type(wt);
    for (int64_t n : {256, 512, 1280}) {
      const size_t rb = row_bytes(wt, n) + 6;
      std::vector<uint8_t> rows(rb * size_t(kGemmRows));
      for (int r = 0; r < kGemmRows; ++r) {
        const auto w = weight_row(wt, n, 9000 + uint32_t(r) + uint32_t(n));
        std::memcpy(rows.data() + size_t(r) * rb, w.data(), w.size());
      }
      const size_t arow = row_bytes(at, n), stride = arow + 32;
      std::vector<uint8_t> acts(stride * kGemvTokens);
      for (int t = 0; t < kGemvTokens; ++t) {
        auto x = gaussian(size_t(n), 800 + uint32_t(t), t % 2 ? 1e-3f : 1.f);
        quantize_activation(at, x.data(), acts.data() + size_t(t) * stride, n);
      }
      for (int nt = 1; nt <= kGemvTokens; ++nt) {
        const size_t ys = kGemmRows + 5;
        std::vector<float> y(ys * kGemvTokens, -777.f);
        gemv(rows.data(), rb, acts.data(), stride, nt, n, y.data(), ys);
        for (int t = 0; t < kGemvTokens; ++t)
          for (int r = 0; r < int(ys); ++r) {
            const std::string where = std::string(type_traits(wt).name) + " n " + std::to_string(n) + " tokens " +
                                      std::to_string(nt) + " token " + std::to_string(t) + " row " + std::to_string(r);
            if (t >= nt || r >= kGemmRows) {
              EXPECT_EQ(y[size_t(t) * ys + size_t(r)], -777.f) << where << " written outside the group";
              continue;
            }
            const float want = oracle(rows.data() + size_t(r) * rb, acts.data() + size_t(t) * stride, n);
            EXPECT_EQ(y[size_t(t) * ys + size_t(r)], want) << where << " order " << int(order);
          }
      }
    }
  }
}

// An elementwise kernel over xs against its scalar definition, bit for bit (any NaN for a NaN).
void expect_elementwise_bits(void (*kernel)(const float*, float*, int64_t), float (*definition)(float),
                             const std::vector<float>& xs) {
  std::vector<float> got(xs.size());
  kernel(xs.data(), got.data(), int64_t(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    const float want = definition(xs[i]);
    if (std::isnan(want)) EXPECT_TRUE(std::isnan(got[i])) << xs[i];
    else EXPECT_EQ(0, std::memcmp(&want, &got[i], 4)) << std::hexfloat << xs[i] << " " << want << " " << got[i];
  }
}

TEST_P(KernelPath, AttentionHelpersMatchScalar) {
  auto a = gaussian(131, 1), b = gaussian(131, 2);
  EXPECT_EQ(path().dot_f32(a.data(), b.data(), 131), scalar_kernels().dot_f32(a.data(), b.data(), 131));
  auto y1 = b, y2 = b;
  scalar_kernels().scale_f32(-1.5f, y1.data(), 131);
  path().scale_f32(-1.5f, y2.data(), 131);
  for (size_t i = 0; i < y1.size(); ++i) EXPECT_EQ(y1[i], y2[i]) << i;
  // exp_f32 against the scalar definition: attention's range (<= 0), both sides of every special
  // threshold, infinities, NaN, subnormal results, and an odd count for the tail.
  std::vector<float> xs = {-INFINITY, INFINITY, NAN, 0.f, -0.f, 88.7f, 88.73f, 89.f, -87.9f, -88.1f, -103.0f,
                           -103.5f, -104.f, -150.f, 1e-8f, -1e-8f, 10.f, -0x1.9d1d9ep6f, -0x1.9fe368p6f, 0x1.62e42ep6f};
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> range(-110.f, 5.f);
  for (int i = 0; i < 20001; ++i) xs.push_back(i % 3 ? range(rng) : -std::ldexp(range(rng) * range(rng), -10));
  expect_elementwise_bits(path().exp_f32, expf_reference, xs);
  EXPECT_EQ(expf_reference(0.f), 1.f);
  EXPECT_EQ(expf_reference(-INFINITY), 0.f);
  EXPECT_NEAR(expf_reference(-1.f), 0.36787944f, 1e-7f);

  // exp_vector_f32 against its scalar definition: the softmax's range (<= 0, -inf for nothing here but
  // cheap to pin), both sides of where 2^k leaves the normal exponents, and in place (y == x).
  {
    std::vector<float> ys = {-INFINITY, 0.f, -0.f, -87.3f, -87.4f, -88.0f, -103.9f, -104.f, -133.f, -134.f, -200.f, 1.f, 80.f, NAN};
    std::uniform_real_distribution<float> below(-140.f, 0.f);
    for (int i = 0; i < 20001; ++i) ys.push_back(below(rng));
    expect_elementwise_bits(path().exp_vector_f32, expf_vector, ys);
    auto in_place = ys;
    path().exp_vector_f32(in_place.data(), in_place.data(), int64_t(in_place.size()));
    for (size_t i = 0; i < ys.size(); ++i) {
      const float want = expf_vector(ys[i]);
      if (!std::isnan(want)) {
        EXPECT_EQ(0, std::memcmp(&want, &in_place[i], 4)) << std::hexfloat << ys[i];
      }
    }
    EXPECT_EQ(expf_vector(0.f), 1.f);
    EXPECT_EQ(expf_vector(-INFINITY), 0.f);
    EXPECT_NEAR(expf_vector(-1.f), 0.36787944f, 1e-7f);
  }

  // attend_exp: the bits of the scalar definition, for window lengths below, at and past the 8-lane
  // width; scores of either sign of zero as the maximum, and a window where every weight underflows
  // but the largest.
  for (int64_t n : {1, 7, 8, 9, 33, 300}) {
    for (int variant = 0; variant < 3; ++variant) {
      auto x = gaussian(size_t(n), 70 + uint32_t(variant), variant == 2 ? 400.f : 3.f);
      if (variant == 1) {
        for (float& f : x) f = -std::fabs(f);
        x[size_t(n) / 2] = -0.f;
        x[size_t(n) - 1] = 0.f;
      }
      auto want = x, got = x;
      scalar_kernels().attend_exp(want.data(), n, 0.088388f);
      path().attend_exp(got.data(), n, 0.088388f);
      for (size_t i = 0; i < want.size(); ++i)
        EXPECT_EQ(0, std::memcmp(&want[i], &got[i], 4)) << "n " << n << " variant " << variant << " element " << i;
    }
  }

  // attend_scores: every (head, key) score is a lone dot_f32_vec (its bits but for a zero's sign), for head counts and widths
  // below, at and past a 64-element step, with a tail, and every run of keys a block holds; the keys lane-major in their
  // block as the KV store keeps them, so the kernels read keys outside the run too (here: NaNs) and must drop them.
  for (int64_t d : {128, 64, 131, 70, 256, 197, 16, 7}) {
    const size_t q_stride = size_t(d) + 5, s_stride = kAttendLanes + 3;
    const auto q = gaussian(q_stride * kAttendHeads, 60), k = gaussian(size_t(d) * kAttendLanes, 61);
    std::vector<float> kt(k.size());  // key u's element i at kt[i * kAttendLanes + u]
    for (int u = 0; u < kAttendLanes; ++u)
      for (int64_t i = 0; i < d; ++i) kt[size_t(i) * kAttendLanes + size_t(u)] = k[size_t(u) * size_t(d) + size_t(i)];
    for (int nh : {1, 3, 4, 8, 13, kAttendHeads})
      for (int u0 = 0; u0 < kAttendLanes; ++u0)
        for (int n = 1; u0 + n <= kAttendLanes; ++n) {
          std::vector<float> block = kt, s(size_t(nh) * s_stride, -777.f);
          for (int u = 0; u < kAttendLanes; ++u)
            if (u < u0 || u >= u0 + n)
              for (int64_t i = 0; i < d; ++i) block[size_t(i) * kAttendLanes + size_t(u)] = std::numeric_limits<float>::quiet_NaN();
          path().attend_scores(q.data(), q_stride, nh, block.data(), u0, n, d, s.data(), s_stride);
          for (int h = 0; h < nh; ++h)
            for (int u = 0; u < int(s_stride); ++u) {
              const std::string where = "d " + std::to_string(d) + " heads " + std::to_string(nh) + " keys " + std::to_string(u0) + ".." +
                                        std::to_string(u0 + n - 1) + " head " + std::to_string(h) + " score " + std::to_string(u);
              const float got = s[size_t(h) * s_stride + size_t(u)];
              if (u >= n) {
                EXPECT_EQ(got, -777.f) << where << " written past the run";
              } else {
                EXPECT_EQ(got, dot_f32_vec(q.data() + size_t(h) * q_stride, k.data() + size_t(u0 + u) * size_t(d), d)) << where;
              }
            }
        }
  }

  // attend_values: position u (first <= u < n) feeds lane u % 16 of every head with one fma per
  // element in key order, and each output is the lanes' 16-lane fold; vector and tail widths, head
  // counts, windows starting inside a chunk, key counts short of a chunk, whole chunks and more.
  for (int64_t d : {128, 131, 64, 7})
    for (auto [first, n] : {std::pair<int64_t, int64_t>{0, 1}, {0, 5}, {3, 16}, {0, 37}, {5, 64}, {17, 40}, {9, 300}}) {
      std::vector<std::vector<float>> vals;
      std::vector<const float*> vptr(static_cast<size_t>(n), nullptr);  // rows before first are never read
      for (int64_t u = first; u < n; ++u) vals.push_back(gaussian(size_t(d), 40 + uint32_t(u))), vptr[size_t(u)] = vals.back().data();
      for (int nh : {1, 2, 4, 6, 8, kAttendHeads}) {
        const size_t p_stride = size_t(n) + 1, y_stride = size_t(d) + 2;
        const auto p = gaussian(p_stride * size_t(nh), 41, 0.1f);
        std::vector<float> want(y_stride * size_t(nh), -777.f), got = want;
        for (int h = 0; h < nh; ++h)
          for (int64_t i = 0; i < d; ++i) {
            float lane[kAttendLanes] = {};
            for (int64_t u = first; u < n; ++u)
              lane[u % kAttendLanes] = std::fma(p[size_t(h) * p_stride + size_t(u)], vptr[size_t(u)][i], lane[u % kAttendLanes]);
            float h8[8], h4[4];
            for (int l = 0; l < 8; ++l) h8[l] = lane[l] + lane[l + 8];
            for (int l = 0; l < 4; ++l) h4[l] = h8[l] + h8[l + 4];
            want[size_t(h) * y_stride + size_t(i)] = (h4[0] + h4[2]) + (h4[1] + h4[3]);
          }
        path().attend_values(got.data(), y_stride, nh, d, first, n, vptr.data(), p.data(), p_stride);
        for (size_t i = 0; i < want.size(); ++i)
          EXPECT_EQ(want[i], got[i]) << "d " << d << " keys " << first << ".." << n << " heads " << nh << " element " << i;
      }
    }
  std::vector<uint8_t> buf(1 << 16);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i * 31 + 7);
  EXPECT_EQ(path().stream_read(buf.data(), buf.size()), scalar_kernels().stream_read(buf.data(), buf.size()));
}

// silu_f32 against the scalar definition: the FFN's range, both sides of the thresholds where 2^k
// leaves the normal exponents (k -126 / 127, |k| 192: x near -/+87.3, 88.0, 133), infinities, NaN,
// and an odd count for the tail.
TEST_P(KernelPath, SiluMatchesScalar) {
  std::vector<float> xs = {-INFINITY, INFINITY, NAN, 0.f, -0.f, 87.3f, 87.4f, -88.0f, -88.1f, -88.8f, 88.8f,
                           -89.f, 103.9f, 104.f, 133.f, 134.f, -133.f, -134.f, 1e-30f, -1e-30f, 1e-8f, 20.f};
  std::mt19937 rng(11);
  std::normal_distribution<float> gauss(0.f, 3.f);
  std::uniform_real_distribution<float> wide(-150.f, 150.f);
  for (int i = 0; i < 20001; ++i) xs.push_back(i % 4 ? gauss(rng) : wide(rng));
  expect_elementwise_bits(path().silu_f32, silu, xs);
  auto in_place = xs;  // the FFN applies it in place: lanes redone by the scalar definition must see their input
  path().silu_f32(in_place.data(), in_place.data(), int64_t(in_place.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    const float want = silu(xs[i]);
    if (!std::isnan(want)) {
      EXPECT_EQ(0, std::memcmp(&want, &in_place[i], 4)) << std::hexfloat << xs[i];
    }
  }
}

// rope_f32 against the scalar kernel for the rotary widths the models use, and against the formula
// the reference's compiler makes of x0*c - x1*s, x0*s + x1*c (the first product of each fused).
TEST_P(KernelPath, RopeMatchesScalar) {
  for (int n_rot : {32, 64, 128, 6}) {
    auto head = gaussian(size_t(n_rot) + 5, 70 + uint32_t(n_rot)), cs = gaussian(size_t(n_rot), 80 + uint32_t(n_rot));
    auto want = head, got = head;
    scalar_kernels().rope_f32(want.data(), cs.data(), n_rot);
    path().rope_f32(got.data(), cs.data(), n_rot);
    for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(0, std::memcmp(&want[i], &got[i], 4)) << "n_rot " << n_rot << " element " << i;
    for (int i = 0; i < n_rot / 2; ++i) {
      const float c = cs[size_t(2 * i)], s = cs[size_t(2 * i + 1)], x0 = head[size_t(i)], x1 = head[size_t(i + n_rot / 2)];
      EXPECT_EQ(got[size_t(i)], std::fma(x0, c, -(x1 * s)));
      EXPECT_EQ(got[size_t(i + n_rot / 2)], std::fma(x0, s, x1 * c));
    }
    for (size_t i = size_t(n_rot); i < head.size(); ++i) EXPECT_EQ(got[i], head[i]) << "past n_rot";
  }
}

// The definition is the reference's approximation of x / (1 + e^-x): within a few ulps of the exact
// value (not libm's expf, which it differs from in the last bit for some inputs), exact at 0 and for
// large x, -0 for x -> -inf as the reference's x / inf.
TEST(Silu, CloseToTheExactFunction) {
  int differs_from_libm = 0;
  for (float x = -80.f; x <= 80.f; x += 0.01f) {
    const double exact = double(x) / (1.0 + std::exp(-double(x)));
    const float got = silu(x);
    EXPECT_LE(std::fabs(got - exact), 4 * (std::nextafter(std::fabs(float(exact)), INFINITY) - std::fabs(float(exact))) + 1e-45)
        << std::hexfloat << x;
    differs_from_libm += got != x / (1.f + std::exp(-x));
  }
  EXPECT_GT(differs_from_libm, 0) << "the reference's exp is not libm's: some last bits must differ";
  EXPECT_EQ(silu(0.f), 0.f);
  EXPECT_EQ(silu(100.f), 100.f);
  EXPECT_EQ(silu(-200.f), -0.f);
}

INSTANTIATE_TEST_SUITE_P(Paths, KernelPath, ::testing::Values(CpuPath::Scalar, CpuPath::Avx2, CpuPath::Avx512),
                         [](const auto& info) { return std::string(cpu_path_name(info.param)); });

TEST(KernelDispatch, NamesAndSelection) {
  EXPECT_EQ(cpu_path_from_name("avx2"), CpuPath::Avx2);
  EXPECT_FALSE(cpu_path_from_name("sse9").has_value());
  EXPECT_TRUE(cpu_path_supported(CpuPath::Scalar));
  const CpuPath before = kernels().path;
  select_cpu_path(CpuPath::Scalar);
  EXPECT_EQ(kernels().path, CpuPath::Scalar);
  select_cpu_path(before);
}

}  // namespace
