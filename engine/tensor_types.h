// Tensor element types as GGUF numbers them (ggml_type ids), their block geometry, and the
// row-level conversions the rest of the engine is built on. The block structs that mirror the
// file layout live in quant_blocks.h; this header is what callers need.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace flashfix {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,  // activation-side format for K-quant integer dot products; never stored in model files
  IQ4_XS = 23,
  BF16 = 30,
  MXFP4 = 39,
};

struct TypeTraits {
  TensorType type;
  std::string_view name;   // as llama.cpp prints it: "f32", "q4_K", ...
  int64_t block_elems;     // elements per block (1 for plain floats)
  size_t block_bytes;      // bytes per block
};

// Traits of a raw ggml_type id; nullptr for ids this engine does not implement.
const TypeTraits* type_traits(uint32_t raw_type);
const TypeTraits& type_traits(TensorType type);
std::optional<TensorType> type_from_name(std::string_view name);  // case-insensitive "q4_k", "Q8_0", "bf16"

// Bytes of a row of n elements; n must be a multiple of the block size (callers check with row_ok).
bool row_ok(TensorType type, int64_t n);
size_t row_bytes(TensorType type, int64_t n);

// dst[0..n) = the values encoded in src. n is a multiple of the block size.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Types quantize_row can produce (F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K, Q8_K).
bool can_quantize_to(TensorType type);
// Encodes src[0..n) into dst (row_bytes(type, n) bytes). Round-to-nearest with per-block scale search
// for the K-quants; deterministic.
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

// Worst-case |x - dequant(quant(x))| relative to the block's max |x|, used by tests and `quantize`
// to state what "within the type's error bound" means.
double relative_error_bound(TensorType type);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);  // round to nearest even

}  // namespace flashfix
