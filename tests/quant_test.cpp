// Block layouts, dequantization of hand-built blocks, quantizer round trips and error bounds, and the
// fp16/bf16 conversions. Random data comes from a fixed-seed mt19937 with our own Box-Muller (the
// standard distributions are implementation-defined), so every run sees the same numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "engine/quant_blocks.h"
#include "engine/tensor_types.h"

using namespace flashfix;

namespace {

constexpr TensorType kQuantizable[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                       TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K};

std::vector<float> gaussian(size_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  auto uni = [&] { return (float(rng() >> 8) + 0.5f) * 0x1p-24f; };  // (0, 1)
  std::vector<float> v(n);
  for (auto& x : v) x = sigma * std::sqrt(-2 * std::log(uni())) * std::cos(6.2831853f * uni());
  return v;
}

std::vector<float> roundtrip(TensorType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, int64_t(x.size())));
  quantize_row(t, x.data(), q.data(), int64_t(x.size()));
  std::vector<float> y(x.size());
  dequantize_row(t, q.data(), y.data(), int64_t(y.size()));
  return y;
}

struct ErrStats {
  double max_rel = 0;  // max over blocks of max|x - y| / max|x|
  double rms = 0;      // sqrt(mean (x - y)^2)
};

ErrStats measure(TensorType t, const std::vector<float>& x) {
  const auto y = roundtrip(t, x);
  const size_t be = size_t(type_traits(t).block_elems);
  ErrStats s;
  double sse = 0;
  for (size_t b = 0; b < x.size(); b += be) {
    // F16 is only relatively accurate in its normal range; below 2^-14 its error is absolute (<= 2^-25).
    double amax = t == TensorType::F16 ? 0x1p-14 : 0, emax = 0;
    for (size_t i = b; i < b + be; ++i) {
      amax = std::max(amax, double(std::fabs(x[i])));
      const double e = double(x[i]) - double(y[i]);
      emax = std::max(emax, std::fabs(e));
      sse += e * e;
    }
    if (amax > 0) s.max_rel = std::max(s.max_rel, emax / amax);
  }
  s.rms = std::sqrt(sse / double(x.size()));
  return s;
}

// Data sets the bounds must hold on. 64 super-blocks each.
std::vector<std::pair<const char*, std::vector<float>>> datasets() {
  constexpr size_t n = 256 * 64;
  std::vector<std::pair<const char*, std::vector<float>>> d;
  d.emplace_back("gauss", gaussian(n, 1.0f, 1));
  d.emplace_back("gauss_weights", gaussian(n, 0.05f, 2));
  auto outl = gaussian(n, 1.0f, 3);
  std::mt19937 rng(4);
  for (int k = 0; k < int(n / 100); ++k) outl[rng() % n] *= 30.0f;
  d.emplace_back("outliers", outl);
  auto mixed = gaussian(n, 1.0f, 5);  // every 32-run at its own scale: exercises all 6 scale bits
  for (size_t i = 0; i < n; ++i) mixed[i] *= std::ldexp(1.0f, int((i / 32) % 8) - 4);
  d.emplace_back("mixed_scales", mixed);
  auto pos = gaussian(n, 1.0f, 6);  // all positive: the K-quant min must clamp to 0
  for (auto& x : pos) x = std::fabs(x) + 2.0f;
  d.emplace_back("positive", pos);
  auto neg = gaussian(n, 0.3f, 7);  // all negative
  for (auto& x : neg) x = -std::fabs(x) - 1.0f;
  d.emplace_back("negative", neg);
  std::mt19937 urng(8);
  std::vector<float> uni(n);
  for (auto& x : uni) x = float(urng() >> 8) * 0x1p-23f - 1.0f;
  d.emplace_back("uniform", uni);
  return d;
}

uint16_t bits_of_fp16(float f) { return fp32_to_fp16(f); }

}  // namespace

// ---- layout ------------------------------------------------------------------------------------

TEST(QuantBlocks, SizesMatchTraits) {
  EXPECT_EQ(sizeof(block_q4_0), type_traits(TensorType::Q4_0).block_bytes);
  EXPECT_EQ(sizeof(block_q8_0), type_traits(TensorType::Q8_0).block_bytes);
  EXPECT_EQ(sizeof(block_q4_K), type_traits(TensorType::Q4_K).block_bytes);
  EXPECT_EQ(sizeof(block_q5_K), type_traits(TensorType::Q5_K).block_bytes);
  EXPECT_EQ(sizeof(block_q6_K), type_traits(TensorType::Q6_K).block_bytes);
  EXPECT_EQ(sizeof(block_q8_K), type_traits(TensorType::Q8_K).block_bytes);
  EXPECT_EQ(sizeof(block_iq4_xs), type_traits(TensorType::IQ4_XS).block_bytes);
  EXPECT_EQ(sizeof(block_mxfp4), type_traits(TensorType::MXFP4).block_bytes);
}

TEST(QuantBlocks, FieldOffsets) {
  EXPECT_EQ(offsetof(block_q4_K, scales), 4u);
  EXPECT_EQ(offsetof(block_q4_K, qs), 16u);
  EXPECT_EQ(offsetof(block_q5_K, qh), 16u);
  EXPECT_EQ(offsetof(block_q5_K, qs), 48u);
  EXPECT_EQ(offsetof(block_q6_K, qh), 128u);
  EXPECT_EQ(offsetof(block_q6_K, scales), 192u);
  EXPECT_EQ(offsetof(block_q6_K, d), 208u);
  EXPECT_EQ(offsetof(block_q8_K, bsums), 260u);
  EXPECT_EQ(offsetof(block_iq4_xs, scales_l), 4u);
  EXPECT_EQ(offsetof(block_iq4_xs, qs), 8u);
  EXPECT_EQ(offsetof(block_mxfp4, qs), 1u);
}

// ---- hand-built blocks -------------------------------------------------------------------------

TEST(Dequant, Q8_0) {
  block_q8_0 b;
  b.d = 0x3800;  // 0.5
  for (int j = 0; j < 32; ++j) b.qs[j] = int8_t(j * 8 - 128);
  float y[32];
  dequantize_row(TensorType::Q8_0, &b, y, 32);
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[31], 60.0f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * float(j * 8 - 128));
}

TEST(Dequant, Q4_0) {
  block_q4_0 b;
  b.d = 0xBE00;  // -1.5
  for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | (15 - j) << 4);
  float y[32];
  dequantize_row(TensorType::Q4_0, &b, y, 32);
  EXPECT_EQ(y[0], 12.0f);    // -1.5 * (0 - 8)
  EXPECT_EQ(y[16], -10.5f);  // -1.5 * (15 - 8): element 16 is the high nibble of byte 0
  EXPECT_EQ(y[15], -10.5f);
  EXPECT_EQ(y[31], 12.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], -1.5f * float(j - 8));
    EXPECT_EQ(y[j + 16], -1.5f * float(7 - j));
  }
}

// Scales/mins chosen so both packing branches and all 6 bits matter; bytes worked out by hand.
static const uint8_t kSc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
static const uint8_t kMin[8] = {5, 6, 7, 8, 20, 40, 63, 1};
static const uint8_t kPacked[12] = {0x41, 0x82, 0xC3, 0xC4, 0x45, 0x86, 0xC7, 0x08, 0x41, 0x81, 0xF2, 0x1F};

TEST(QuantBlocks, ScaleMinK4Packing) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, kPacked, &sc, &m);
    EXPECT_EQ(sc, kSc[j]) << j;
    EXPECT_EQ(m, kMin[j]) << j;
  }
  uint8_t s[12];
  pack_scale_min_k4(kSc, kMin, s);
  EXPECT_EQ(std::memcmp(s, kPacked, 12), 0);
}

TEST(Dequant, Q4_K) {
  block_q4_K b;
  b.d = 0x3C00;     // 1
  b.dmin = 0x3800;  // 0.5
  std::memcpy(b.scales, kPacked, 12);
  for (int i = 0; i < 128; ++i) b.qs[i] = uint8_t((i & 15) | (15 - (i & 15)) << 4);
  float y[256];
  dequantize_row(TensorType::Q4_K, &b, y, 256);
  EXPECT_EQ(y[0], -2.5f);     // 1*1*0 - 0.5*5
  EXPECT_EQ(y[1], -1.5f);     // 1*1*1 - 0.5*5
  EXPECT_EQ(y[32], 27.0f);    // sub-block 1 = high nibbles of chunk 0: 2*15 - 0.5*6
  EXPECT_EQ(y[131], 41.0f);   // sub-block 4 (j>=4 packing): 17*3 - 0.5*20
  EXPECT_EQ(y[224], 944.5f);  // sub-block 7: 63*15 - 0.5*1
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32, l = e % 32;
    const int q = (j % 2 == 0) ? (l & 15) : 15 - (l & 15);
    EXPECT_EQ(y[e], float(kSc[j] * q) - 0.5f * float(kMin[j])) << e;
  }
}

TEST(Dequant, Q5_K) {
  block_q5_K b;
  b.d = 0x3C00;
  b.dmin = 0x3800;
  std::memcpy(b.scales, kPacked, 12);
  for (int i = 0; i < 128; ++i) b.qs[i] = uint8_t((i & 15) | (15 - (i & 15)) << 4);
  // Even l: bits 1,3,5,7 (odd sub-blocks get +16); odd l: bits 0,2,4,6 (even sub-blocks).
  for (int l = 0; l < 32; ++l) b.qh[l] = l % 2 ? 0x55 : 0xAA;
  float y[256];
  dequantize_row(TensorType::Q5_K, &b, y, 256);
  EXPECT_EQ(y[0], -2.5f);    // l even, sub-block 0: no high bit
  EXPECT_EQ(y[1], 14.5f);    // l odd: (1 + 16) - 2.5
  EXPECT_EQ(y[32], 59.0f);   // sub-block 1, l even: 2*(15 + 16) - 3
  EXPECT_EQ(y[225], 881.5f);  // sub-block 7, l odd: no high bit, 63*(15 - 1) - 0.5
  for (int e = 0; e < 256; ++e) {
    const int j = e / 32, l = e % 32;
    const int q = ((j % 2 == 0) ? (l & 15) : 15 - (l & 15)) + ((j % 2) == (l % 2) ? 0 : 16);
    EXPECT_EQ(y[e], float(kSc[j] * q) - 0.5f * float(kMin[j])) << e;
  }
}

TEST(Dequant, Q6_K) {
  block_q6_K b;
  std::memset(&b, 0, sizeof b);
  b.d = 0x3400;  // 0.25
  const int8_t sc[16] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -128};
  std::memcpy(b.scales, sc, 16);
  b.ql[0] = 0xA5, b.ql[32] = 0x3C, b.qh[0] = 0xE4;              // first half, l = 0
  b.ql[64 + 17] = 0x7F, b.ql[64 + 49] = 0x01, b.qh[32 + 17] = 0x1B;  // second half, l = 17
  float y[256];
  dequantize_row(TensorType::Q6_K, &b, y, 256);
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[e] = 0.25f * float(sc[e / 16]) * -32.0f;  // all-zero bits: q = -32
  want[0] = -6.75f;     // q = 0x5 | 0<<4 = 5 -> -27, sc[0] = 1
  want[32] = -3.0f;     // q = 0xC | 1<<4 = 28 -> -4, sc[2] = 3
  want[64] = 12.5f;     // q = 0xA | 2<<4 = 42 -> 10, sc[4] = 5
  want[96] = 33.25f;    // q = 0x3 | 3<<4 = 51 -> 19, sc[6] = 7
  want[145] = -77.5f;   // q = 0xF | 3<<4 = 63 -> 31, sc[9] = -10
  want[177] = -3.0f;    // q = 0x1 | 2<<4 = 33 -> 1, sc[11] = -12
  want[209] = 31.5f;    // q = 0x7 | 1<<4 = 23 -> -9, sc[13] = -14
  want[241] = 1024.0f;  // q = 0 -> -32, sc[15] = -128
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], want[e]) << e;
}

TEST(Dequant, Q8_K) {
  block_q8_K b;
  b.d = 0.125f;
  for (int j = 0; j < 256; ++j) b.qs[j] = int8_t(j - 128);
  float y[256];
  dequantize_row(TensorType::Q8_K, &b, y, 256);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[255], 15.875f);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], 0.125f * float(j - 128));
}

TEST(Dequant, IQ4_XS) {
  block_iq4_xs b;
  b.d = 0x3800;  // 0.5
  // 6-bit scales ls = {0, 32, 63, 31, 33, 1, 47, 16}: low nibbles in scales_l, high 2 bits in scales_h.
  const int ls[8] = {0, 32, 63, 31, 33, 1, 47, 16};
  b.scales_l[0] = 0x00, b.scales_l[1] = 0xFF, b.scales_l[2] = 0x11, b.scales_l[3] = 0x0F;
  b.scales_h = 0x6278;
  for (int ib = 0; ib < 8; ++ib) EXPECT_EQ(iq4_xs_scale(b, ib), ls[ib] - 32) << ib;
  for (int i = 0; i < 128; ++i) b.qs[i] = uint8_t((i & 15) | (15 - (i & 15)) << 4);
  float y[256];
  dequantize_row(TensorType::IQ4_XS, &b, y, 256);
  EXPECT_EQ(y[5], 560.0f);        // dl = 0.5 * -32, T[5] = -35
  EXPECT_EQ(y[40], 0.0f);         // ib 1: ls = 32 -> dl = 0
  EXPECT_EQ(y[64], -1968.5f);     // ib 2: dl = 15.5, T[0] = -127
  EXPECT_EQ(y[80], 1751.5f);      // element 16 of ib 2 = high nibble of byte 0: T[15] = 113
  EXPECT_EQ(y[224 + 18], -552.0f);  // ib 7: dl = -8, high nibble 15 - 2 -> T[13] = 69
  const int T[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (int e = 0; e < 256; ++e) {
    const int ib = e / 32, j = e % 32;
    EXPECT_EQ(y[e], 0.5f * float(ls[ib] - 32) * float(T[j < 16 ? j : 15 - (j - 16)])) << e;
  }
}

TEST(Dequant, MXFP4) {
  block_mxfp4 b[4];
  const uint8_t e[4] = {130, 127, 0, 255};
  for (int k = 0; k < 4; ++k) {
    b[k].e = e[k];
    for (int j = 0; j < 16; ++j) b[k].qs[j] = uint8_t(j | (15 - j) << 4);
  }
  float y[128];
  dequantize_row(TensorType::MXFP4, b, y, 128);
  EXPECT_EQ(y[7], 48.0f);       // d = 2^(130-128) = 4, kv[7] = 12 (e2m1 6.0 doubled)
  EXPECT_EQ(y[16], -48.0f);     // high nibble of byte 0 = 15 -> -12
  EXPECT_EQ(y[16 + 6], -4.0f);  // nibble 9 -> -1
  EXPECT_EQ(y[8], 0.0f);        // nibble 8 is -0
  EXPECT_EQ(y[32 + 5], 3.0f);   // e = 127: d = 0.5, kv[5] = 6
  EXPECT_EQ(y[64 + 7], 12.0f * std::ldexp(1.0f, -128));  // e = 0: subnormal scale, exact
  EXPECT_EQ(y[96 + 1], std::ldexp(1.0f, 127));            // e = 255 read as 2^127
  const int kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 4.0f * float(kv[j]));
    EXPECT_EQ(y[j + 16], 4.0f * float(kv[15 - j]));
  }
}

TEST(Dequant, PlainFloats) {
  const float f[3] = {1.5f, -0.0f, 3.0e38f};
  float y[3];
  dequantize_row(TensorType::F32, f, y, 3);
  EXPECT_EQ(std::memcmp(f, y, sizeof f), 0);
  const uint16_t h[3] = {0x3E00, 0x8000, 0x7C00};
  dequantize_row(TensorType::F16, h, y, 3);
  EXPECT_EQ(y[0], 1.5f);
  EXPECT_TRUE(y[1] == 0 && std::signbit(y[1]));
  EXPECT_EQ(y[2], INFINITY);
  const uint16_t bf[3] = {0x3FC0, 0xC000, 0xFF80};
  dequantize_row(TensorType::BF16, bf, y, 3);
  EXPECT_EQ(y[0], 1.5f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], -INFINITY);
}

// ---- quantizers --------------------------------------------------------------------------------

TEST(Quantize, CanQuantizeTo) {
  for (auto t : kQuantizable) EXPECT_TRUE(can_quantize_to(t)) << type_traits(t).name;
  EXPECT_FALSE(can_quantize_to(TensorType::Q4_0));
  EXPECT_FALSE(can_quantize_to(TensorType::IQ4_XS));
  EXPECT_FALSE(can_quantize_to(TensorType::MXFP4));
}

TEST(Quantize, RoundTripWithinBound) {
  const auto data = datasets();
  for (auto t : kQuantizable) {
    double worst = 0;
    for (const auto& [name, x] : data) {
      const auto s = measure(t, x);
      worst = std::max(worst, s.max_rel);
      EXPECT_LE(s.max_rel, relative_error_bound(t)) << type_traits(t).name << " on " << name;
      std::printf("  %-6s %-14s max_rel %.5f  rms %.5f\n", type_traits(t).name.data(), name, s.max_rel, s.rms);
    }
    std::printf("%-6s worst max_rel %.5f (bound %.5f)\n", type_traits(t).name.data(), worst, relative_error_bound(t));
  }
}

TEST(Quantize, RmsOrdering) {
  const auto x = gaussian(256 * 256, 1.0f, 11);
  const double q8 = measure(TensorType::Q8_0, x).rms, q6 = measure(TensorType::Q6_K, x).rms;
  const double q5 = measure(TensorType::Q5_K, x).rms, q4 = measure(TensorType::Q4_K, x).rms;
  std::printf("rms on N(0,1): q8_0 %.5f q6_K %.5f q5_K %.5f q4_K %.5f\n", q8, q6, q5, q4);
  EXPECT_LT(q8, q6);
  EXPECT_LT(q6, q5);
  EXPECT_LT(q5, q4);
  EXPECT_LT(measure(TensorType::BF16, x).rms, q8);
  EXPECT_LT(measure(TensorType::F16, x).rms, measure(TensorType::BF16, x).rms);
}

// The scale search must beat plain min/max scales (range/15 etc., about 0.0743 / 0.0358 / 0.0183 rms
// on N(0,1)); the search gets about 0.0702 / 0.0347 / 0.0169.
TEST(Quantize, KQuantQuality) {
  const auto x = gaussian(256 * 256, 1.0f, 12);
  EXPECT_LT(measure(TensorType::Q4_K, x).rms, 0.0720);
  EXPECT_LT(measure(TensorType::Q5_K, x).rms, 0.0354);
  EXPECT_LT(measure(TensorType::Q6_K, x).rms, 0.0176);
}

TEST(Quantize, AllZeroRows) {
  const std::vector<float> zero(512, 0.0f);
  for (auto t : kQuantizable) {
    std::vector<uint8_t> q(row_bytes(t, 512), 0xAB);
    quantize_row(t, zero.data(), q.data(), 512);
    std::vector<float> y(512, 1.0f);
    dequantize_row(t, q.data(), y.data(), 512);
    for (float v : y) ASSERT_EQ(v, 0.0f) << type_traits(t).name;
  }
  block_q8_0 b;
  quantize_row(TensorType::Q8_0, zero.data(), &b, 32);
  EXPECT_EQ(b.d, 0);
}

TEST(Quantize, Deterministic) {
  const auto x = gaussian(1024, 1.0f, 13);
  for (auto t : kQuantizable) {
    std::vector<uint8_t> a(row_bytes(t, 1024)), b(a.size());
    quantize_row(t, x.data(), a.data(), 1024);
    quantize_row(t, x.data(), b.data(), 1024);
    EXPECT_EQ(a, b) << type_traits(t).name;
  }
}

// NaN encodes as 0, ±Inf as ±(largest finite |x| of the block); the other elements are unaffected.
TEST(Quantize, NonFiniteInput) {
  auto x = gaussian(256, 1.0f, 14);
  const std::vector<float> finite = x;
  x[3] = NAN, x[100] = INFINITY, x[200] = -INFINITY;
  for (auto t : {TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K}) {
    const auto y = roundtrip(t, x);
    const int be = int(type_traits(t).block_elems);
    for (int i = 0; i < 256; ++i) {
      ASSERT_TRUE(std::isfinite(y[i])) << type_traits(t).name << " " << i;
      float amax = 0;  // over the finite elements of i's block
      for (int j = i / be * be; j < i / be * be + be; ++j)
        if (j != 3 && j != 100 && j != 200) amax = std::max(amax, std::fabs(finite[j]));
      const float want = i == 3 ? 0.0f : i == 100 ? amax : i == 200 ? -amax : x[i];
      EXPECT_NEAR(y[i], want, relative_error_bound(t) * amax) << type_traits(t).name << " " << i;
    }
  }
  const auto h = roundtrip(TensorType::F16, x), bf = roundtrip(TensorType::BF16, x);
  EXPECT_TRUE(std::isnan(h[3]) && std::isnan(bf[3]));
  EXPECT_EQ(h[100], INFINITY);
  EXPECT_EQ(bf[200], -INFINITY);
}

TEST(Quantize, HugeValuesSaturateScale) {
  std::vector<float> x(32, 1.0f);
  x[0] = 1e9f;  // d = 1e9/127 overflows fp16: saturates at 65504, never Inf/NaN
  const auto y = roundtrip(TensorType::Q8_0, x);
  EXPECT_EQ(y[0], 65504.0f * 127);
  for (float v : y) EXPECT_TRUE(std::isfinite(v));
}

TEST(Quantize, Q8_KBsumsAndScale) {
  auto x = gaussian(512, 2.0f, 15);
  x[7] = 10.0f;  // clear maximum
  x[300] = -8.0f;
  std::vector<block_q8_K> b(2);
  quantize_row(TensorType::Q8_K, x.data(), b.data(), 512);
  EXPECT_EQ(b[0].qs[7], 127);
  EXPECT_FLOAT_EQ(b[0].d, 10.0f / 127);
  for (const auto& blk : b)
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += blk.qs[16 * g + j];
      EXPECT_EQ(blk.bsums[g], sum) << g;
    }
  std::vector<float> ones(256, -3.0f);  // extreme sums: 16 * -127
  quantize_row(TensorType::Q8_K, ones.data(), b.data(), 256);
  for (int g = 0; g < 16; ++g) EXPECT_EQ(b[0].bsums[g], -16 * 127);
}

// Quantizer output must decode the same through the byte-level fields a foreign reader would use.
TEST(Quantize, Q4_KFieldsAreConsistent) {
  const auto x = gaussian(256, 1.0f, 16);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  block_q4_K b;
  quantize_row(TensorType::Q4_K, x.data(), &b, 256);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  EXPECT_GT(d, 0);
  EXPECT_GT(dmin, 0);
  uint8_t maxsc = 0;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, b.scales, &sc, &m);
    maxsc = std::max(maxsc, sc);
    for (int l = 0; l < 32; ++l) {
      const int q = (b.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
      EXPECT_NEAR(d * sc * q - dmin * m, x[32 * j + l], relative_error_bound(TensorType::Q4_K) * amax);
    }
  }
  EXPECT_GE(maxsc, 62);  // the largest sub-block scale uses the full 6-bit range
}

// ---- fp16 / bf16 -------------------------------------------------------------------------------

TEST(Fp16, DecodeEdgeCases) {
  EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), 1023 * 0x1p-24f);
  EXPECT_EQ(fp16_to_fp32(0x0400), 0x1p-14f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x7C00), INFINITY);
  EXPECT_EQ(fp16_to_fp32(0xFC00), -INFINITY);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));
  const float nz = fp16_to_fp32(0x8000);
  EXPECT_TRUE(nz == 0 && std::signbit(nz));
  EXPECT_EQ(fp16_to_fp32(0x8001), -0x1p-24f);
}

TEST(Fp16, EncodeRounding) {
  EXPECT_EQ(bits_of_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(bits_of_fp16(65519.0f), 0x7BFF);
  EXPECT_EQ(bits_of_fp16(65520.0f), 0x7C00);  // tie between 65504 (odd) and 65536: to even = Inf
  EXPECT_EQ(bits_of_fp16(1e6f), 0x7C00);
  EXPECT_EQ(bits_of_fp16(-INFINITY), 0xFC00);
  EXPECT_EQ(bits_of_fp16(1.0f + 0x1p-11f), 0x3C00);      // tie: stays on even 0x3C00
  EXPECT_EQ(bits_of_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);  // tie: up to even 0x3C02
  EXPECT_EQ(bits_of_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
  EXPECT_EQ(bits_of_fp16(0x1p-24f), 0x0001);
  EXPECT_EQ(bits_of_fp16(0x1p-25f), 0x0000);                     // tie with 0: to even
  EXPECT_EQ(bits_of_fp16(0x1p-25f * 1.0000001f), 0x0001);
  EXPECT_EQ(bits_of_fp16(3 * 0x1p-25f), 0x0002);                 // 1.5 subnormal ulps: to even
  EXPECT_EQ(bits_of_fp16(0x1p-14f - 0x1p-25f), 0x0400);          // subnormal rounding up into normal
  EXPECT_EQ(bits_of_fp16(1e-10f), 0x0000);
  EXPECT_EQ(bits_of_fp16(-1e-10f), 0x8000);
  EXPECT_EQ(bits_of_fp16(-0.0f), 0x8000);
  const uint16_t n = bits_of_fp16(NAN);
  EXPECT_TRUE((n & 0x7C00) == 0x7C00 && (n & 0x3FF) != 0);
  float snan;
  const uint32_t snan_bits = 0x7F800001;  // payload only in bits fp16 drops: must stay NaN
  std::memcpy(&snan, &snan_bits, 4);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(bits_of_fp16(snan))));
}

TEST(Fp16, AllHalvesRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
}

#if defined(__FLT16_MAX__)
// Cross-check the software encoder against the compiler's own IEEE conversion on random bit patterns.
TEST(Fp16, MatchesCompilerFloat16) {
  std::mt19937 rng(17);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = rng();
    if (i % 2) bits = (bits & 0x83FFFFFF) | (uint32_t(0x30 + rng() % 32) << 23);  // focus on fp16's range
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(fp32_to_fp16(f), want) << std::hexfloat << f;
  }
}
#endif

TEST(Bf16, Conversions) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f), 0x3F80);        // tie: to even
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);    // tie: to even (up)
  EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(INFINITY), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-INFINITY), 0xFF80);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds past the largest bf16
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  float snan;
  const uint32_t snan_bits = 0x7F800001;  // NaN whose payload is all in the dropped half: must stay NaN
  std::memcpy(&snan, &snan_bits, 4);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(snan))));
  EXPECT_EQ(bf16_to_fp32(0x0001), std::ldexp(1.0f, -133));  // bf16 subnormal
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_fp32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), h) << std::hex << h;
  }
}
