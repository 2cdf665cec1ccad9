// Converts a GGUF model's float weights to another type, the way llama-quantize does for a uniform
// type: 2-D/3-D weights change, norms, biases, routers and rope factors stay F32, and nothing that does
// not fit is converted behind the user's back.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

#include "engine/tensor_types.h"

namespace flashfix {

// llama.cpp's LLAMA_FTYPE for a file whose weights are mostly `type` (general.file_type); K-quants map
// to their _S variants since every weight gets the same type.
int32_t llama_file_type(TensorType type);

// Whether `quantize` leaves a tensor of this name and rank as it is whatever the target type.
bool keeps_type(std::string_view name, size_t n_dims);

// Runs work(r0, r1) over [0, rows) split across the hardware threads; inline when the tensor is small
// (rows x row_len elements) and a thread would cost more than it saves. Used to convert or generate one
// tensor's rows in parallel; rows must be independent.
void parallel_rows(int64_t rows, int64_t row_len, const std::function<void(int64_t r0, int64_t r1)>& work);

struct QuantizeStats {
  int converted = 0;     // float tensors rewritten as the target type
  int kept = 0;          // left as they were (norms, routers, 1-D, rows that do not fit)
  int misfit = 0;        // of `kept`: would have been converted but their rows are not whole blocks
  uint64_t bytes_in = 0, bytes_out = 0;  // tensor data
};

// Reads `in`, writes `out` with every convertible float tensor as `type` (one of f16, bf16, q8_0, q4_K,
// q5_K, q6_K). Progress, one line per tensor that does not fit, and nothing else go to `log` (may be
// null). Throws std::invalid_argument for an unsupported type, GgufError for a bad input.
QuantizeStats quantize_model(const std::string& in, const std::string& out, TensorType type, std::FILE* log);

}  // namespace flashfix
