// The hot CPU kernels behind one table per instruction set, chosen once at startup.
//
// The scalar path (cpu_dot.cpp) is the oracle and runs everywhere; the AVX2 and AVX-512 paths are
// compiled in their own translation units with per-file target flags and only ever called after
// __builtin_cpu_supports says the machine has the instructions. Every path computes the same integer
// block dots on the same 8-bit activations (quantizers are bit-identical across paths); only the
// order of float summation differs. FLASHFIX_CPU=scalar|avx2|avx512 forces a path (an unsupported or
// unknown value is an error, not a silent fallback); tests switch paths with select_cpu_path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/tensor_types.h"

namespace flashfix::cpu {

enum class CpuPath { Scalar, Avx2, Avx512 };

// Tokens one dot-tile call combines with each weight block: the block is loaded and unpacked once
// and used for all of them, which is what makes prefill compute-bound rather than load-bound.
inline constexpr int kTileTokens = 8;

// Query heads one attend_scores / attend_values call takes (a whole GQA group in the models here: 4-16).
inline constexpr int kAttendHeads = 16;

// Attention's value sums keep one accumulator per key position modulo this (the reference's KQV
// product is its 16-lane tinyBLAS GEMM over the keys), folded once per output (cpu_backend.cpp).
inline constexpr int kAttendLanes = 16;

// Which summation order a matrix's dots follow. The reference engine sums some matrices in another
// order than its plain vec_dot (/work/notes/kernel-order.md), and its logits are reproduced bit for
// bit only if each matrix gets its order; it is a property of the matrix, the same for every token.
enum class DotOrder {
  Standard,       // the weight type's order (cpu_dot.cpp vec_dot)
  SubBlockPairs,  // Q4_K matrices it repacks (rows % 8 == 0) and multiplies as dense: one fma per pair of sub-blocks
  VecDotF32,      // F32 matrices its tinyBLAS does not take (experts; rows % 4 != 0): ggml_vec_dot_f32
};

// y[t * y_stride] = dot(weight row w, activation row t) for t < nt (1 <= nt <= kTileTokens), where
// activation row t starts at a + t * a_stride and is in activation_type(weight type); n elements.
using DotTileFn = void (*)(const void* w, const void* a, size_t a_stride, int nt, int64_t n, float* y, size_t y_stride);

// Prefill GEMM on repacked weights. A group of kGemmRows rows is repacked (into scratch that stays in
// L1/L2, once per matrix call) so that one 512-bit load feeds all the group's rows: their blocks are
// interleaved 4 bytes at a time, scales pre-expanded, weights made unsigned for vpdpbusd. The tile
// then runs a register block of the group's rows x up to kTileTokens tokens. Each output's float
// chain is the scalar oracle's (cpu_dot.cpp), so results are bit-identical to dot_tile; only where
// the integer work happens changes.
inline constexpr int kGemmRows = 16;

struct GemmKernel {
  size_t (*packed_bytes)(int64_t n);  // one packed group of kGemmRows rows of n elements
  // Packs rows [0, nrows) (nrows <= kGemmRows; the others are packed as zeros) of row_bytes each.
  void (*pack)(const uint8_t* rows, size_t row_bytes, int nrows, int64_t n, void* dst);
  // y[t * y_stride + r] = dot(row r, activation row t) for t < nt (1..kTileTokens), r < nrows.
  void (*tile)(const void* packed, const void* a, size_t a_stride, int nt, int64_t n, float* y, size_t y_stride, int nrows);
};

// Decode GEMV: kGemmRows rows read in place (row r at w + r * row_bytes, n elements) against 1 to
// kGemvTokens activation rows: y[t * y_stride + r] = dot(row r, activation row t). It shares each
// block's activation and unpacking work among the rows (and a speculative verify pass's tokens)
// without the GEMM's repacking, which a few tokens cannot pay for; bit-identical to dot_tile.
inline constexpr int kGemvTokens = kTileTokens;
using GemvFn = void (*)(const uint8_t* w, size_t row_bytes, const void* a, size_t a_stride, int nt, int64_t n, float* y,
                        size_t y_stride);

struct CpuKernels {
  CpuPath path;
  std::string_view name;
  void (*quantize_q8_0)(const float* x, void* dst, int64_t n);
  void (*quantize_q8_K)(const float* x, void* dst, int64_t n);
  DotTileFn (*dot_tile)(TensorType weight_type);  // null: this path has no kernel for the type
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  void (*scale_f32)(float alpha, float* y, int64_t n);  // y *= alpha
  // y[i] = expf_reference(x[i]) (cpu_expf.h), the same bits on every path.
  void (*exp_f32)(const float* x, float* y, int64_t n);
  // y[i] = silu(x[i]) (cpu_ops.h, the reference's SwiGLU activation), the same bits on every path.
  void (*silu_f32)(const float* x, float* y, int64_t n);
  // NEOX rotation of pairs (i, i + n_rot/2) by cos_sin[2i], cos_sin[2i + 1]: x0' = fma(x0, c, -(x1 * s)),
  // x1' = fma(x0, s, x1 * c). The reference's C loop (x0*c - x1*s, x0*s + x1*c) is compiled with FMA
  // and GCC's default contraction, which fuses the first product of each (the F32 golden models are
  // bit-exact from position 1 on only with this one of the four choices).
  void (*rope_f32)(float* head, const float* cos_sin, int n_rot);
  // y[i] = expf_vector(x[i]) (cpu_silu.h, the reference's softmax exp), the same bits on every path.
  void (*exp_vector_f32)(const float* x, float* y, int64_t n);
  // Attention scores for the keys at offsets u0 <= u < u0 + n of one KV block (n >= 1, u0 + n <=
  // kAttendLanes), stored lane-major as CpuKvStore keeps them (element i of the key at offset u at
  // kt[i * kAttendLanes + u]), and nh <= kAttendHeads query heads that share them (one GQA group;
  // rows q + h * q_stride): s[h * s_stride + u - u0] = the bits of dot_f32_vec(q_h, key_u, d)
  // (cpu_dot.h; a zero score may carry the other sign, which the softmax cannot see). The block's
  // other keys are read too, whatever they hold, and their scores dropped.
  void (*attend_scores)(const float* q, size_t q_stride, int nh, const float* kt, int u0, int n, int64_t d, float* s, size_t s_stride);
  // The weighted value sums over key positions first <= u < n (counted from a multiple of
  // kAttendLanes; value row v[u]): for head h (weights p[h * p_stride + u]) and element i, lane
  // l = u % kAttendLanes accumulates fma(p, v[u][i], lane) over its positions in order, from 0, and
  // y[h * y_stride + i] = the lanes folded as a 16-lane register (l + (l + 8), + (l + 4), then
  // (0 + 2) + (1 + 3)): the reference's KQV product (tinyBLAS, 16 lanes). The lanes stay in registers.
  void (*attend_values)(float* y, size_t y_stride, int nh, int64_t d, int64_t first, int64_t n, const float* const* v,
                        const float* p, size_t p_stride);
  // The softmax's weights before their sum, in place: x[i] = expf_vector(x[i] * scale - m) for i < n
  // (n >= 1), m the largest x[j] * scale; the same bits on every path (the max is exact in any order).
  void (*attend_exp)(float* x, int64_t n, float scale);
  uint64_t (*stream_read)(const void* data, size_t bytes);  // reads every byte once; returns a checksum
  const GemmKernel* (*gemm)(TensorType weight_type);        // null: no repacked GEMM for the type here
  GemvFn (*gemv)(TensorType weight_type);                   // null: no decode GEMV for the type here
  // The DotOrder::SubBlockPairs (Q4_K) and DotOrder::VecDotF32 (F32) kernels; null: none on this path.
  DotTileFn dot_tile_q4_K_pairs, dot_tile_f32_vec;
  const GemmKernel* gemm_q4_K_pairs;
  GemvFn gemv_q4_K_pairs;
};

const CpuKernels& scalar_kernels();
const CpuKernels* avx2_kernels();    // null when not compiled in (non-x86 builds)
const CpuKernels* avx512_kernels();

// The active table: FLASHFIX_CPU if set, else the best the machine supports.
const CpuKernels& kernels();
bool cpu_path_supported(CpuPath path);
std::vector<CpuPath> supported_cpu_paths();
// Switches every later kernel call to `path`; throws std::invalid_argument if unsupported here.
void select_cpu_path(CpuPath path);
std::optional<CpuPath> cpu_path_from_name(std::string_view name);
std::string_view cpu_path_name(CpuPath path);

// The dot-tile kernel for a weight type and order on the active path, falling back to the scalar one
// where the path has none for it (same arithmetic, so the fallback changes speed only).
DotTileFn dot_tile_for(TensorType weight_type, DotOrder order = DotOrder::Standard);
// The active path's repacked GEMM for a weight type and order, or null (then dot_tile does the work).
const GemmKernel* gemm_for(TensorType weight_type, DotOrder order = DotOrder::Standard);
// The active path's decode GEMV for a weight type and order, or null (then dot_tile does the work).
GemvFn gemv_for(TensorType weight_type, DotOrder order = DotOrder::Standard);
// Converts n floats to `act_type` (an activation_type) with the active path's quantizers.
void quantize_activation_fast(TensorType act_type, const float* x, void* dst, int64_t n);

}  // namespace flashfix::cpu
