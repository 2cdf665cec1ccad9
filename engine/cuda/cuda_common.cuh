// Small device helpers shared by the kernels of the CUDA backend.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "engine/cpu_silu.h"

namespace flashfix::cuda {

constexpr int kWarpSize = 32;

// Programmatic dependent launch (Hopper). A decode step is a chain of ~16 small kernels per layer,
// each waiting for the one before; between two of them the GPU spends a launch latency (a microsecond
// or two) with nothing running. Launched through launch_kernel, a kernel may be scheduled as soon as
// every block of the kernel before it has started: it then waits at its first statement
// (wait_for_previous_kernel) until that kernel has finished and its writes are visible, so its launch
// overlaps the previous kernel's run instead of following it (this kernel lets its own dependents
// launch right after its wait). Every kernel in a chain begins with this call and touches no memory
// before it, so the order of effects is the stream's. Where PDL is off (FLASHFIX_CUDA_PDL=0, or a GPU
// before compute capability 9.0) the launch has no programmatic edge and the wait returns at once.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

bool pdl_enabled();
void check(cudaError_t e, const char* what);

// Launches kernel<<<grid, block, 0, s>>>(args...) (with PDL where enabled); a bad configuration
// throws here, naming `what`, not at the next synchronisation.
template <class... Params, class... Args>
void launch_kernel(const char* what, void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t s, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = 0, cfg.stream = s;
  cudaLaunchAttribute attr = {};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = &attr, cfg.numAttrs = pdl_enabled() ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), what);
}

__device__ __forceinline__ float warp_sum_f(float v) {
  for (int o = kWarpSize / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max_f(float v) {
  for (int o = kWarpSize / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
  for (int o = kWarpSize / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets it.
// Squares are summed in double as the CPU's rms_norm does.
__device__ __forceinline__ double block_sum_d(double v) {
  __shared__ double part[32];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  v = warp_sum_d(v);
  __syncthreads();  // part may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  double s = 0;
  for (int w = 0; w < int(blockDim.x) / kWarpSize; ++w) s += part[w];
  return s;
}

__device__ __forceinline__ float h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float bf2f(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }

// The CPU's scalar expressions, without contraction into fused multiply-adds where it matters.
__device__ __forceinline__ float sigmoid_f(float x) { return 1.f / (1.f + expf(-x)); }
// silu: the CPU's (engine/cpu_silu.h, the reference's exp approximation), every rounding explicit.
__device__ __forceinline__ float silu_f(float x) {
  using namespace cpu::silu_consts;
  const float neg = __fsub_rn(0.f, x);
  const float k = __fsub_rn(__fmaf_rn(neg, kLog2e, kShift), kShift);
  const float b = __fmaf_rn(-k, kLn2Lo, __fmaf_rn(-k, kLn2Hi, neg));
  const float u = __fmul_rn(b, b);
  const float poly = __fmaf_rn(__fmaf_rn(__fmaf_rn(kP5, b, kP4), u, __fmaf_rn(kP3, b, kP2)), u, __fmaf_rn(kP1, b, 1.f));
  const float e = fabsf(k) <= kLimit ? ldexpf(poly, int(k)) : k <= 0.f ? 0.f : INFINITY;
  return __fdiv_rn(x, __fadd_rn(1.f, e));
}

}  // namespace flashfix::cuda
