// Row-wise kernels: RMSNorm (converting its output for the next matvec), the residual add, and the scatter of final hidden rows into the KV store.
#include "engine/cuda/cuda_common.cuh"
#include "engine/cuda/cuda_ops.h"
#include "engine/cuda/quantize.cuh"

namespace flashfix::cuda {
namespace {

constexpr int kNormThreads = 256;

// One block per row. Squares in float, summed in double, mean and scale in float: the CPU's formula.
__global__ void rms_norm_kernel(const float* x, const int32_t* src_row, const float* w, float* y, int64_t n, float eps,
                                TensorType at, uint8_t* act_out) {
  wait_for_previous_kernel();
  const int64_t r = blockIdx.x;
  const float* xr = x + (src_row ? int64_t(src_row[r]) : r) * n;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += double(__fmul_rn(xr[i], xr[i]));
  ss = block_sum_d(ss);
  const float mean = float(ss / double(n));
  const float scale = 1.f / sqrtf(mean + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[r * n + i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
  if (act_out) {
    __syncthreads();
    quantize_row_block(y + r * n, n, at, act_out + r * int64_t(act_row_bytes(at, n)));
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  wait_for_previous_kernel();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = __fadd_rn(x[i], y[i]);
}

__global__ void scatter_kernel(const float* src, int64_t n, const int32_t* dst_row, float* dst) {
  wait_for_previous_kernel();
  const int64_t r = blockIdx.x;
  float* d = dst + int64_t(dst_row[r]) * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) d[i] = src[r * n + i];
}

}  // namespace

void rms_norm_rows(const float* x, const int32_t* src_row, const float* w, float* y, int64_t n_rows, int64_t n, float eps,
                   cudaStream_t s, TensorType act_type, uint8_t* act_out) {
  if (n_rows == 0) return;
  if (act_out) check_act_type(act_type, n);
  launch_kernel("rms_norm", rms_norm_kernel, dim3(unsigned(n_rows)), dim3(kNormThreads), s, x, src_row, w, y, n, eps, act_type, act_out);
}

void add_into(float* x, const float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  launch_kernel("add", add_kernel, dim3(unsigned((n + 255) / 256)), dim3(256), s, x, y, n);
}

void scatter_rows(const float* src, int64_t n_rows, int64_t n, const int32_t* dst_row, float* dst, cudaStream_t s) {
  if (n_rows == 0) return;
  launch_kernel("scatter", scatter_kernel, dim3(unsigned(n_rows)), dim3(256), s, src, n, dst_row, dst);
}

}  // namespace flashfix::cuda
