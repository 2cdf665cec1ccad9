// Activation conversion on the device, bit-identical to quant.cpp's quant_q8_0 / quant_q8_K and
// tensor_types.cpp's fp32_to_fp16 / fp32_to_bf16: the rows the CPU's integer dot products read.
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

// NaN -> 0, +-Inf -> +-(largest finite |x| of the block), as quant.cpp's sanitize.
__device__ __forceinline__ float sanitize(float x, float amax) {
  return isfinite(x) ? x : isnan(x) ? 0.f : copysignf(amax, x);
}
__device__ __forceinline__ int8_t round_clamp127(float x) {
  if (isnan(x)) x = 0;
  return int8_t(rintf(fminf(fmaxf(x, -127.f), 127.f)));
}

// One warp per 32-element block, one element per lane.
__device__ __forceinline__ void quantize_q8_0_block(const float* src, block_q8_0* b, int lane) {
  const float v = src[lane];
  const float amax = warp_max_f(isfinite(v) ? fabsf(v) : 0.f);
  uint16_t d16 = __half_as_ushort(__float2half_rn(amax / 127));
  if ((d16 & 0x7fff) == 0x7c00) d16 = uint16_t((d16 & 0x8000) | 0x7bff);  // a scale never becomes Inf
  const float d = h2f(d16), id = d != 0 ? 1 / d : 0;
  b->qs[lane] = round_clamp127(sanitize(v, amax) * id);
  if (lane == 0) b->d = d16;
}

// One warp per 256-element block, 8 elements per lane; bsums are the sums of 16 (two lanes).
__device__ __forceinline__ void quantize_q8_K_block(const float* src, block_q8_K* b, int lane) {
  float v[8];
  float m = 0;
  for (int i = 0; i < 8; ++i) v[i] = src[lane * 8 + i], m = fmaxf(m, isfinite(v[i]) ? fabsf(v[i]) : 0.f);
  const float amax = warp_max_f(m);
  const float id = amax != 0 ? 127 / amax : 0;
  int sum = 0;
  for (int i = 0; i < 8; ++i) {
    const int8_t q = round_clamp127(sanitize(v[i], amax) * id);
    b->qs[lane * 8 + i] = q;
    sum += q;
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  if (lane % 2 == 0) b->bsums[lane / 2] = int16_t(sum);
  if (lane == 0) b->d = amax / 127;
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
