// Activation conversion and the quantized matrix-vector products (decode's GEMVs, the experts' and,
// token-tiled, prefill's matmuls).
//
// Shape, and why: decode at batch 1 reads every active weight byte once and does ~2 flops per weight,
// so it is bound by memory bandwidth, not arithmetic. One warp owns one output row and walks it in
// steps where the 32 lanes read consecutive 4- or 2-byte words (each step of the warp is one or a few
// whole 128-byte lines: coalesced), and the step loop is unrolled so several steps' loads are in
// flight per lane (a Hopper SM needs tens of KB outstanding to cover DRAM latency). The weights stay
// in their file layout and are dequantized in registers.
//
// Arithmetic: integer dot products (dp4a) against activations quantized to 8 bits (Q8_0 for Q8_0
// weights, Q8_K for the K-quants), exactly the formats the CPU engine and the reference engine use, so
// quantized models compute what they compute (the integer part of every block is exact; only the
// float combination order differs). Float dots on dequantized weights would be a different
// approximation and would route near-tied tokens differently from the reference more often.
// F16/BF16 weights meet activations rounded to F16/BF16, as on the CPU.
//
// Several tokens (prefill, several sequences decoding together) share each weight load: a warp keeps
// kTile accumulators and dots every loaded step with each token's activations, so a row's weights are
// read from DRAM once per tile. This is a SIMT tile, not a tensor-core GEMM: prefill on large batches
// is compute-bound here and would gain from mma/wgmma tiles (docs/CUDA.md).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/cuda/cuda_common.cuh"
#include "engine/cuda/cuda_ops.h"
#include "engine/cuda/quantize.cuh"
#include "engine/quant_blocks.h"

namespace flashfix::cuda {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

namespace {

constexpr int kWarp = kWarpSize;
constexpr int kRowsPerBlock = 4;  // warps per block, one output row each
constexpr int kTile = 8;          // tokens sharing one pass over a row's weights


// Four bytes at a 2-byte-aligned address (Q8_0 and Q6_K blocks are only 2-byte aligned).
__device__ __forceinline__ int load_i32_a2(const uint8_t* p) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  return int(uint32_t(h[0]) | (uint32_t(h[1]) << 16));
}
__device__ __forceinline__ int load_i32(const uint8_t* p) { return *reinterpret_cast<const int*>(p); }

// One block per row (conversion as its own step; RMSNorm and SwiGLU do it in their own kernels).
__global__ void convert_kernel(const float* x, int64_t n, TensorType at, uint8_t* out) {
  const int64_t r = blockIdx.x;
  quantize_row_block(x + r * n, n, at, out + r * int64_t(act_row_bytes(at, n)));
}

// ---- per-type warp steps ------------------------------------------------------------------------
// Each type loads one step of a weight row into registers (load) and dots it with one token's
// activation row (dot), so a tile of tokens reuses the loaded weights. steps(n) is the number of
// steps in a row of n elements.

// Plain floats: a step is 128 elements, lane l reading elements 32j + l (j < 4): each of the four
// loads is one coalesced warp access. Handles any n.
template <TensorType W>
struct FloatStep {
  float w[4];
  int64_t base;
  static __device__ int steps(int64_t n) { return int((n + 127) / 128); }
  static __device__ float act(const uint8_t* a, int64_t i) {
    if constexpr (W == TensorType::F32) return reinterpret_cast<const float*>(a)[i];
    else if constexpr (W == TensorType::F16) return h2f(reinterpret_cast<const uint16_t*>(a)[i]);
    else return bf2f(reinterpret_cast<const uint16_t*>(a)[i]);
  }
  __device__ void load(const uint8_t* row, int step, int lane, int64_t n) {
    base = int64_t(step) * 128 + lane;
#pragma unroll
    for (int j = 0; j < 4; ++j) w[j] = base + 32 * j < n ? act(row, base + 32 * j) : 0.f;
  }
  __device__ float dot(const uint8_t* a, int lane, int64_t n) const {
    float s = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (base + 32 * j < n) s += w[j] * act(a, base + 32 * j);
    return s;
  }
};

// Q8_0 x Q8_0: a step is 4 blocks; lane l takes bytes 4(l%8).. of block l/8.
struct Q8_0Step {
  int q = 0;
  float d = 0;
  int64_t blk;
  int off;
  bool valid;
  static __device__ int steps(int64_t n) { return int((n / QK8_0 + 3) / 4); }
  __device__ void load(const uint8_t* row, int step, int lane, int64_t n) {
    blk = int64_t(step) * 4 + lane / 8;
    off = 4 * (lane % 8);
    valid = blk < n / QK8_0;
    if (!valid) return;
    const uint8_t* b = row + blk * sizeof(block_q8_0);
    d = h2f(*reinterpret_cast<const uint16_t*>(b));
    q = load_i32_a2(b + 2 + off);
  }
  __device__ float dot(const uint8_t* a, int lane, int64_t n) const {
    if (!valid) return 0.f;
    const uint8_t* b = a + blk * sizeof(block_q8_0);
    return d * h2f(*reinterpret_cast<const uint16_t*>(b)) * float(__dp4a(q, load_i32_a2(b + 2 + off), 0));
  }
};

// Q4_K x Q8_K: a step is one 256-element super-block. Lane l reads qs word l: chunk c = l/8 holds
// sub-block 2c in its low nibbles and 2c+1 in its high nibbles, 4 elements each at offset 4(l%8).
struct Q4_KStep {
  int lo = 0, hi = 0;
  int sc0 = 0, m0 = 0, sc1 = 0, m1 = 0;
  float d = 0, dmin = 0;
  int64_t step;
  int a_off;
  static __device__ int steps(int64_t n) { return int(n / QK_K); }
  __device__ void load(const uint8_t* row, int s, int lane, int64_t) {
    step = s;
    const uint8_t* b = row + int64_t(s) * sizeof(block_q4_K);
    const int c = lane / 8, o = 4 * (lane % 8);
    const int qw = load_i32(b + 16 + 32 * c + o);
    lo = qw & 0x0f0f0f0f;
    hi = (qw >> 4) & 0x0f0f0f0f;
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(b);
    d = h2f(uint16_t(dd & 0xffff));
    dmin = h2f(uint16_t(dd >> 16));
    const uint8_t* sc = b + 4;
    auto scale_min = [&](int j, int& s_out, int& m_out) {
      if (j < 4) {
        s_out = sc[j] & 63, m_out = sc[j + 4] & 63;
      } else {
        s_out = (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4);
        m_out = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
      }
    };
    scale_min(2 * c, sc0, m0);
    scale_min(2 * c + 1, sc1, m1);
    a_off = 64 * c + o;
  }
  __device__ float dot(const uint8_t* a, int lane, int64_t) const {
    const uint8_t* b = a + step * sizeof(block_q8_K);
    const float da = *reinterpret_cast<const float*>(b);
    const int a0 = load_i32(b + 4 + a_off), a1 = load_i32(b + 4 + a_off + 32);
    const int dot_q = sc0 * __dp4a(lo, a0, 0) + sc1 * __dp4a(hi, a1, 0);
    const int dot_m = m0 * __dp4a(0x01010101, a0, 0) + m1 * __dp4a(0x01010101, a1, 0);
    return da * (d * float(dot_q) - dmin * float(dot_m));
  }
};

// Q6_K x Q8_K: a step is one super-block. Lane l takes half h = l/16 and the element pair j = 2(l%16)
// of each of the half's four 32-element groups: 2 bytes of ql at j and at j+32, 2 of qh at j.
struct Q6_KStep {
  int q[8];
  int sc[4];
  float d = 0;
  int64_t step;
  int a_off;
  static __device__ int steps(int64_t n) { return int(n / QK_K); }
  __device__ void load(const uint8_t* row, int s, int lane, int64_t) {
    step = s;
    const uint8_t* b = row + int64_t(s) * sizeof(block_q6_K);
    const int h = lane / 16, j = 2 * (lane % 16);
    const uint16_t l0 = *reinterpret_cast<const uint16_t*>(b + 64 * h + j);
    const uint16_t l1 = *reinterpret_cast<const uint16_t*>(b + 64 * h + 32 + j);
    const uint16_t qh = *reinterpret_cast<const uint16_t*>(b + 128 + 32 * h + j);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int ql0 = (l0 >> (8 * i)) & 0xff, ql1 = (l1 >> (8 * i)) & 0xff, hb = (qh >> (8 * i)) & 0xff;
      q[0 + i] = ((ql0 & 15) | ((hb & 3) << 4)) - 32;
      q[2 + i] = ((ql1 & 15) | (((hb >> 2) & 3) << 4)) - 32;
      q[4 + i] = ((ql0 >> 4) | (((hb >> 4) & 3) << 4)) - 32;
      q[6 + i] = ((ql1 >> 4) | (((hb >> 6) & 3) << 4)) - 32;
    }
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
#pragma unroll
    for (int g = 0; g < 4; ++g) sc[g] = scales[8 * h + 2 * g + j / 16];
    d = h2f(*reinterpret_cast<const uint16_t*>(b + 208));
    a_off = 128 * h + j;
  }
  __device__ float dot(const uint8_t* a, int lane, int64_t) const {
    const uint8_t* b = a + step * sizeof(block_q8_K);
    const float da = *reinterpret_cast<const float*>(b);
    const auto* qs = reinterpret_cast<const int8_t*>(b + 4 + a_off);
    int sum = 0;
#pragma unroll
    for (int g = 0; g < 4; ++g) sum += sc[g] * (q[2 * g] * qs[32 * g] + q[2 * g + 1] * qs[32 * g + 1]);
    return da * d * float(sum);
  }
};

// Up to kMaxParts matrices that read the same activation rows (q, k, v and the gate; an expert's
// gate and up) in one launch: block b belongs to the part whose block range holds it. A decode step
// is a chain of small kernels, so every launch saved is latency saved.
constexpr int kMaxParts = 4;
struct Parts {
  Matvec m[kMaxParts];
  unsigned first_block[kMaxParts + 1];
  int n;
};

template <class Step, int NT>
__global__ void __launch_bounds__(kRowsPerBlock * kWarp) matvec_kernel(Parts p) {
  int part = 0;
  while (part + 1 < p.n && blockIdx.x >= p.first_block[part + 1]) ++part;
  const Matvec& m = p.m[part];
  const int lane = threadIdx.x % kWarp;
  const int64_t row = int64_t(blockIdx.x - p.first_block[part]) * kRowsPerBlock + threadIdx.x / kWarp;
  if (row >= m.n_out) return;
  const int z = int(blockIdx.z);
  int64_t r0, r1;
  if (m.z_first) {
    r0 = m.z_first[z], r1 = m.z_first[z + 1];
  } else {
    r0 = int64_t(z) * m.n_rows / m.n_z, r1 = int64_t(z + 1) * m.n_rows / m.n_z;
  }
  const int64_t expert = m.expert_of ? m.expert_of[z] : m.expert_bytes ? z : 0;
  const uint8_t* wrow = m.w + expert * int64_t(m.expert_bytes) + row * int64_t(m.w_row_bytes);
  const int n_steps = Step::steps(m.n_in);
  for (int64_t t0 = r0 + int64_t(blockIdx.y) * NT; t0 < r1; t0 += int64_t(gridDim.y) * NT) {
    const int nt = int(min(int64_t(NT), r1 - t0));
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[t] = 0;
#pragma unroll 4
    for (int s = 0; s < n_steps; ++s) {
      Step st;
      st.load(wrow, s, lane, m.n_in);
#pragma unroll
      for (int t = 0; t < NT; ++t)
        if (t < nt) acc[t] += st.dot(m.a + (m.a_row_of ? m.a_row_of[t0 + t] : t0 + t) * int64_t(m.a_row_bytes), lane, m.n_in);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= nt) break;
      const float v = warp_sum_f(acc[t]);
      if (lane == 0) {
        float* y = m.y + (t0 + t) * m.y_stride + row;
        *y = m.accumulate ? *y + v : v;
      }
    }
  }
}

template <class Step>
void launch(const Parts& p, cudaStream_t s) {
  const Matvec& m = p.m[0];
  const int64_t per_z = m.max_rows_per_z ? m.max_rows_per_z : (m.n_rows + m.n_z - 1) / m.n_z;
  dim3 grid(p.first_block[p.n], 1, unsigned(m.n_z));
  // Dense prefill (one group of many rows) splits its tiles over blocks too; grouped experts get a
  // few tile slices each, the rest looping inside the block.
  const int64_t tiles = (per_z + kTile - 1) / kTile;
  grid.y = unsigned(std::min<int64_t>(m.n_z == 1 ? tiles : std::min<int64_t>(tiles, 4), 65535));
  if (per_z <= 1) {
    matvec_kernel<Step, 1><<<grid, kRowsPerBlock * kWarp, 0, s>>>(p);
  } else {
    matvec_kernel<Step, kTile><<<grid, kRowsPerBlock * kWarp, 0, s>>>(p);
  }
  check_launch("matvec");
}

void launch_parts(const Parts& p, cudaStream_t s) {
  switch (p.m[0].type) {
    case TensorType::F32: return launch<FloatStep<TensorType::F32>>(p, s);
    case TensorType::F16: return launch<FloatStep<TensorType::F16>>(p, s);
    case TensorType::BF16: return launch<FloatStep<TensorType::BF16>>(p, s);
    case TensorType::Q8_0: return launch<Q8_0Step>(p, s);
    case TensorType::Q4_K: return launch<Q4_KStep>(p, s);
    case TensorType::Q6_K: return launch<Q6_KStep>(p, s);
    default: throw std::invalid_argument("the cuda backend has no matvec for " + std::string(type_traits(p.m[0].type).name) + " weights");
  }
}

// Whether b can share a launch with a: same kernel, same activation rows, same groups.
bool same_launch(const Matvec& a, const Matvec& b) {
  return a.type == b.type && a.a == b.a && a.a_row_bytes == b.a_row_bytes && a.a_row_of == b.a_row_of && a.n_rows == b.n_rows &&
         a.n_in == b.n_in &&
         a.n_z == b.n_z && a.z_first == b.z_first && a.expert_of == b.expert_of && a.max_rows_per_z == b.max_rows_per_z;
}

}  // namespace

void convert_rows(TensorType at, const float* x, int64_t n_rows, int64_t n, uint8_t* out, cudaStream_t s) {
  if (n_rows == 0) return;
  check_act_type(at, n);
  convert_kernel<<<unsigned(n_rows), kRowsPerBlock * kWarp, 0, s>>>(x, n, at, out);
  check_launch("convert_rows");
}

bool matvec_supported(TensorType t) {
  switch (t) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_K:
    case TensorType::Q6_K: return true;
    default: return false;
  }
}

void matvec(const Matvec* parts, int n, cudaStream_t s) {
  for (int i = 0; i < n;) {
    Parts p{};
    p.n = 0;
    p.first_block[0] = 0;
    for (; i < n && p.n < kMaxParts && (p.n == 0 || same_launch(p.m[0], parts[i])); ++i) {
      if (parts[i].n_rows == 0 || parts[i].n_out == 0) continue;
      p.m[p.n] = parts[i];
      p.first_block[p.n + 1] = p.first_block[p.n] + unsigned((parts[i].n_out + kRowsPerBlock - 1) / kRowsPerBlock);
      ++p.n;
    }
    if (p.n > 0) launch_parts(p, s);
  }
}

void matvec(const Matvec& m, cudaStream_t s) { matvec(&m, 1, s); }

}  // namespace flashfix::cuda
