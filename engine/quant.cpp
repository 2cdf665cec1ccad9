// Scalar reference dequantizers and quantizers for the block formats in quant_blocks.h.
//
// Dequantization follows llama.cpp's reference formulas exactly (see docs/model-families.md §7).
// Quantizers produce llama.cpp-readable blocks. They are round-to-nearest with a least-squares search
// for the scales; everything is plain float arithmetic in a fixed order, so output is deterministic.
//
// Non-finite input to the block quantizers: each block's scale is chosen from its finite elements only;
// NaN encodes as 0 and ±Inf as the block's largest finite magnitude with that sign, so one bad value
// cannot wipe out its neighbours. F16/BF16 keep NaN/Inf as such (and F16 rounds |x| > 65504 to Inf).
// Fp16 scales that would overflow saturate to 65504 (the block's large elements then clip).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/quant_blocks.h"
#include "engine/tensor_types.h"

namespace flashfix {
namespace {

[[noreturn]] void fail(const char* what, TensorType type) {
  std::fprintf(stderr, "flashfix: %s: type %u not supported\n", what, unsigned(type));
  std::abort();
}

// Nearest integer in [lo, hi], ties to even. Clamps before converting (no UB on huge values); NaN -> 0.
inline int round_clamp(float x, int lo, int hi) {
  if (std::isnan(x)) x = 0;
  return int(std::nearbyint(std::clamp(x, float(lo), float(hi))));
}

// fp16 for a scale: finite input never becomes Inf.
inline uint16_t fp16_scale(float f) {
  uint16_t h = fp32_to_fp16(f);
  return (h & 0x7fff) == 0x7c00 ? uint16_t((h & 0x8000) | 0x7bff) : h;
}

// Copies x into v with NaN -> 0 and ±Inf -> ±(max finite |x|); returns that max.
float sanitize(const float* x, float* v, int n) {
  float amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::isfinite(x[i])) amax = std::max(amax, std::fabs(x[i]));
  for (int i = 0; i < n; ++i) {
    float a = x[i];
    v[i] = std::isfinite(a) ? a : std::isnan(a) ? 0.0f : std::copysign(amax, a);
  }
  return amax;
}

// ---- dequantization ----------------------------------------------------------------------------

void dequant_q4_0(const block_q4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = d * float((b[i].qs[j] & 15) - 8);
      y[j + 16] = d * float((b[i].qs[j] >> 4) - 8);
    }
  }
}

void dequant_q8_0(const block_q8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = d * float(b[i].qs[j]);
  }
}

void dequant_q4_K(const block_q4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int c = 0; c < 4; ++c, q += 32, y += 64) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * c, b[i].scales, &sc0, &m0);
      get_scale_min_k4(2 * c + 1, b[i].scales, &sc1, &m1);
      const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
      for (int l = 0; l < 32; ++l) {
        y[l] = d0 * float(q[l] & 15) - o0;
        y[l + 32] = d1 * float(q[l] >> 4) - o1;
      }
    }
  }
}

void dequant_q5_K(const block_q5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    const uint8_t* qh = b[i].qh;
    for (int c = 0; c < 4; ++c, q += 32, y += 64) {
      uint8_t sc0, m0, sc1, m1;
      get_scale_min_k4(2 * c, b[i].scales, &sc0, &m0);
      get_scale_min_k4(2 * c + 1, b[i].scales, &sc1, &m1);
      const float d0 = d * sc0, o0 = dmin * m0, d1 = d * sc1, o1 = dmin * m1;
      const uint8_t u0 = uint8_t(1 << (2 * c)), u1 = uint8_t(2 << (2 * c));
      for (int l = 0; l < 32; ++l) {
        y[l] = d0 * float((q[l] & 15) + (qh[l] & u0 ? 16 : 0)) - o0;
        y[l + 32] = d1 * float((q[l] >> 4) + (qh[l] & u1 ? 16 : 0)) - o1;
      }
    }
  }
}

void dequant_q6_K(const block_q6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 15) | ((qh[l] >> 0 & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2 & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

void dequant_q8_K(const block_q8_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK_K)
    for (int j = 0; j < QK_K; ++j) y[j] = b[i].d * float(b[i].qs[j]);
}

void dequant_iq4_xs(const block_iq4_xs* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    const uint8_t* q = b[i].qs;
    for (int ib = 0; ib < QK_K / 32; ++ib, q += 16, y += 32) {
      const float dl = d * float(iq4_xs_scale(b[i], ib));
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * float(kIQ4NL[q[j] & 15]);
        y[j + 16] = dl * float(kIQ4NL[q[j] >> 4]);
      }
    }
  }
}

void dequant_mxfp4(const block_mxfp4* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK_MXFP4) {
    const float d = e8m0_half(b[i].e);
    for (int j = 0; j < QK_MXFP4 / 2; ++j) {
      y[j] = d * float(kMXFP4[b[i].qs[j] & 15]);
      y[j + 16] = d * float(kMXFP4[b[i].qs[j] >> 4]);
    }
  }
}

// ---- scale search ------------------------------------------------------------------------------
//
// The searches minimise squared error, but clipping the extremes of a block for finer steps can make
// single elements arbitrarily bad, so every candidate must also keep its worst element within `cap`
// (95% of the type's relative_error_bound times the super-block's max |x|; the 5% absorbs the rare
// sub-block whose quantized 6/8-bit scales leave no candidate within the cap). The plain min/max grid
// always passes the cap, so the unquantized fits always have a candidate.

float cap_fraction(TensorType t) { return 0.95f * float(relative_error_bound(t)); }

struct GridErr {
  float sse, emax;
};

// Error of x[0..n) on the grid s*q + b, q in [qmin, qmax], nearest code per element (written to q).
GridErr grid_err(const float* x, int n, float s, float b, int qmin, int qmax, int* q) {
  const float is = s != 0 ? 1.0f / s : 0.0f;
  GridErr r{0, 0};
  for (int i = 0; i < n; ++i) {
    q[i] = round_clamp((x[i] - b) * is, qmin, qmax);
    const float e = s * float(q[i]) + b - x[i];
    r.sse += e * e, r.emax = std::max(r.emax, std::fabs(e));
  }
  return r;
}

// Asymmetric fit for Q4_K/Q5_K sub-blocks: x ≈ s*q - m, q in [0, qmax], s >= 0, m >= 0 (the format
// stores both unsigned, so the grid always reaches down to min(0, min x)). Seeds step sizes from
// range/qmax down to ~12% finer, fits (s, m) to each seed's rounding by least squares, then alternates
// rounding and least squares on the best until it stalls.
struct ScaleMin {
  float s, m;
};

ScaleMin fit_scale_min(const float* x, int n, int qmax, float cap) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  if (hi <= lo) return {0, -lo};
  int q[32];
  ScaleMin best{(hi - lo) / float(qmax), -lo};  // min/max grid: error <= half a step
  float best_sse = grid_err(x, n, best.s, lo, 0, qmax, q).sse;
  // Least squares for x ≈ s*q + b over the codes in q (b <= 0 enforced by falling back to b = 0);
  // keeps the result if it beats the best within the cap. The codes in q end up re-rounded to it.
  auto refit = [&]() {
    float sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; ++i) sq += q[i], sqq += float(q[i]) * q[i], sx += x[i], sqx += q[i] * x[i];
    const float det = float(n) * sqq - sq * sq;
    float s = det > 0 ? (float(n) * sqx - sq * sx) / det : 0;
    float b = det > 0 ? (sqq * sx - sq * sqx) / det : sx / float(n);
    if (b > 0) b = 0, s = sqq > 0 ? sqx / sqq : 0;
    if (s < 0) s = 0, b = std::min(0.0f, sx / float(n));
    const GridErr e = grid_err(x, n, s, b, 0, qmax, q);
    if (!(e.sse < best_sse && e.emax <= cap)) return false;
    best_sse = e.sse, best = {s, -b};
    return true;
  };
  for (int k = -4; k <= 8; ++k) {
    const float iscale = float(qmax) * (1 + float(k) / 64) / (hi - lo);
    for (int i = 0; i < n; ++i) q[i] = round_clamp((x[i] - lo) * iscale, 0, qmax);
    refit();
  }
  for (int it = 0; it < 4; ++it) {
    grid_err(x, n, best.s, -best.m, 0, qmax, q);
    if (!refit()) break;
  }
  return best;
}

// Symmetric fit for Q6_K sub-blocks: x ≈ s*q, q in [-32, 31]. The sign of s is free (scales are
// signed), so the largest-magnitude element xm goes to the -32 side, which has the extra level.
float fit_scale_sym(const float* x, int n, float cap) {
  float xm = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(xm)) xm = x[i];
  if (xm == 0) return 0;
  int q[16];
  // -xm/31.5 covers ±|xm| on both sides (error <= half a step) whatever the signs in the block.
  float best = -xm / 31.5f, best_sse = grid_err(x, n, best, 0, -32, 31, q).sse;
  auto refit = [&]() {  // least-squares s for the codes in q
    float sqq = 0, sqx = 0;
    for (int i = 0; i < n; ++i) sqq += float(q[i]) * q[i], sqx += q[i] * x[i];
    if (sqq == 0) return false;
    const float s = sqx / sqq;
    const GridErr e = grid_err(x, n, s, 0, -32, 31, q);
    if (!(e.sse < best_sse && e.emax <= cap)) return false;
    best_sse = e.sse, best = s;
    return true;
  };
  for (int k = -4; k <= 8; ++k) {
    const float iscale = -(32 + float(k) / 2) / xm;
    for (int i = 0; i < n; ++i) q[i] = round_clamp(x[i] * iscale, -32, 31);
    refit();
  }
  for (int it = 0; it < 4; ++it) {
    grid_err(x, n, best, 0, -32, 31, q);
    if (!refit()) break;
  }
  return best;
}

// Picks among candidate quantized (scale, offset) pairs of one sub-block: least squared error among
// those within the cap, else least worst-case error. Copies the winner's codes to out.
struct Pick {
  float best_sse = INFINITY, best_emax = INFINITY;
  bool within = false;
  bool offer(const GridErr& e, float cap) {
    const bool in = e.emax <= cap;
    const bool better = in ? (!within || e.sse < best_sse) : (!within && e.emax < best_emax);
    if (better) best_sse = e.sse, best_emax = e.emax, within = in;
    return better;
  }
};

// ---- quantization ------------------------------------------------------------------------------

void quant_q8_0(const float* x, block_q8_0* b, int64_t nb) {
  float v[QK8_0];
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    const float amax = sanitize(x, v, QK8_0);
    b[i].d = fp16_scale(amax / 127);
    // Round against the stored (fp16) d, not the exact one, so the error stays within d/2.
    const float d = fp16_to_fp32(b[i].d), id = d != 0 ? 1 / d : 0;
    for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = int8_t(round_clamp(v[j] * id, -127, 127));
  }
}

void quant_q8_K(const float* x, block_q8_K* b, int64_t nb) {
  float v[QK_K];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    const float amax = sanitize(x, v, QK_K);
    b[i].d = amax / 127;
    const float id = amax != 0 ? 127 / amax : 0;
    for (int j = 0; j < QK_K; ++j) b[i].qs[j] = int8_t(round_clamp(v[j] * id, -127, 127));
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * g + j];
      b[i].bsums[g] = int16_t(sum);
    }
  }
}

// Shared Q4_K/Q5_K body: 8 sub-block fits, their scales and mins quantized to 6 bits against
// d = max s/63 and dmin = max m/63; each sub-block then takes the best (see Pick) of the up-to-4
// floor/ceil combinations of its (sc, m), judged by the actual error after re-rounding its codes.
struct KQuantAsym {
  uint16_t d, dmin;
  uint8_t sc[8], m[8];
  int q[QK_K];
};

void quant_k_asym(const float* x, int qmax, float bound, KQuantAsym& out) {
  float v[QK_K];
  const float cap = bound * sanitize(x, v, QK_K);
  ScaleMin f[8];
  float smax = 0, mmax = 0;
  for (int j = 0; j < 8; ++j) {
    f[j] = fit_scale_min(v + 32 * j, 32, qmax, cap);
    smax = std::max(smax, f[j].s), mmax = std::max(mmax, f[j].m);
  }
  out.d = fp16_scale(smax / 63), out.dmin = fp16_scale(mmax / 63);
  const float d = fp16_to_fp32(out.d), dmin = fp16_to_fp32(out.dmin);
  const float id = d != 0 ? 1 / d : 0, idmin = dmin != 0 ? 1 / dmin : 0;
  int q[32];
  for (int j = 0; j < 8; ++j) {
    const float* xs = v + 32 * j;
    const int s0 = int(std::clamp(std::floor(f[j].s * id), 0.0f, 63.0f)), s1 = std::min(s0 + 1, 63);
    const int m0 = int(std::clamp(std::floor(f[j].m * idmin), 0.0f, 63.0f)), m1 = std::min(m0 + 1, 63);
    Pick pick;
    for (int sc : {s0, s1})
      for (int m : {m0, m1})
        if (pick.offer(grid_err(xs, 32, d * float(sc), -dmin * float(m), 0, qmax, q), cap)) {
          out.sc[j] = uint8_t(sc), out.m[j] = uint8_t(m);
          std::copy(q, q + 32, out.q + 32 * j);
        }
  }
}

void quant_q4_K(const float* x, block_q4_K* b, int64_t nb) {
  KQuantAsym k;
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    quant_k_asym(x, 15, cap_fraction(TensorType::Q4_K), k);
    b[i].d = k.d, b[i].dmin = k.dmin;
    pack_scale_min_k4(k.sc, k.m, b[i].scales);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        b[i].qs[32 * c + l] = uint8_t(k.q[64 * c + l] | (k.q[64 * c + 32 + l] << 4));
  }
}

void quant_q5_K(const float* x, block_q5_K* b, int64_t nb) {
  KQuantAsym k;
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    quant_k_asym(x, 31, cap_fraction(TensorType::Q5_K), k);
    b[i].d = k.d, b[i].dmin = k.dmin;
    pack_scale_min_k4(k.sc, k.m, b[i].scales);
    std::memset(b[i].qh, 0, sizeof b[i].qh);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const int lo = k.q[64 * c + l], hi = k.q[64 * c + 32 + l];
        b[i].qs[32 * c + l] = uint8_t((lo & 15) | ((hi & 15) << 4));
        b[i].qh[l] |= uint8_t(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
  }
}

// Q6_K: per-16 symmetric fits, 8-bit signed scales against d = max|s|/127 (floor/ceil of each scale
// picked as above), then 6-bit codes re-rounded against the quantized scales.
void quant_q6_K(const float* x, block_q6_K* b, int64_t nb) {
  float v[QK_K];
  int q[QK_K], qt[16];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    const float cap = cap_fraction(TensorType::Q6_K) * sanitize(x, v, QK_K);
    float s[16], smax = 0;
    for (int j = 0; j < 16; ++j) s[j] = fit_scale_sym(v + 16 * j, 16, cap), smax = std::max(smax, std::fabs(s[j]));
    b[i].d = fp16_scale(smax / 127);
    const float d = fp16_to_fp32(b[i].d), id = d != 0 ? 1 / d : 0;
    for (int j = 0; j < 16; ++j) {
      const int s0 = int(std::clamp(std::floor(s[j] * id), -127.0f, 127.0f)), s1 = std::min(s0 + 1, 127);
      Pick pick;
      for (int sc : {s0, s1})
        if (pick.offer(grid_err(v + 16 * j, 16, d * float(sc), 0, -32, 31, qt), cap))
          b[i].scales[j] = int8_t(sc), std::copy(qt, qt + 16, q + 16 * j);
    }
    // Pack per 128-element half: see block_q6_K for which element lands where.
    for (int h = 0; h < 2; ++h) {
      uint8_t* ql = b[i].ql + 64 * h;
      uint8_t* qh = b[i].qh + 32 * h;
      const int* qq = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = qq[l] + 32, q2 = qq[l + 32] + 32, q3 = qq[l + 64] + 32, q4 = qq[l + 96] + 32;
        ql[l] = uint8_t((q1 & 15) | ((q3 & 15) << 4));
        ql[l + 32] = uint8_t((q2 & 15) | ((q4 & 15) << 4));
        qh[l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  const int64_t nb = n / type_traits(type).block_elems;
  switch (type) {
    case TensorType::F32: std::memcpy(dst, src, size_t(n) * sizeof(float)); return;
    case TensorType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case TensorType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case TensorType::Q4_0: return dequant_q4_0(static_cast<const block_q4_0*>(src), dst, nb);
    case TensorType::Q8_0: return dequant_q8_0(static_cast<const block_q8_0*>(src), dst, nb);
    case TensorType::Q4_K: return dequant_q4_K(static_cast<const block_q4_K*>(src), dst, nb);
    case TensorType::Q5_K: return dequant_q5_K(static_cast<const block_q5_K*>(src), dst, nb);
    case TensorType::Q6_K: return dequant_q6_K(static_cast<const block_q6_K*>(src), dst, nb);
    case TensorType::Q8_K: return dequant_q8_K(static_cast<const block_q8_K*>(src), dst, nb);
    case TensorType::IQ4_XS: return dequant_iq4_xs(static_cast<const block_iq4_xs*>(src), dst, nb);
    case TensorType::MXFP4: return dequant_mxfp4(static_cast<const block_mxfp4*>(src), dst, nb);
  }
  fail("dequantize_row", type);
}

bool can_quantize_to(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q8_K: return true;
    default: return false;
  }
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  const int64_t nb = n / type_traits(type).block_elems;
  switch (type) {
    case TensorType::F32: std::memcpy(dst, src, size_t(n) * sizeof(float)); return;
    case TensorType::F16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case TensorType::BF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    case TensorType::Q8_0: return quant_q8_0(src, static_cast<block_q8_0*>(dst), nb);
    case TensorType::Q4_K: return quant_q4_K(src, static_cast<block_q4_K*>(dst), nb);
    case TensorType::Q5_K: return quant_q5_K(src, static_cast<block_q5_K*>(dst), nb);
    case TensorType::Q6_K: return quant_q6_K(src, static_cast<block_q6_K*>(dst), nb);
    case TensorType::Q8_K: return quant_q8_K(src, static_cast<block_q8_K*>(dst), nb);
    default: fail("quantize_row", type);
  }
}

// F16/BF16/Q8_0/Q8_K: half a step of the format (plus fp16 rounding of the Q8_0 scale). K-quants: the
// scale searches enforce 95% of these as a cap on every element (see cap_fraction), which costs <0.1%
// RMS; measured worst cases on 8M Gaussian/uniform values are 0.095 / 0.0475 / 0.0238.
// Caveats: scales are fp16, so for blocks whose max |x| is below ~1e-2 (Q6_K holds at 0.01, not at
// 0.003) the scales turn subnormal and lose relative precision; F16 is relative only in its normal
// range (|x| >= 2^-14).
double relative_error_bound(TensorType type) {
  switch (type) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 0x1p-11;  // half an ulp of an 11-bit significand
    case TensorType::BF16: return 0x1p-8;  // half an ulp of an 8-bit significand
    case TensorType::Q8_0: return 1.01 / 254;
    case TensorType::Q8_K: return 1.001 / 254;  // fp32 scale: just the rounding
    case TensorType::Q6_K: return 0.025;
    case TensorType::Q5_K: return 0.05;
    case TensorType::Q4_K: return 0.10;
    default: return 1;  // not produced by quantize_row
  }
}

}  // namespace flashfix
