// The scalar kernel table: cpu_dot.cpp's reference kernels, plus plain loops for attention and the
// bandwidth probe. Compiled with the project's baseline flags, so it runs on every machine.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu_dot.h"
#include "engine/cpu_expf.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_silu.h"

namespace flashfix::cpu {

float expf_reference(float x) {
  using namespace expf_consts;
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if (((bits >> 20) & 0x7ff) >= kSpecialTop) {  // glibc's branches, in its order
    if (bits == 0xff800000u) return 0.f;        // -inf
    if (((bits >> 20) & 0x7ff) >= 0x7f8) return x + x;  // +inf, NaN
    if (x > 0x1.62e42ep6f) return INFINITY;              // overflows
    if (x < -0x1.9fe368p6f) return 0.f;                  // underflows to 0
    if (x < -0x1.9d1d9ep6f) return 0x1.4p-75f * 0x1.4p-75f;  // may underflow: the smallest subnormal
  }
  const double xd = x;
  const double kd_shifted = std::fma(kInvLn2N, xd, kShift);
  uint64_t ki;
  std::memcpy(&ki, &kd_shifted, 8);
  const double kd = kd_shifted - kShift;
  const double r = std::fma(kInvLn2N, xd, -kd);
  const uint64_t t = kTable[ki % 32] + (ki << 47);
  double s;
  std::memcpy(&s, &t, 8);
  const double z = std::fma(r, kC0, kC1), r2 = r * r;
  double y = std::fma(r, kC2, 1.0);
  y = std::fma(z, r2, y);
  return float(y * s);
}

float expf_vector(float x) {
  using namespace silu_consts;
  const float k = std::fma(x, kLog2e, kShift) - kShift;
  const float b = std::fma(-k, kLn2Lo, std::fma(-k, kLn2Hi, x));
  const float u = b * b;
  const float poly = std::fma(std::fma(std::fma(kP5, b, kP4), u, std::fma(kP3, b, kP2)), u, std::fma(kP1, b, 1.f));
  // ldexp rounds once, like vscalefps, also into the subnormals; NaN takes the inf branch.
  return std::fabs(k) <= kLimit ? std::ldexp(poly, int(k)) : k <= 0.f ? 0.f : INFINITY;
}

float silu(float x) { return x / (1.f + expf_vector(0.f - x)); }

namespace {

template <TensorType W>
void dot_tile(const void* w, const void* a, size_t a_stride, int nt, int64_t n, float* y, size_t y_stride) {
  for (int t = 0; t < nt; ++t) y[size_t(t) * y_stride] = vec_dot(W, w, static_cast<const uint8_t*>(a) + size_t(t) * a_stride, n);
}

DotTileFn dot_tile_for_type(TensorType t) {
  switch (t) {
    case TensorType::F32: return dot_tile<TensorType::F32>;
    case TensorType::F16: return dot_tile<TensorType::F16>;
    case TensorType::BF16: return dot_tile<TensorType::BF16>;
    case TensorType::Q8_0: return dot_tile<TensorType::Q8_0>;
    case TensorType::Q4_0: return dot_tile<TensorType::Q4_0>;
    case TensorType::MXFP4: return dot_tile<TensorType::MXFP4>;
    case TensorType::Q4_K: return dot_tile<TensorType::Q4_K>;
    case TensorType::Q5_K: return dot_tile<TensorType::Q5_K>;
    case TensorType::Q6_K: return dot_tile<TensorType::Q6_K>;
    case TensorType::IQ4_XS: return dot_tile<TensorType::IQ4_XS>;
    default: return nullptr;
  }
}

void quantize_q8_0(const float* x, void* dst, int64_t n) { quantize_activation(TensorType::Q8_0, x, dst, n); }
void quantize_q8_K(const float* x, void* dst, int64_t n) { quantize_activation(TensorType::Q8_K, x, dst, n); }
float dot_f32(const float* a, const float* b, int64_t n) { return vec_dot(TensorType::F32, a, b, n); }

void scale_f32(float alpha, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= alpha;
}

void silu_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu(x[i]);
}

void rope_f32(float* head, const float* cs, int n_rot) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1], x0 = head[i], x1 = head[i + half];
    head[i] = std::fma(x0, c, -(x1 * s));
    head[i + half] = std::fma(x0, s, x1 * c);
  }
}

void exp_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = expf_reference(x[i]);
}

void exp_vector_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = expf_vector(x[i]);
}

void attend_scores(const float* q, size_t q_stride, int nh, const float* kt, int u0, int n, int64_t d, float* s, size_t s_stride) {
  thread_local std::vector<float> key;  // one key gathered from its lane
  if (key.size() < size_t(d)) key.resize(size_t(d));
  for (int u = 0; u < n; ++u) {
    for (int64_t i = 0; i < d; ++i) key[size_t(i)] = kt[size_t(i) * kAttendLanes + size_t(u0 + u)];
    for (int h = 0; h < nh; ++h) s[size_t(h) * s_stride + size_t(u)] = dot_f32_vec(q + size_t(h) * q_stride, key.data(), d);
  }
}

void attend_values(float* y, size_t y_stride, int nh, int64_t d, int64_t first, int64_t n, const float* const* v, const float* p,
                   size_t p_stride) {
  for (int h = 0; h < nh; ++h)
    for (int64_t i = 0; i < d; ++i) {
      float lane[kAttendLanes] = {};
      for (int64_t u = first; u < n; ++u)
        lane[u % kAttendLanes] = std::fma(p[size_t(h) * p_stride + size_t(u)], v[u][i], lane[u % kAttendLanes]);
      float h8[8], h4[4];
      for (int l = 0; l < 8; ++l) h8[l] = lane[l] + lane[l + 8];
      for (int l = 0; l < 4; ++l) h4[l] = h8[l] + h8[l + 4];
      y[size_t(h) * y_stride + size_t(i)] = (h4[0] + h4[2]) + (h4[1] + h4[3]);
    }
}

void attend_exp(float* x, int64_t n, float scale) {
  float m = -INFINITY;
  for (int64_t j = 0; j < n; ++j) m = std::max(m, x[j] *= scale);
  for (int64_t j = 0; j < n; ++j) x[j] = expf_vector(x[j] - m);
}

void dot_tile_q4_K_pairs(const void* w, const void* a, size_t a_stride, int nt, int64_t n, float* y, size_t y_stride) {
  for (int t = 0; t < nt; ++t) y[size_t(t) * y_stride] = dot_q4_K_pairs(w, static_cast<const uint8_t*>(a) + size_t(t) * a_stride, n);
}

void dot_tile_f32_vec(const void* w, const void* a, size_t a_stride, int nt, int64_t n, float* y, size_t y_stride) {
  for (int t = 0; t < nt; ++t)
    y[size_t(t) * y_stride] = dot_f32_vec(static_cast<const float*>(w), reinterpret_cast<const float*>(static_cast<const uint8_t*>(a) + size_t(t) * a_stride), n);
}

uint64_t stream_read(const void* data, size_t bytes) {
  // Eight independent lanes so the loop is bound by loads, not by one xor chain.
  const uint64_t* p = static_cast<const uint64_t*>(data);
  uint64_t acc[8] = {};
  size_t n = bytes / 64;
  for (size_t i = 0; i < n; ++i, p += 8)
    for (int k = 0; k < 8; ++k) acc[k] ^= p[k];
  uint64_t s = 0;
  for (uint64_t v : acc) s ^= v;
  return s;
}

const GemmKernel* no_gemm(TensorType) { return nullptr; }  // the oracle computes every output by vec_dot
GemvFn no_gemv(TensorType) { return nullptr; }

}  // namespace

const CpuKernels& scalar_kernels() {
  static const CpuKernels k{CpuPath::Scalar, "scalar",    quantize_q8_0,      quantize_q8_K,      dot_tile_for_type,
                            dot_f32,         scale_f32,   exp_f32,            silu_f32,           rope_f32,
                            exp_vector_f32,  attend_scores, attend_values,    attend_exp,  stream_read,        no_gemm,
                            no_gemv,         dot_tile_q4_K_pairs, dot_tile_f32_vec, nullptr,       nullptr};
  return k;
}

}  // namespace flashfix::cpu
