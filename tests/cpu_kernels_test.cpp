// Every SIMD kernel path against the scalar reference on random blocks of every type (in the spirit
// of ggml's test-backend-ops): activation quantizers and dot products must be bit-identical, for every
// tile width (the scalar kernels emulate the SIMD float order lane by lane), except AVX-512's bf16 dot,
// whose vdpbf16ps adds pairs of products in its own order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
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

TEST_P(KernelPath, DotTilesMatchScalar) {
  const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                              TensorType::MXFP4, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_XS};
  for (TensorType wt : types) {
    const TensorType at = activation_type(wt);
    const bool plain = type_traits(wt).block_elems == 1;
    for (int64_t n : plain ? std::vector<int64_t>{7, 512, 515} : std::vector<int64_t>{256, 768}) {
      DotTileFn fast = path().dot_tile(wt);
      ASSERT_NE(fast, nullptr) << type_traits(wt).name;
      DotTileFn ref = scalar_kernels().dot_tile(wt);
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
            const std::string where = std::string(type_traits(wt).name) + " n " + std::to_string(n) + " seed " +
                                      std::to_string(seed) + " tile " + std::to_string(nt) + " token " + std::to_string(t);
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

// The repacked GEMMs against the scalar dot, output by output: full and partial row groups (missing
// rows are packed as zeros and never written), every tile width, several blocks per row.
TEST_P(KernelPath, RepackedGemmsMatchScalar) {
  for (TensorType wt : {TensorType::Q4_K, TensorType::Q8_0, TensorType::Q6_K}) {
    const GemmKernel* gemm = path().gemm(wt);
    if (!gemm) continue;  // this path computes the type by dot_tile only (checked above)
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
              const float want = vec_dot(wt, rows.data() + size_t(r) * rb, acts.data() + size_t(t) * stride, n);
              EXPECT_EQ(y[size_t(t) * ys + size_t(r)], want) << where;
            }
        }
      }
    }
  }
}

// The decode GEMVs against the scalar dot, output by output: 1..kGemvTokens tokens, one to several
// blocks per row, rows neither adjacent nor aligned; nothing outside the row group's outputs written.
TEST_P(KernelPath, GemvsMatchScalar) {
  for (TensorType wt : {TensorType::Q4_K, TensorType::Q8_0}) {
    const GemvFn gemv = path().gemv(wt);
    if (!gemv) continue;  // this path computes the type by dot_tile or the GEMM only (checked above)
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
            const float want = vec_dot(wt, rows.data() + size_t(r) * rb, acts.data() + size_t(t) * stride, n);
            EXPECT_EQ(y[size_t(t) * ys + size_t(r)], want) << where;
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

  // attend_scores: every (head, key) score is the bits of a lone dot_f32, for head and key counts
  // that fill the 4 x 4 register blocks and ones that leave them short, and widths with a tail.
  for (int64_t d : {128, 64, 131, 16, 7}) {
    const size_t q_stride = size_t(d) + 5, k_stride = size_t(d) + 3;
    const auto q = gaussian(q_stride * kAttendHeads, 60), k = gaussian(k_stride * kTileTokens, 61);
    for (int nh : {1, 3, 4, 8, 13, kAttendHeads})
      for (int n = 1; n <= kTileTokens; ++n) {
        std::vector<float> s(size_t(nh * n), -777.f);
        path().attend_scores(q.data(), q_stride, nh, k.data(), k_stride, n, d, s.data());
        for (int h = 0; h < nh; ++h)
          for (int u = 0; u < n; ++u)
            EXPECT_EQ(s[size_t(u * nh + h)], scalar_kernels().dot_f32(q.data() + size_t(h) * q_stride, k.data() + size_t(u) * k_stride, d))
                << "d " << d << " heads " << nh << " keys " << n << " head " << h << " key " << u;
      }
  }

  // attend_softmax against its definition written out here: per head, key by key, over runs that
  // raise the max at the first key, somewhere later, or never, for full and partial vectors of heads.
  {
    std::mt19937 rng(5);
    std::normal_distribution<float> score(0.f, 4.f);
    for (int nh : {1, 5, 8, 11, kAttendHeads})
      for (int n = 1; n <= kTileTokens; ++n)
        for (int run = 0; run < 3; ++run) {
          std::vector<float> s(size_t(nh * n)), M(static_cast<size_t>(nh)), S(static_cast<size_t>(nh));
          for (float& x : s) x = score(rng);
          for (int h = 0; h < nh; ++h) M[size_t(h)] = run == 0 ? -INFINITY : score(rng) * 0.3f, S[size_t(h)] = run == 0 ? 0.f : 1.5f;
          auto wantM = M, wantS = S, gotM = M, gotS = S;
          std::vector<float> wantms(s.size()), wantvs(s.size()), gotms(s.size(), -1.f), gotvs(s.size(), -1.f);
          const float scale = 0.088388f;
          for (int h = 0; h < nh; ++h)
            for (int u = 0; u < n; ++u) {
              const size_t at = size_t(u * nh + h);
              const float x = s[at] * scale;
              const bool up = x > wantM[size_t(h)];
              const float e = expf_reference(up ? wantM[size_t(h)] - x : x - wantM[size_t(h)]);
              if (up) wantM[size_t(h)] = x;
              wantms[at] = up ? e : 1.f;
              wantvs[at] = up ? 1.f : e;
              const volatile float scaled = wantS[size_t(h)] * wantms[at];  // two roundings, never an fma
              wantS[size_t(h)] = scaled + wantvs[at];
            }
          path().attend_softmax(s.data(), nh, n, scale, gotM.data(), gotS.data(), gotms.data(), gotvs.data());
          const std::string where = "heads " + std::to_string(nh) + " keys " + std::to_string(n) + " run " + std::to_string(run);
          for (int h = 0; h < nh; ++h) {
            EXPECT_EQ(gotM[size_t(h)], wantM[size_t(h)]) << where << " head " << h;
            EXPECT_EQ(gotS[size_t(h)], wantS[size_t(h)]) << where << " head " << h;
          }
          for (size_t i = 0; i < s.size(); ++i) {
            EXPECT_EQ(gotms[i], wantms[i]) << where << " at " << i;
            EXPECT_EQ(gotvs[i], wantvs[i]) << where << " at " << i;
          }
        }
  }

  // attend_values: per head, a run of keys equals scale_f32 + one fma per element, key by key
  // (rescales where ms != 1, including the first key's 0), for register-blocked and tail widths and
  // head counts; rows of other heads and the gaps between them are left alone.
  for (int64_t d : {128, 131, 64, 7}) {
    std::vector<std::vector<float>> vals;
    std::vector<const float*> vptr;
    for (int u = 0; u < kTileTokens; ++u) vals.push_back(gaussian(size_t(d), 40 + uint32_t(u))), vptr.push_back(vals.back().data());
    for (int nh : {1, 4, 6, kAttendHeads})
      for (int keys = 1; keys <= kTileTokens; ++keys) {
        std::vector<float> ms(size_t(nh * keys)), vs(size_t(nh * keys));
        for (size_t i = 0; i < ms.size(); ++i) {  // a mix of rescales (first key: 0) and plain updates
          ms[i] = i < size_t(nh) ? 0.f : (i * 7 % 3 == 0 ? 0.75f + 0.01f * float(i % 5) : 1.f);
          vs[i] = ms[i] != 1.f ? 1.f : 0.01f + 0.1f * float(i % 9);
        }
        const size_t y_stride = size_t(d) + 2;
        auto want = gaussian(y_stride * size_t(nh), 3), got = want;
        for (int h = 0; h < nh; ++h) {
          float* yh = want.data() + size_t(h) * y_stride;
          for (int u = 0; u < keys; ++u) {
            const size_t at = size_t(u * nh + h);
            if (ms[at] != 1.f) scalar_kernels().scale_f32(ms[at], yh, d);
            for (int64_t i = 0; i < d; ++i) yh[i] = std::fma(vs[at], vptr[size_t(u)][i], yh[i]);
          }
        }
        path().attend_values(got.data(), y_stride, nh, d, keys, vptr.data(), ms.data(), vs.data());
        for (size_t i = 0; i < want.size(); ++i)
          EXPECT_EQ(want[i], got[i]) << "d " << d << " heads " << nh << " keys " << keys << " element " << i;
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
}

// rope_f32 against the scalar kernel for the rotary widths the models use, and against the formula
// the reference's compiler makes of x0*c - x1*s, x0*s + x1*c (the second product of each fused).
TEST_P(KernelPath, RopeMatchesScalar) {
  for (int n_rot : {32, 64, 128, 6}) {
    auto head = gaussian(size_t(n_rot) + 5, 70 + uint32_t(n_rot)), cs = gaussian(size_t(n_rot), 80 + uint32_t(n_rot));
    auto want = head, got = head;
    scalar_kernels().rope_f32(want.data(), cs.data(), n_rot);
    path().rope_f32(got.data(), cs.data(), n_rot);
    for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(0, std::memcmp(&want[i], &got[i], 4)) << "n_rot " << n_rot << " element " << i;
    for (int i = 0; i < n_rot / 2; ++i) {
      const float c = cs[size_t(2 * i)], s = cs[size_t(2 * i + 1)], x0 = head[size_t(i)], x1 = head[size_t(i + n_rot / 2)];
      EXPECT_EQ(got[size_t(i)], std::fma(-x1, s, x0 * c));
      EXPECT_EQ(got[size_t(i + n_rot / 2)], std::fma(x1, c, x0 * s));
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
