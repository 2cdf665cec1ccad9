// The device's copy bandwidth: decode's ceiling, what `bench --membw --backend cuda` reports and
// what decode's achieved GB/s is compared against.
#include <algorithm>

#include "engine/cuda/cuda_ops.h"

namespace flashfix::cuda {

double copy_bandwidth_gbs(size_t bytes) {
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc (bandwidth buffer)");
  try {
    check(cudaMalloc(&b, bytes), "cudaMalloc (bandwidth buffer)");
  } catch (...) {
    cudaFree(a);
    throw;
  }
  cudaEvent_t e0, e1;
  check(cudaEventCreate(&e0), "cudaEventCreate");
  check(cudaEventCreate(&e1), "cudaEventCreate");
  check(cudaMemset(a, 1, bytes), "cudaMemset");
  check(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy (warm-up)");
  // The best of several timed copies: the steady-state rate, not a clock ramp or a first touch.
  float best_ms = 1e30f;
  for (int i = 0; i < 10; ++i) {
    check(cudaEventRecord(e0), "cudaEventRecord");
    check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
    check(cudaEventRecord(e1), "cudaEventRecord");
    check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    best_ms = std::min(best_ms, ms);
  }
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  cudaFree(a), cudaFree(b);
  return 2.0 * double(bytes) / (double(best_ms) * 1e-3) / 1e9;
}

}  // namespace flashfix::cuda
