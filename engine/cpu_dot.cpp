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

// Eight independent accumulators let the compiler keep the loop in vector registers without
// -ffast-math (one running sum is a serial dependency it may not reorder). Load widens an element.
template <typename T, float (*Load)(T)>
float dot_plain(const T* a, const T* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += Load(a[i + k]) * Load(b[i + k]);
  float s = 0;
  for (; i < n; ++i) s += Load(a[i]) * Load(b[i]);
  return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

inline float load_f32(float x) { return x; }

float dot_q8_0(const block_q8_0* w, const block_q8_0* a, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; ++j) sumi += w[b].qs[j] * a[b].qs[j];
    s += float(sumi) * fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
  }
  return s;
}

float dot_q4_0(const block_q4_0* w, const block_q8_0* a, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int j = 0; j < QK4_0 / 2; ++j)
      sumi += ((w[b].qs[j] & 15) - 8) * a[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
    s += float(sumi) * fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d);
  }
  return s;
}

float dot_mxfp4(const block_mxfp4* w, const block_q8_0* a, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int j = 0; j < QK_MXFP4 / 2; ++j)
      sumi += kMXFP4[w[b].qs[j] & 15] * a[b].qs[j] + kMXFP4[w[b].qs[j] >> 4] * a[b].qs[j + 16];
    s += float(sumi) * e8m0_half(w[b].e) * fp16_to_fp32(a[b].d);
  }
  return s;
}

// Q4_K/Q5_K: sum over sub-blocks of d*sc*sum(q*a) - dmin*m*sum(a); the second term uses the
// activation block's precomputed 16-element sums, so the mins cost nothing per weight.
template <bool kFifthBit, typename Block>
float dot_q45_K(const Block* w, const block_q8_K* a, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const float d = a[b].d * fp16_to_fp32(w[b].d), dmin = a[b].d * fp16_to_fp32(w[b].dmin);
    int sum_q = 0, sum_m = 0;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * c, w[b].scales, &sc0, &m0);
      get_scale_min_k4(2 * c + 1, w[b].scales, &sc1, &m1);
      const uint8_t* q = w[b].qs + 32 * c;
      const int8_t* a0 = a[b].qs + 64 * c;
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; ++l) {
        int lo = q[l] & 15, hi = q[l] >> 4;
        if constexpr (kFifthBit) {
          lo += (w[b].qh[l] >> (2 * c) & 1) << 4;
          hi += (w[b].qh[l] >> (2 * c + 1) & 1) << 4;
        }
        s0 += lo * a0[l];
        s1 += hi * a0[32 + l];
      }
      sum_q += sc0 * s0 + sc1 * s1;
      sum_m += m0 * (a[b].bsums[4 * c] + a[b].bsums[4 * c + 1]) + m1 * (a[b].bsums[4 * c + 2] + a[b].bsums[4 * c + 3]);
    }
    s += d * float(sum_q) - dmin * float(sum_m);
  }
  return s;
}

float dot_q6_K(const block_q6_K* w, const block_q8_K* a, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int sum = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w[b].ql + 64 * half;
      const uint8_t* qh = w[b].qh + 32 * half;
      const int8_t* sc = w[b].scales + 8 * half;
      const int8_t* q8 = a[b].qs + 128 * half;
      int part[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // per 16-element sub-block
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        part[is + 0] += (((ql[l] & 15) | ((qh[l] >> 0 & 3) << 4)) - 32) * q8[l];
        part[is + 2] += (((ql[l + 32] & 15) | ((qh[l] >> 2 & 3) << 4)) - 32) * q8[l + 32];
        part[is + 4] += (((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32) * q8[l + 64];
        part[is + 6] += (((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32) * q8[l + 96];
      }
      for (int k = 0; k < 8; ++k) sum += sc[k] * part[k];
    }
    s += a[b].d * fp16_to_fp32(w[b].d) * float(sum);
  }
  return s;
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
    s += a[b].d * fp16_to_fp32(w[b].d) * float(sum);
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

float vec_dot(TensorType t, const void* w, const void* a, int64_t n) {
  switch (t) {
    case TensorType::F32: return dot_plain<float, load_f32>(static_cast<const float*>(w), static_cast<const float*>(a), n);
    case TensorType::F16: return dot_plain<uint16_t, fp16_to_fp32>(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
    case TensorType::BF16: return dot_plain<uint16_t, bf16_to_fp32>(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
    case TensorType::Q8_0: return dot_q8_0(static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a), n / QK8_0);
    case TensorType::Q4_0: return dot_q4_0(static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a), n / QK4_0);
    case TensorType::MXFP4: return dot_mxfp4(static_cast<const block_mxfp4*>(w), static_cast<const block_q8_0*>(a), n / QK_MXFP4);
    case TensorType::Q4_K: return dot_q45_K<false>(static_cast<const block_q4_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    case TensorType::Q5_K: return dot_q45_K<true>(static_cast<const block_q5_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    case TensorType::Q6_K: return dot_q6_K(static_cast<const block_q6_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    case TensorType::IQ4_XS: return dot_iq4_xs(static_cast<const block_iq4_xs*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
    default: throw std::invalid_argument("no dot product for weights of type " + std::string(type_traits(t).name));
  }
}

}  // namespace flashfix::cpu
