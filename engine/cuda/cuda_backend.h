// The CUDA backend: the Backend/KvStore seam (engine/backend.h) on one NVIDIA GPU.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "engine/backend.h"

namespace flashfix {

// Uploads the model's weights to `device` once and runs forward passes there. Throws
// std::runtime_error naming the cause when no CUDA device is usable (no driver, no GPU) or a weight
// has a type without a CUDA kernel.
std::unique_ptr<Backend> make_cuda_backend(const Model& model, int device = 0);

// "" when a CUDA device is usable, else why not (for tests that skip).
std::string cuda_unavailable_reason();

}  // namespace flashfix
