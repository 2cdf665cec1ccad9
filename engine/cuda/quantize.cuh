// Activation conversion on the device, bit-identical to cpu_dot.cpp's quantize_q8_0 / quantize_q8_K
// and tensor_types.cpp's fp32_to_fp16 / fp32_to_bf16: the rows the CPU's integer dot products read.
// quantize_row_block is run by a whole thread block over one row, so the kernel that produces the
// row (RMSNorm, SwiGLU) can convert it before exiting instead of a separate launch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>
#include <string>

#include "engine/cuda/cuda_common.cuh"
#include "engine/quant_blocks.h"

namespace flashfix::cuda {

// Float to int as the CPU's int(nearbyint(x)) gives it: round half to even; NaN (and an Inf times a
// zero scale) ends as 0 in the int8 the CPU stores, which is what CUDA's conversion gives directly.
__device__ __forceinline__ int nearest_even(float x) { return int(rintf(x)); }

// One warp per 32-element block, one element per lane. The CPU's quantize_q8_0 (cpu_dot.cpp): the
// scale from the block's largest |x| (NaN ignored, as fmaxf and std::max both do), 127/amax rather
// than 1/d, ties to even.
__device__ __forceinline__ void quantize_q8_0_block(const float* src, block_q8_0* b, int lane) {
  const float v = src[lane];
  const float amax = warp_max_f(fabsf(v));
  const float id = amax != 0.f ? __fdiv_rn(127.f, amax) : 0.f;
  b->qs[lane] = int8_t(nearest_even(__fmul_rn(v, id)));
  if (lane == 0) b->d = __half_as_ushort(__float2half_rn(__fdiv_rn(amax, 127.f)));
}

// One warp per 256-element block, 8 elements per lane; bsums are the sums of 16 (two lanes). The CPU's
// quantize_q8_K: the first element of largest magnitude maps to -127 (its sign folded into d).
__device__ __forceinline__ void quantize_q8_K_block(const float* src, block_q8_K* b, int lane) {
  float v[8];
  float m = 0;
  for (int i = 0; i < 8; ++i) v[i] = src[lane * 8 + i], m = fmaxf(m, fabsf(v[i]));
  const float amax = warp_max_f(m);
  int first = QK_K;
  for (int i = 7; i >= 0; --i)
    if (fabsf(v[i]) == amax) first = lane * 8 + i;
  for (int o = kWarpSize / 2; o > 0; o /= 2) first = min(first, __shfl_xor_sync(0xffffffffu, first, o));
  const float iscale = amax != 0.f ? __fdiv_rn(-127.f, src[first]) : 0.f;
  int sum = 0;
  for (int i = 0; i < 8; ++i) {
    const int8_t q = amax != 0.f ? int8_t(min(127, nearest_even(__fmul_rn(iscale, v[i])))) : int8_t(0);
    b->qs[lane * 8 + i] = q;
    sum += q;
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  if (lane % 2 == 0) b->bsums[lane / 2] = int16_t(sum);
  if (lane == 0) b->d = amax != 0.f ? __fdiv_rn(1.f, iscale) : 0.f;
}

__device__ __forceinline__ uint16_t half_bits(float x, bool bf16) {
  const uint32_t u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u)  // NaN: the CPU's quiet NaN bits, not CUDA's canonical one
    return bf16 ? uint16_t((u >> 16) | 0x40) : uint16_t(((u >> 16) & 0x8000) | 0x7e00);
  return bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(x)) : __half_as_ushort(__float2half_rn(x));
}

__host__ __device__ inline size_t act_row_bytes(TensorType at, int64_t n) {
  switch (at) {
    case TensorType::Q8_0: return size_t(n / QK8_0) * sizeof(block_q8_0);
    case TensorType::Q8_K: return size_t(n / QK_K) * sizeof(block_q8_K);
    default: return size_t(n) * 2;  // F16, BF16
  }
}

inline void check_act_type(TensorType at, int64_t n) {
  const bool ok = at == TensorType::F16 || at == TensorType::BF16 || (at == TensorType::Q8_0 && n % QK8_0 == 0) ||
                  (at == TensorType::Q8_K && n % QK_K == 0);
  if (!ok) throw std::invalid_argument("no device conversion of " + std::to_string(n) + " floats to " + std::string(type_traits(at).name));
}

// The whole block converts row[0..n) (already written and visible to the block) into out.
__device__ __forceinline__ void quantize_row_block(const float* row, int64_t n, TensorType at, uint8_t* out) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = blockDim.x / kWarpSize;
  if (at == TensorType::Q8_0) {
    for (int64_t b = warp; b < n / QK8_0; b += warps)
      quantize_q8_0_block(row + b * QK8_0, reinterpret_cast<block_q8_0*>(out) + b, lane);
  } else if (at == TensorType::Q8_K) {
    for (int64_t b = warp; b < n / QK_K; b += warps) quantize_q8_K_block(row + b * QK_K, reinterpret_cast<block_q8_K*>(out) + b, lane);
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      reinterpret_cast<uint16_t*>(out)[i] = half_bits(row[i], at == TensorType::BF16);
  }
}

}  // namespace flashfix::cuda
