// Backend choice by name. The CUDA backend is linked in only when the build found nvcc
// (FLASHFIX_WITH_CUDA); without it, asking for it is an error the user can act on.
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#ifdef FLASHFIX_WITH_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace flashfix {

bool cuda_backend_built() {
#ifdef FLASHFIX_WITH_CUDA
  return true;
#else
  return false;
#endif
}

#ifndef FLASHFIX_WITH_CUDA
CudaDeviceReport cuda_device_report(int) {
  throw std::runtime_error("the cuda backend is not in this build (nvcc was not found when it was configured)");
}
#endif

std::unique_ptr<Backend> make_backend(const Model& model, std::string_view name, int n_threads, bool repack_weights) {
  if (name == "cpu") return make_cpu_backend(model, n_threads, repack_weights);
  if (name == "cuda") {
#ifdef FLASHFIX_WITH_CUDA
    return make_cuda_backend(model);
#else
    throw std::runtime_error("the cuda backend is not in this build (nvcc was not found when it was configured); use --backend cpu");
#endif
  }
  throw std::invalid_argument("unknown backend '" + std::string(name) + "' (cpu or cuda)");
}

}  // namespace flashfix
