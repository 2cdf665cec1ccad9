// Activation conversion and the quantized matrix-vector products (decode's GEMVs, the experts' and,
// token-tiled, prefill's matmuls).
//
// Shape, and why: decode at batch 1 reads every active weight byte once and does ~2 flops per weight,
// so its bound is memory bandwidth, and in practice memory latency: a decode matrix is a few MB, each
// warp's share a few round trips to DRAM. One warp owns one output row (or, for a single token's
// launch of few rows, a block does: matvec_kernel) and walks it in steps where the 32 lanes read
// consecutive words, 16 bytes each for Q4_K, Q5_K, F16 and BF16 (512 bytes per warp step), 4 for the
// others; the step loop is unrolled so several steps' loads are in flight per lane (a Hopper SM needs
// tens of KB outstanding to cover DRAM latency). The weights stay in their file layout and are
// dequantized in registers.
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
#include <cstddef>
#include <cstdlib>
#include <type_traits>
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

bool pdl_enabled() {
  static const bool on = [] {
    const char* env = std::getenv("FLASHFIX_CUDA_PDL");
    if (env && std::string(env) == "0") return false;
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
           major >= 9;
  }();
  return on;
}

namespace {

constexpr int kWarp = kWarpSize;
constexpr int kRowsPerBlock = 4;  // warps per block, one output row each
constexpr int kTile = 8;          // tokens sharing one pass over a row's weights
// A single token's launch with fewer rows than this gives each row a whole block (matvec_kernel).
constexpr int64_t kRowPerBlockBelow = 1024;


// Four bytes at a 2-byte-aligned address (Q8_0 and Q6_K blocks are only 2-byte aligned).
__device__ __forceinline__ int load_i32_a2(const uint8_t* p) {
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  return int(uint32_t(h[0]) | (uint32_t(h[1]) << 16));
}
__device__ __forceinline__ int load_i32(const uint8_t* p) { return *reinterpret_cast<const int*>(p); }

// Blocks (row, slice of kConvertSlice elements) (conversion as its own step; RMSNorm and SwiGLU do
// it in their own kernels). Slices are whole quantization blocks, so a decode row of 4096 is converted
// by 4 blocks at once rather than one block's warps taking 4 quantization blocks each in turn.
constexpr int64_t kConvertSlice = 1024;
__global__ void convert_kernel(const float* x, int64_t n, TensorType at, uint8_t* out) {
  wait_for_previous_kernel();
  const int64_t r = blockIdx.x, i0 = int64_t(blockIdx.y) * kConvertSlice, len = min(kConvertSlice, n - i0);
  const int64_t in_bytes = int64_t(act_row_bytes(at, i0));  // whole blocks before the slice
  quantize_row_block(x + r * n + i0, len, at, out + r * int64_t(act_row_bytes(at, n)) + in_bytes);
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

// Q4_K / Q5_K x Q8_K with 16-byte weight loads. A decode matvec has few rows per warp and is bound by
// memory latency, so what counts is the bytes in flight per round trip: a uint4 per lane is 512 bytes
// per warp step. (Reading 4 bytes per lane, 128 per warp step, decoded 196 tok/s against these
// steps' 229 on the 30B-A3B shape in Q4_K, and 122 against 211 in BF16 with WideHalfStep; H200,
// 2026-12-04.) A step is 4 super-blocks: lane l takes super-block l/8, chunk c = (l%8)/2 (sub-blocks
// 2c and 2c+1 in the low and high nibbles of qs[32c..]) and the 16-element half h = l%2 of both. Q5_K
// adds the fifth bits from qh at the same offset (bits 2c, 2c+1). The mins use the activation's bsums,
// the exact sums of the same 16 int8 values.
template <bool Q5>
struct KAsymStep {
  using Block = std::conditional_t<Q5, block_q5_K, block_q4_K>;
  int lo[4], hi[4];
  int sc0 = 0, m0 = 0, sc1 = 0, m1 = 0;
  float d = 0, dmin = 0;
  int64_t sb;
  int c, h;
  bool valid;
  static __device__ int steps(int64_t n) { return int((n / QK_K + 3) / 4); }
  __device__ void load(const uint8_t* row, int s, int lane, int64_t n) {
    sb = int64_t(s) * 4 + lane / 8;
    c = (lane % 8) / 2, h = lane % 2;
    valid = sb < n / QK_K;
    if (!valid) return;
    const uint8_t* b = row + sb * int64_t(sizeof(Block));
    const uint4 q = *reinterpret_cast<const uint4*>(b + offsetof(Block, qs) + 32 * c + 16 * h);
    const int qw[4] = {int(q.x), int(q.y), int(q.z), int(q.w)};
    int qhw[4] = {0, 0, 0, 0};
    if constexpr (Q5) {
      const uint4 qh = *reinterpret_cast<const uint4*>(b + offsetof(Block, qh) + 16 * h);
      qhw[0] = int(qh.x), qhw[1] = int(qh.y), qhw[2] = int(qh.z), qhw[3] = int(qh.w);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      lo[i] = qw[i] & 0x0f0f0f0f;
      hi[i] = (qw[i] >> 4) & 0x0f0f0f0f;
      if constexpr (Q5) {
        lo[i] |= ((qhw[i] >> (2 * c)) & 0x01010101) << 4;
        hi[i] |= ((qhw[i] >> (2 * c + 1)) & 0x01010101) << 4;
      }
    }
    const uint32_t dd = *reinterpret_cast<const uint32_t*>(b);
    d = h2f(uint16_t(dd & 0xffff));
    dmin = h2f(uint16_t(dd >> 16));
    const uint8_t* sc = b + offsetof(Block, scales);
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
  }
  __device__ float dot(const uint8_t* a, int, int64_t) const {
    if (!valid) return 0.f;
    const uint8_t* b = a + sb * int64_t(sizeof(block_q8_K));
    const float da = *reinterpret_cast<const float*>(b);
    const uint8_t* q0 = b + offsetof(block_q8_K, qs) + 64 * c + 16 * h;  // sub-block 2c; 2c+1 is 32 on
    int dot0 = 0, dot1 = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) dot0 = __dp4a(lo[i], load_i32(q0 + 4 * i), dot0), dot1 = __dp4a(hi[i], load_i32(q0 + 32 + 4 * i), dot1);
    const auto* bs = reinterpret_cast<const int16_t*>(b + offsetof(block_q8_K, bsums));
    const int dot_q = sc0 * dot0 + sc1 * dot1;
    const int dot_m = m0 * int(bs[4 * c + h]) + m1 * int(bs[4 * c + 2 + h]);
    return da * (d * float(dot_q) - dmin * float(dot_m));
  }
};
using Q4_KStep = KAsymStep<false>;
using Q5_KStep = KAsymStep<true>;

// F16/BF16 x F16/BF16 for rows of a multiple of 8 elements (FloatStep does the others): a step is 512
// elements, lane l reading elements 8l.. and 256 + 8l.. as two uint4.
template <TensorType W>
struct WideHalfStep {
  uint4 w[2];
  int64_t base;
  static __device__ int steps(int64_t n) { return int((n + 511) / 512); }
  static __device__ float widen(uint32_t bits, int hi) {
    const uint16_t v = uint16_t(hi ? bits >> 16 : bits & 0xffff);
    if constexpr (W == TensorType::F16) return h2f(v);
    else return bf2f(v);
  }
  __device__ void load(const uint8_t* row, int step, int lane, int64_t n) {
    base = int64_t(step) * 512 + 8 * lane;
#pragma unroll
    for (int j = 0; j < 2; ++j)
      w[j] = base + 256 * j < n ? *reinterpret_cast<const uint4*>(row + 2 * (base + 256 * j)) : make_uint4(0, 0, 0, 0);
  }
  __device__ float dot(const uint8_t* a, int, int64_t n) const {
    float s = 0;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (base + 256 * j >= n) break;
      const uint4 x = *reinterpret_cast<const uint4*>(a + 2 * (base + 256 * j));
      const uint32_t wv[4] = {w[j].x, w[j].y, w[j].z, w[j].w}, av[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) s += widen(wv[k], 0) * widen(av[k], 0) + widen(wv[k], 1) * widen(av[k], 1);
    }
    return s;
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
  bool row_per_block;  // matvec_kernel's WPR = kRowsPerBlock (else 1)
};

// Rows of one launch group: a single token's (decode) or a tile's worth.
int64_t rows_per_group(const Matvec& m) { return m.max_rows_per_z ? m.max_rows_per_z : (m.n_rows + m.n_z - 1) / m.n_z; }

// WPR warps per output row: one, or (WPR = kRowsPerBlock) the whole block, the warps taking every
// WPR-th step and adding through shared memory. The latter is for a single token's launch with few
// rows (the router: 128): there a warp per row leaves most of the GPU idle while each warp waits for
// one batch of loads after another. With thousands of rows (measured on an H200: q/k/v, the
// experts) it only adds blocks and barriers and is slower.
template <class Step, int NT, int WPR>
__global__ void __launch_bounds__(kRowsPerBlock * kWarp) matvec_kernel(Parts p) {
  wait_for_previous_kernel();
  static_assert(WPR == 1 || WPR == kRowsPerBlock, "a row is one warp's or the whole block's");
  __shared__ float red[kRowsPerBlock][NT];
  int part = 0;
  while (part + 1 < p.n && blockIdx.x >= p.first_block[part + 1]) ++part;
  const Matvec& m = p.m[part];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, sub = warp % WPR;
  const int64_t row = int64_t(blockIdx.x - p.first_block[part]) * (kRowsPerBlock / WPR) + warp / WPR;
  if (row >= m.n_out) return;  // uniform over the block when WPR > 1
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
    for (int s = sub; s < n_steps; s += WPR) {
      Step st;
      st.load(wrow, s, lane, m.n_in);
#pragma unroll
      for (int t = 0; t < NT; ++t)
        if (t < nt) acc[t] += st.dot(m.a + (m.a_row_of ? m.a_row_of[t0 + t] : t0 + t) * int64_t(m.a_row_bytes), lane, m.n_in);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= nt) break;
      float v = warp_sum_f(acc[t]);
      if constexpr (WPR > 1) {
        if (lane == 0) red[warp][t] = v;
        __syncthreads();
        v = red[0][t];
        for (int w = 1; w < WPR; ++w) v += red[w][t];
        __syncthreads();  // red is reused by the next tile
      }
      if (lane == 0 && sub == 0) {
        float* y = m.y + (t0 + t) * m.y_stride + row;
        *y = m.accumulate ? *y + v : v;
      }
    }
  }
}

template <class Step>
void launch(const Parts& p, cudaStream_t s) {
  const Matvec& m = p.m[0];
  const int64_t per_z = rows_per_group(m);
  dim3 grid(p.first_block[p.n], 1, unsigned(m.n_z));
  // Dense prefill (one group of many rows) splits its tiles over blocks too; grouped experts get a
  // few tile slices each, the rest looping inside the block.
  const int64_t tiles = (per_z + kTile - 1) / kTile;
  grid.y = unsigned(std::min<int64_t>(m.n_z == 1 ? tiles : std::min<int64_t>(tiles, 4), 65535));
  if (p.row_per_block) {
    launch_kernel("matvec", matvec_kernel<Step, 1, kRowsPerBlock>, dim3(grid), dim3(kRowsPerBlock * kWarp), s, p);
  } else if (per_z <= 1) {
    launch_kernel("matvec", matvec_kernel<Step, 1, 1>, dim3(grid), dim3(kRowsPerBlock * kWarp), s, p);
  } else {
    launch_kernel("matvec", matvec_kernel<Step, kTile, 1>, dim3(grid), dim3(kRowsPerBlock * kWarp), s, p);
  }
}

void launch_parts(const Parts& p, cudaStream_t s) {
  const bool wide_half = p.m[0].n_in % 8 == 0;
  switch (p.m[0].type) {
    case TensorType::F32: return launch<FloatStep<TensorType::F32>>(p, s);
    case TensorType::F16: return wide_half ? launch<WideHalfStep<TensorType::F16>>(p, s) : launch<FloatStep<TensorType::F16>>(p, s);
    case TensorType::BF16: return wide_half ? launch<WideHalfStep<TensorType::BF16>>(p, s) : launch<FloatStep<TensorType::BF16>>(p, s);
    case TensorType::Q8_0: return launch<Q8_0Step>(p, s);
    case TensorType::Q4_K: return launch<Q4_KStep>(p, s);
    case TensorType::Q5_K: return launch<Q5_KStep>(p, s);
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
  launch_kernel("convert", convert_kernel, dim3(unsigned(n_rows), unsigned((n + kConvertSlice - 1) / kConvertSlice)),
                dim3(kRowsPerBlock * kWarp), s, x, n, at, out);
}

bool matvec_supported(TensorType t) {
  switch (t) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K: return true;
    default: return false;
  }
}

void matvec(const Matvec* parts, int n, cudaStream_t s) {
  for (int i = 0; i < n;) {
    Parts p{};
    p.n = 0;
    p.first_block[0] = 0;
    int64_t rows = 0;
    for (; i < n && p.n < kMaxParts && (p.n == 0 || same_launch(p.m[0], parts[i])); ++i) {
      if (parts[i].n_rows == 0 || parts[i].n_out == 0) continue;
      p.m[p.n++] = parts[i];
      rows += parts[i].n_out;
    }
    if (p.n == 0) continue;
    p.row_per_block = rows_per_group(p.m[0]) <= 1 && rows * p.m[0].n_z < kRowPerBlockBelow;
    const int64_t rows_per_block = p.row_per_block ? 1 : kRowsPerBlock;
    for (int j = 0; j < p.n; ++j)
      p.first_block[j + 1] = p.first_block[j] + unsigned((p.m[j].n_out + rows_per_block - 1) / rows_per_block);
    launch_parts(p, s);
  }
}

void matvec(const Matvec& m, cudaStream_t s) { matvec(&m, 1, s); }

}  // namespace flashfix::cuda
