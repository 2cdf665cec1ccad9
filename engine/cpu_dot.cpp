#include "engine/cpu_dot.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/quant_blocks.h"

namespace flashfix::cpu {

TensorType activation_type(TensorType w) {
  switch (w) {
    case TensorType::F32: return TensorType::F32;
    case TensorType::F16: return TensorType::F16;
    case TensorType::BF16: return TensorType::BF16;
    case TensorType::Q4_0:
    case TensorType::Q8_0:
    case TensorType::MXFP4: return TensorType::Q8_0;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::IQ4_XS: return TensorType::Q8_K;
    default: throw std::invalid_argument("no dot product for weights of type " + std::string(type_traits(w).name));
  }
}

namespace {

// Round half to even, as the reference's float trick does (Q8_K).
inline int nearest_even(float x) { return int(std::nearbyint(x)); }

void quantize_q8_0(const float* x, block_q8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    // 127/amax rather than 1/d, and ties to even: what the reference's x86 kernels compute, so the
    // same activation rounds to the same integer (a one-step difference can flip a near-tie route).
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    y[b].d = fp32_to_fp16(amax / 127.f);
    for (int j = 0; j < QK8_0; ++j) y[b].qs[j] = int8_t(nearest_even(x[j] * id));
  }
}

// The value of largest magnitude maps to -127 (its sign folded into d), as the reference does.
void quantize_q8_K(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    if (amax == 0.f) {
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[b].qs[j] = int8_t(std::min(127, nearest_even(iscale * x[j])));
    for (int g = 0; g < QK_K / 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += y[b].qs[g * 16 + j];
      y[b].bsums[g] = int16_t(s);
    }
    y[b].d = 1.f / iscale;
  }
}

// Float rows in the SIMD kernels' order (cpu_kernels_x86.h FloatRows), so every path computes the
// same bits: two 8-lane accumulators over 16-element steps, added lane-wise, reduced like hsum, then
// the tail one fma at a time. Load widens an element.
template <typename T, float (*Load)(T)>
float dot_float(const T* a, const T* b, int64_t n) {
  float acc0[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc1[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 8; ++k) {
      acc0[k] = std::fma(Load(a[i + k]), Load(b[i + k]), acc0[k]);
      acc1[k] = std::fma(Load(a[i + 8 + k]), Load(b[i + 8 + k]), acc1[k]);
    }
  float h[4];
  for (int k = 0; k < 4; ++k) h[k] = (acc0[k] + acc1[k]) + (acc0[k + 4] + acc1[k + 4]);
  float s = (h[0] + h[2]) + (h[1] + h[3]);
  for (; i < n; ++i) s = std::fma(Load(a[i]), Load(b[i]), s);
  return s;
}

inline float load_f32(float x) { return x; }

// The reference engine's x86 float structure for quantized dots, which the SIMD kernels share (see
// cpu_kernels_x86.h): int32 lane i holds the exact integer dot over bytes 4i..4i+3 of every 32-byte
// chunk of a block, each block adds d * lane into float lane i with one rounding (fma), and the row
// ends with one horizontal sum. Emulating it lane by lane makes this path bit-identical to the SIMD
// ones; any other order rounds differently, and an activation near an 8-bit rounding boundary or a
// near-tied expert route then amplifies that last bit.
struct FloatLanes {
  float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // lane[i] += p[4i] + .. + p[4i + 3] for one 32-byte chunk's products: filling p in a plain loop and
  // folding it here lets the compiler vectorize both, which lane[j / 4] += ... would not.
  static void fold(const int32_t* p, int32_t* lane) {
    for (int i = 0; i < 8; ++i) lane[i] += (p[4 * i] + p[4 * i + 1]) + (p[4 * i + 2] + p[4 * i + 3]);
  }
  void add(float d, const int32_t* lane) {
    for (int i = 0; i < 8; ++i) v[i] = std::fma(d, float(lane[i]), v[i]);
  }
  // The SIMD hsum's order: halves added lane-wise, then (0 + 2) + (1 + 3).
  float sum() const {
    float h[4];
    for (int i = 0; i < 4; ++i) h[i] = v[i] + v[i + 4];
    return (h[0] + h[2]) + (h[1] + h[3]);
  }
};

// 32-element blocks (Q8_0, Q4_0, MXFP4): weight(b, j) gives element j of weight block b as an integer.
template <typename Block, typename Weight, typename Scale>
float dot_q32(const Block* w, const block_q8_0* a, int64_t nb, Weight weight, Scale scale) {
  FloatLanes acc;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, p[32];
    for (int j = 0; j < 32; ++j) p[j] = weight(w[b], j) * a[b].qs[j];
    FloatLanes::fold(p, lane);
    acc.add(scale(w[b]) * fp16_to_fp32(a[b].d), lane);
  }
  return acc.sum();
}

float dot_q8_0(const block_q8_0* w, const block_q8_0* a, int64_t nb) {
  return dot_q32(w, a, nb, [](const block_q8_0& x, int j) { return int(x.qs[j]); },
                 [](const block_q8_0& x) { return fp16_to_fp32(x.d); });
}

// Q4_0 and MXFP4 store element j (< 16) in the low nibble of qs[j] and element j + 16 in its high one.
inline int nibble(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 15 : qs[j - 16] >> 4; }

float dot_q4_0(const block_q4_0* w, const block_q8_0* a, int64_t nb) {
  return dot_q32(w, a, nb, [](const block_q4_0& x, int j) { return nibble(x.qs, j) - 8; },
                 [](const block_q4_0& x) { return fp16_to_fp32(x.d); });
}

float dot_mxfp4(const block_mxfp4* w, const block_q8_0* a, int64_t nb) {
  return dot_q32(w, a, nb, [](const block_mxfp4& x, int j) { return int(kMXFP4[nibble(x.qs, j)]); },
                 [](const block_mxfp4& x) { return e8m0_half(x.e); });
}

// Q4_K/Q5_K: d*sc*sum(q*a) and the mins term dmin*m*sum(a) (from the activation block's 16-element
// sums), as the reference computes them on x86. Q4_K (its repacked q4_K_8x8 kernels, which every Q4_K
// matrix with rows % 8 == 0 goes through): per output, one fma chain over whole-block integers for the
// scaled sums and one for the mins, subtracted at the end. Q5_K (its AVX2 vec_dot): the scaled sums in
// the 8 lanes, the mins as one chain of whole-block integers with -dmin. kPairs (Q4_K only): its 4-token
// GEMM's chains, one fma per pair of sub-blocks (dot_q4_K_pairs).
template <bool kFifthBit, bool kPairs, typename Block>
float dot_q45_K(const Block* w, const block_q8_K* a, int64_t nb) {
  FloatLanes acc;
  float acc_sum = 0, acc_min = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const int16_t* bs = a[b].bsums;
    int32_t lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, mins = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * c, w[b].scales, &sc0, &m0);
      get_scale_min_k4(2 * c + 1, w[b].scales, &sc1, &m1);
      const uint8_t* q = w[b].qs + 32 * c;
      const int8_t* a0 = a[b].qs + 64 * c;
      int32_t p[32];
      for (int l = 0; l < 32; ++l) {
        int lo = q[l] & 15, hi = q[l] >> 4;
        if constexpr (kFifthBit) {
          lo += (w[b].qh[l] >> (2 * c) & 1) << 4;
          hi += (w[b].qh[l] >> (2 * c + 1) & 1) << 4;
        }
        p[l] = sc0 * lo * a0[l] + sc1 * hi * a0[32 + l];
      }
      const int32_t pair_mins = m0 * (bs[4 * c] + bs[4 * c + 1]) + m1 * (bs[4 * c + 2] + bs[4 * c + 3]);
      if constexpr (kPairs) {  // DotOrder::SubBlockPairs: one fma per pair of sub-blocks in each chain
        int32_t pair = 0;
        for (int l = 0; l < 32; ++l) pair += p[l];
        acc_sum = std::fma(a[b].d * fp16_to_fp32(w[b].d), float(pair), acc_sum);
        acc_min = std::fma(a[b].d * fp16_to_fp32(w[b].dmin), float(pair_mins), acc_min);
        continue;
      }
      FloatLanes::fold(p, lane);
      mins += pair_mins;
    }
    if constexpr (kPairs) continue;
    if constexpr (kFifthBit) {
      acc.add(a[b].d * fp16_to_fp32(w[b].d), lane);
      acc_min = std::fma(-a[b].d * fp16_to_fp32(w[b].dmin), float(mins), acc_min);
    } else {
      int32_t sum = 0;
      for (int i = 0; i < 8; ++i) sum += lane[i];
      acc_sum = std::fma(a[b].d * fp16_to_fp32(w[b].d), float(sum), acc_sum);
      acc_min = std::fma(a[b].d * fp16_to_fp32(w[b].dmin), float(mins), acc_min);
    }
  }
  return kFifthBit ? acc.sum() + acc_min : acc_sum - acc_min;
}

// Q6_K: the reference's x86 vec_dot (ggml_vec_dot_q6_K_q8_K, AVX2, since it folds the - 32 into the
// activation sums): lane i = the exact sum of sc * q * a over bytes 4i..4i+3 of every 32-byte chunk,
// q unsigned (0..63), minus 32 * (sc_2i * bsums_2i + sc_2i+1 * bsums_2i+1), then FloatLanes. The
// golden models' output head (4105 rows: never repacked) shows it bit for bit in every row.
float dot_q6_K(const block_q6_K* w, const block_q8_K* a, int64_t nb) {
  FloatLanes acc;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w[b].ql + 64 * half;
      const uint8_t* qh = w[b].qh + 32 * half;
      const int8_t* sc = w[b].scales + 8 * half;
      const int8_t* q8 = a[b].qs + 128 * half;
      for (int k = 0; k < 4; ++k) {  // the 32-byte chunk of elements 128 half + 32k ..: sub-blocks 2k, 2k + 1
        int32_t p[32];
        for (int l = 0; l < 32; ++l) {
          const int low = k < 2 ? ql[l + 32 * (k & 1)] & 15 : ql[l + 32 * (k & 1)] >> 4;
          p[l] = sc[2 * k + l / 16] * ((low | ((qh[l] >> (2 * k) & 3) << 4)) * q8[32 * k + l]);
        }
        FloatLanes::fold(p, lane);
      }
    }
    for (int i = 0; i < 8; ++i)
      lane[i] -= 32 * (w[b].scales[2 * i] * a[b].bsums[2 * i] + w[b].scales[2 * i + 1] * a[b].bsums[2 * i + 1]);
    acc.add(a[b].d * fp16_to_fp32(w[b].d), lane);
  }
  return acc.sum();
}

float dot_iq4_xs(const block_iq4_xs* w, const block_q8_K* a, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int sum = 0;
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = w[b].qs + 16 * ib;
      const int8_t* q8 = a[b].qs + 32 * ib;
      int part = 0;
      for (int j = 0; j < 16; ++j) part += kIQ4NL[q[j] & 15] * q8[j] + kIQ4NL[q[j] >> 4] * q8[j + 16];
      sum += iq4_xs_scale(w[b], ib) * part;
    }
    s = std::fma(a[b].d * fp16_to_fp32(w[b].d), float(sum), s);
  }
  return s;
}

}  // namespace

void quantize_activation(TensorType t, const float* x, void* dst, int64_t n) {
  switch (t) {
    case TensorType::F32: std::memcpy(dst, x, size_t(n) * 4); return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = fp32_to_fp16(x[i]);
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = fp32_to_bf16(x[i]);
      return;
    case TensorType::Q8_0: return quantize_q8_0(x, static_cast<block_q8_0*>(dst), n);
    case TensorType::Q8_K: return quantize_q8_K(x, static_cast<block_q8_K*>(dst), n);
    default: throw std::invalid_argument("not an activation type: " + std::string(type_traits(t).name));
  }
}

float dot_f32_vec(const float* w, const float* a, int64_t n) {
  float acc[4][16] = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 16; ++l) acc[j][l] = std::fma(w[i + 16 * j + l], a[i + 16 * j + l], acc[j][l]);
  float lane[16], h8[8], h4[4];
  for (int l = 0; l < 16; ++l) lane[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  for (int l = 0; l < 8; ++l) h8[l] = lane[l] + lane[l + 8];
  for (int l = 0; l < 4; ++l) h4[l] = h8[l] + h8[l + 4];
  float s = (h4[0] + h4[2]) + (h4[1] + h4[3]);
  for (; i < n; ++i) s = std::fma(w[i], a[i], s);
  return s;
}

float dot_q4_K_pairs(const void* w, const void* a, int64_t n) {
  return dot_q45_K<false, true>(static_cast<const block_q4_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
}

float vec_dot(TensorType t, const void* w, const void* a, int64_t n) {
  switch (t) {
    case TensorType::F32: return dot_float<float, load_f32>(static_cast<const float*>(w), static_cast<const float*>(a), n);
    case TensorType::F16: return dot_float<uint16_t, fp16_to_fp32>(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
    case TensorType::BF16: return dot_float<uint16_t, bf16_to_fp32>(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
    case TensorType::Q8_0: return dot_q8_0(static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a), n / QK8_0);
    case TensorType::Q4_0: return dot_q4_0(static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a), n / QK4_0);
    case TensorType::MXFP4: return dot_mxfp4(static_cast<const block_mxfp4*>(w), static_cast<const block_q8_0*>(a), n / QK_MXFP4);
    case TensorType::Q4_K: return dot_q45_K<false, false>(static_cast<const block_q4_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    case TensorType::Q5_K: return dot_q45_K<true, false>(static_cast<const block_q5_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    case TensorType::Q6_K: return dot_q6_K(static_cast<const block_q6_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    case TensorType::IQ4_XS: return dot_iq4_xs(static_cast<const block_iq4_xs*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    default: throw std::invalid_argument("no dot product for weights of type " + std::string(type_traits(t).name));
  }
}

}  // namespace flashfix::cpu
