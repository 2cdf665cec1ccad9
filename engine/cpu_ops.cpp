#include "engine/cpu_ops.h"

#include "engine/cpu_dot.h"

#include <cmath>
#include <vector>

namespace flashfix::cpu {

MatView mat(Weight w) {
  return {w->type, w->ne[0], w->dim(1), w->data, w->row_bytes()};
}

MatView expert(Weight w, int64_t e) {
  size_t rb = w->row_bytes();
  return {w->type, w->ne[0], w->dim(1), w->data + size_t(e) * size_t(w->dim(1)) * rb, rb};
}

void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y) {
  // Activations are converted once per call; each weight row is then read once for all tokens.
  const TensorType at = activation_type(w.type);
  const size_t arow = row_bytes(at, w.n_in);
  thread_local std::vector<uint8_t> act;
  const uint8_t* a = reinterpret_cast<const uint8_t*>(x);
  if (at != TensorType::F32) {
    act.resize(arow * size_t(n_tok));
    for (int64_t t = 0; t < n_tok; ++t) quantize_activation(at, x + t * w.n_in, act.data() + size_t(t) * arow, w.n_in);
    a = act.data();
  }
  pool.parallel_for(w.n_out, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* wr = w.data + size_t(r) * w.row_bytes;
      for (int64_t t = 0; t < n_tok; ++t) y[t * w.n_out + r] = vec_dot(w.type, wr, a + size_t(t) * arow, w.n_in);
    }
  });
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // Squares in float, summed in double, mean and scale in float: the reference's exact formula, so
  // normed activations agree to the last bit where they can (they feed 8-bit quantization, where a
  // last-bit difference can move a value across a rounding boundary).
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i] * x[i]);
  const float mean = float(ss / double(n));
  const float scale = 1.f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// YaRN correction range: the rotary dims whose wavelength lies between beta_fast and beta_slow
// rotations over the original context are blended between interpolation and extrapolation.
static void yarn_corr_dims(const RopeConfig& p, float dims[2]) {
  auto corr = [&](float n_rot) {
    return p.n_rot * std::log(float(p.n_ctx_orig) / (n_rot * 2.f * float(M_PI))) / (2.f * std::log(p.freq_base));
  };
  dims[0] = std::max(0.f, std::floor(corr(p.beta_fast)));
  dims[1] = std::min(float(p.n_rot - 1), std::ceil(corr(p.beta_slow)));
}

void rope_neox(float* head, int64_t pos, const RopeConfig& p, const float* freq_factors) {
  const int half = p.n_rot / 2;
  float corr[2] = {0, 0};
  if (p.ext_factor != 0.f) yarn_corr_dims(p, corr);
  const float theta_scale = std::pow(p.freq_base, -2.f / float(p.n_rot));
  float theta_base = float(pos);
  for (int i = 0; i < half; ++i, theta_base *= theta_scale) {
    float theta_extrap = freq_factors ? theta_base / freq_factors[i] : theta_base;
    float theta = p.freq_scale * theta_extrap;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.f) {
      float y = (float(i) - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
      float mix = (1.f - std::min(1.f, std::max(0.f, y))) * p.ext_factor;
      theta = theta * (1.f - mix) + theta_extrap * mix;
      mscale *= 1.f + 0.1f * std::log(1.f / p.freq_scale);
    }
    float c = std::cos(theta) * mscale, s = std::sin(theta) * mscale;
    float x0 = head[i], x1 = head[i + half];
    head[i] = x0 * c - x1 * s;
    head[i + half] = x0 * s + x1 * c;
  }
}

void embed_row(Weight table, int32_t token, float* out) {
  const uint8_t* src = table->data + size_t(token) * table->row_bytes();
  dequantize_row(table->type, src, out, table->ne[0]);
}

}  // namespace flashfix::cpu
