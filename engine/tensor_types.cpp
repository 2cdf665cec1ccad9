#include "engine/tensor_types.h"

#include <array>
#include <cctype>
#include <cstring>

namespace flashfix {

// Block geometry per ggml_type id, exactly as the file format lays blocks out (see quant_blocks.h).
static constexpr std::array<TypeTraits, 11> kTraits = {{
    {TensorType::F32, "f32", 1, 4},
    {TensorType::F16, "f16", 1, 2},
    {TensorType::Q4_0, "q4_0", 32, 18},
    {TensorType::Q8_0, "q8_0", 32, 34},
    {TensorType::Q4_K, "q4_K", 256, 144},
    {TensorType::Q5_K, "q5_K", 256, 176},
    {TensorType::Q6_K, "q6_K", 256, 210},
    {TensorType::Q8_K, "q8_K", 256, 292},
    {TensorType::IQ4_XS, "iq4_xs", 256, 136},
    {TensorType::BF16, "bf16", 1, 2},
    {TensorType::MXFP4, "mxfp4", 32, 17},
}};

const TypeTraits* type_traits(uint32_t raw_type) {
  for (const auto& t : kTraits)
    if (uint32_t(t.type) == raw_type) return &t;
  return nullptr;
}

const TypeTraits& type_traits(TensorType type) { return *type_traits(uint32_t(type)); }

std::optional<TensorType> type_from_name(std::string_view name) {
  for (const auto& t : kTraits) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) same = std::tolower(name[i]) == std::tolower(t.name[i]);
    if (same) return t.type;
  }
  return std::nullopt;
}

bool row_ok(TensorType type, int64_t n) { return n >= 0 && n % type_traits(type).block_elems == 0; }

size_t row_bytes(TensorType type, int64_t n) {
  const auto& t = type_traits(type);
  return size_t(n / t.block_elems) * t.block_bytes;
}

// IEEE half <-> single, bit-exact for every finite, infinite and NaN input (F16C-equivalent rounding:
// round to nearest even). Written out rather than relying on _Float16 so the baseline build needs no
// particular ISA; SIMD paths use hardware conversions.
float fp16_to_fp32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) return uint16_t(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0));  // inf / nan
  if (absx >= 0x477ff000) return uint16_t(sign | 0x7c00);  // rounds past the largest half: inf
  if (absx < 0x38800000) {  // result is subnormal or zero
    if (absx < 0x33000000) return uint16_t(sign);
    uint32_t e = absx >> 23;
    uint32_t mant = (absx & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14 + (113 - e)
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = ((absx - 0x38000000) >> 13);
  uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;
  return uint16_t(sign | half);
}

float bf16_to_fp32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t fp32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

}  // namespace flashfix
