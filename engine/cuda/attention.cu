// Attention over the paged KV cache: per-head q/k RMSNorm + NEOX RoPE + the K/V writes, then
// split-key online-softmax attention (flash-decoding) with GQA, the sliding window and the
// head-wise sigmoid gate.
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/cuda/cuda_common.cuh"
#include "engine/cuda/cuda_ops.h"

namespace flashfix::cuda {
namespace {

constexpr int kHeadThreads = 128;
constexpr int kAttnWarps = 4;
constexpr int kMaxHeadDim = 256;  // per-lane registers hold head_dim / 32 floats

__device__ __forceinline__ int64_t kv_row(const TokenKv& kv, int64_t t, int64_t pos) {
  return int64_t(kv.table[kv.table_off[t] + pos / kBlockTokens]) * kBlockTokens + pos % kBlockTokens;
}

// One block per (token, head); heads [0, n_head) are q heads, [n_head, n_head + n_head_kv) k heads
// (which also move their v head into the cache). The angle of pair i is computed as rope_table
// does: theta_base = pos * theta_scale^i by repeated float multiplication, then the frequency
// factor, the scaling and the YaRN blend.
__global__ void qk_norm_rope_store_kernel(QkStore a) {
  wait_for_previous_kernel();
  __shared__ float head[kMaxHeadDim];
  const int64_t t = blockIdx.x;
  const int hi = int(blockIdx.y);
  const bool is_q = hi < a.n_head;
  const int h = is_q ? hi : hi - a.n_head;
  const int hd = a.head_dim;
  float* src = is_q ? a.q + (t * a.n_head + h) * hd : const_cast<float*>(a.k) + (t * a.n_head_kv + h) * hd;
  const float* nw = is_q ? a.q_norm : a.k_norm;

  double ss = 0;
  for (int i = threadIdx.x; i < hd; i += blockDim.x) ss += double(__fmul_rn(src[i], src[i]));
  ss = block_sum_d(ss);
  const float scale = 1.f / sqrtf(float(ss / double(hd)) + a.eps);
  for (int i = threadIdx.x; i < hd; i += blockDim.x) head[i] = __fmul_rn(__fmul_rn(src[i], scale), nw[i]);
  __syncthreads();

  const int64_t pos = a.kv.pos[t];
  const Rope& p = a.rope;
  const int half = p.n_rot / 2;
  float out_lo[kMaxHeadDim / 2 / kHeadThreads + 1], out_hi[kMaxHeadDim / 2 / kHeadThreads + 1];
  int n_mine = 0;
  for (int i = threadIdx.x; i < half; i += blockDim.x, ++n_mine) {
    float theta_base = float(pos);
    for (int k = 0; k < i; ++k) theta_base *= p.theta_scale;
    const float theta_extrap = p.freq_factors ? theta_base / p.freq_factors[i] : theta_base;
    float theta = p.freq_scale * theta_extrap;
    if (p.ext_factor != 0.f) {
      const float y = (float(i) - p.corr0) / fmaxf(0.001f, p.corr1 - p.corr0);
      const float mix = (1.f - fminf(1.f, fmaxf(0.f, y))) * p.ext_factor;
      theta = theta * (1.f - mix) + theta_extrap * mix;
    }
    const float c = cosf(theta) * p.mscale, sn = sinf(theta) * p.mscale;
    const float x0 = head[i], x1 = head[i + half];
    out_lo[n_mine] = __fmaf_rn(x0, c, -__fmul_rn(x1, sn));  // the CPU's rope_f32 (cpu_kernels.h)
    out_hi[n_mine] = __fmaf_rn(x0, sn, __fmul_rn(x1, c));
  }
  __syncthreads();
  n_mine = 0;
  for (int i = threadIdx.x; i < half; i += blockDim.x, ++n_mine) head[i] = out_lo[n_mine], head[i + half] = out_hi[n_mine];
  __syncthreads();

  if (is_q) {
    for (int i = threadIdx.x; i < hd; i += blockDim.x) src[i] = head[i];
    return;
  }
  const int64_t row = kv_row(a.kv, t, pos);
  float* kd = a.k_cache + row * int64_t(a.n_head_kv) * hd + int64_t(h) * hd;
  for (int i = threadIdx.x; i < hd; i += blockDim.x) kd[i] = head[i];
  const int vd = a.v_head_dim;
  const float* vs = a.v + (t * a.n_head_kv + h) * vd;
  float* vdst = a.v_cache + row * int64_t(a.n_head_kv) * vd + int64_t(h) * vd;
  for (int i = threadIdx.x; i < vd; i += blockDim.x) vdst[i] = vs[i];
}

// One block per (token * head, split). Each warp takes kKeyUnroll consecutive keys at a time (j0 =
// first + kKeyUnroll * warp, then + kKeyUnroll * kAttnWarps): it loads all their K and V rows before
// using any, so a warp has that many rows' loads in flight instead of one key's round trip to memory
// per step (the loop is latency-bound, not bandwidth-bound, at decode's few keys per warp). Lanes
// hold head dims lane + 32 i, a warp sum gives each score, and the running max M, sum S and
// unnormalised output are rescaled when M grows, key by key in order. The warps then merge in shared
// memory and the block writes (M, S, out) for its split.
constexpr int kKeyUnroll = 4;

__global__ void __launch_bounds__(kAttnWarps * kWarpSize) attention_partial_kernel(Attention a) {
  wait_for_previous_kernel();
  constexpr int kPer = kMaxHeadDim / kWarpSize;
  __shared__ float wm[kAttnWarps], ws[kAttnWarps];
  __shared__ float wout[kAttnWarps][kMaxHeadDim];
  const int64_t th = blockIdx.x;
  const int64_t t = th / a.n_head;
  const int h = int(th % a.n_head);
  const int kvh = h / (a.n_head / a.n_head_kv);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int hd = a.head_dim, vd = a.v_head_dim;
  const int64_t pos = a.kv.pos[t];
  const int64_t start = a.window > 0 ? max(int64_t(0), pos - a.window + 1) : 0;
  const int64_t n_keys = pos + 1 - start;
  const int64_t chunk = (n_keys + a.n_split - 1) / a.n_split;
  const int64_t k0 = start + int64_t(blockIdx.y) * chunk, k1 = min(pos + 1, k0 + chunk);

  float q[kPer], o[kPer];
  const float* qh = a.q + (t * a.n_head + h) * hd;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + kWarpSize * i;
    q[i] = d < hd ? qh[d] : 0.f;
    o[i] = 0.f;
  }
  const float scale = 1.f / sqrtf(float(hd));
  const int64_t kw = int64_t(a.n_head_kv) * hd, vw = int64_t(a.n_head_kv) * vd;
  float M = -INFINITY, S = 0;
  for (int64_t j0 = k0 + kKeyUnroll * warp; j0 < k1; j0 += kKeyUnroll * kAttnWarps) {
    float kr[kKeyUnroll][kPer], vr[kKeyUnroll][kPer];
#pragma unroll
    for (int u = 0; u < kKeyUnroll; ++u) {
      const bool live = j0 + u < k1;
      const int64_t row = live ? kv_row(a.kv, t, j0 + u) : 0;
      const float* kp = a.k_cache + row * kw + int64_t(kvh) * hd;
      const float* vp = a.v_cache + row * vw + int64_t(kvh) * vd;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int d = lane + kWarpSize * i;
        kr[u][i] = live && d < hd ? kp[d] : 0.f;
        vr[u][i] = live && d < vd ? vp[d] : 0.f;
      }
    }
    float sc[kKeyUnroll];
#pragma unroll
    for (int u = 0; u < kKeyUnroll; ++u) {
      float part = 0;
#pragma unroll
      for (int i = 0; i < kPer; ++i) part += q[i] * kr[u][i];
      sc[u] = warp_sum_f(part) * scale;
    }
#pragma unroll
    for (int u = 0; u < kKeyUnroll; ++u) {
      if (j0 + u >= k1) break;
      const float s = sc[u];
      float ms = 1, vs = 1;
      if (s > M) {
        ms = expf(M - s);
        M = s;
      } else {
        vs = expf(s - M);
      }
#pragma unroll
      for (int i = 0; i < kPer; ++i) o[i] = o[i] * ms + vs * vr[u][i];
      S = S * ms + vs;
    }
  }
  if (lane == 0) wm[warp] = M, ws[warp] = S;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + kWarpSize * i;
    if (d < vd) wout[warp][d] = o[i];
  }
  __syncthreads();
  float Mb = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) Mb = fmaxf(Mb, wm[w]);
  float* out = a.partial + (th * a.n_split + blockIdx.y) * (vd + 2);
  float Sb = 0;
  for (int w = 0; w < kAttnWarps; ++w)
    if (wm[w] != -INFINITY) Sb += ws[w] * expf(wm[w] - Mb);
  for (int d = threadIdx.x; d < vd; d += blockDim.x) {
    float acc = 0;
    for (int w = 0; w < kAttnWarps; ++w)
      if (wm[w] != -INFINITY) acc += wout[w][d] * expf(wm[w] - Mb);
    out[2 + d] = acc;
  }
  if (threadIdx.x == 0) out[0] = Mb, out[1] = Sb;
}

// Merges the splits of one (token, head), normalises and applies the gate. Each split's weight
// exp(m - M) is computed once into shared memory, then every output dim sums over the splits with
// independent loads (decode has up to kMaxSplits of them).
constexpr int kMergeThreads = 128;
__global__ void __launch_bounds__(kMergeThreads) attention_merge_kernel(Attention a) {
  wait_for_previous_kernel();
  __shared__ float wsp[kMaxSplits];
  __shared__ float red[kMergeThreads / kWarpSize];
  const int64_t th = blockIdx.x;
  const int vd = a.v_head_dim;
  const float* part = a.partial + th * a.n_split * (vd + 2);
  float M = -INFINITY;
  for (int sp = threadIdx.x; sp < a.n_split; sp += blockDim.x) M = fmaxf(M, part[sp * (vd + 2)]);
  M = warp_max_f(M);
  if (threadIdx.x % kWarpSize == 0) red[threadIdx.x / kWarpSize] = M;
  __syncthreads();
  M = red[0];
  for (int w = 1; w < kMergeThreads / kWarpSize; ++w) M = fmaxf(M, red[w]);
  for (int sp = threadIdx.x; sp < a.n_split; sp += blockDim.x) {
    const float m = part[sp * (vd + 2)];
    wsp[sp] = m != -INFINITY ? expf(m - M) : 0.f;
  }
  __syncthreads();
  float S = 0;
  for (int sp = 0; sp < a.n_split; ++sp)
    if (wsp[sp] != 0.f) S += part[sp * (vd + 2) + 1] * wsp[sp];
  const float g = a.gate ? sigmoid_f(a.gate[th]) : 1.f;
  for (int d = threadIdx.x; d < vd; d += blockDim.x) {
    float acc = 0;
    for (int sp = 0; sp < a.n_split; ++sp)
      if (wsp[sp] != 0.f) acc += part[sp * (vd + 2) + 2 + d] * wsp[sp];
    const float v = acc * (1.f / S);
    a.out[th * vd + d] = a.gate ? v * g : v;
  }
}

}  // namespace

void qk_norm_rope_store(const QkStore& a, cudaStream_t s) {
  if (a.n_tok == 0) return;
  if (a.head_dim > kMaxHeadDim || a.v_head_dim > kMaxHeadDim || a.rope.n_rot > a.head_dim)
    throw std::invalid_argument("cuda attention: head dims above 256 are not supported");
  launch_kernel("qk_norm_rope_store", qk_norm_rope_store_kernel, dim3(unsigned(a.n_tok), unsigned(a.n_head + a.n_head_kv)),
                dim3(kHeadThreads), s, a);
}

size_t attention_partial_floats(int64_t n_tok, int n_head, int v_head_dim, int n_split) {
  return size_t(n_tok) * size_t(n_head) * size_t(n_split) * size_t(v_head_dim + 2);
}

void attention(const Attention& a, cudaStream_t s) {
  if (a.n_tok == 0) return;
  if (a.head_dim > kMaxHeadDim || a.v_head_dim > kMaxHeadDim)
    throw std::invalid_argument("cuda attention: head dims above 256 are not supported");
  if (a.n_split < 1 || a.n_split > kMaxSplits)
    throw std::invalid_argument("cuda attention: n_split must be 1.." + std::to_string(kMaxSplits));
  launch_kernel("attention_partial", attention_partial_kernel, dim3(unsigned(a.n_tok * a.n_head), unsigned(a.n_split)),
                dim3(kAttnWarps * kWarpSize), s, a);
  launch_kernel("attention_merge", attention_merge_kernel, dim3(unsigned(a.n_tok * a.n_head)), dim3(kMergeThreads), s, a);
}

}  // namespace flashfix::cuda
