// Dot products between a weight row in its file format and an activation row.
//
// Like the reference engine, activations are first converted to the weight type's companion format
// (its "activation type": Q8_0 for 32-blocks, Q8_K for 256-blocks, F16/BF16 for half weights) once
// per matrix, then every weight block is combined with the matching activation block in integers.
// This reads the weights in place (no dequantized copy), and makes quantized models compute what
// the reference computes rather than a slightly different float approximation.
#pragma once
#include <cstdint>

#include "engine/tensor_types.h"

namespace flashfix::cpu {

TensorType activation_type(TensorType weight_type);
// Encodes n floats as `act_type` (row_bytes(act_type, n) bytes).
void quantize_activation(TensorType act_type, const float* x, void* dst, int64_t n);
// sum_i w[i] * a[i] for a weight row of `weight_type` and an activation row in activation_type(weight_type).
float vec_dot(TensorType weight_type, const void* w, const void* a, int64_t n);
// The reference's other summation orders for two kinds of matrix (cpu_kernels.h DotOrder):
// F32 rows as its ggml_vec_dot_f32 (4 accumulators of 16 lanes over 64-element steps, added
// (0 + 2) + (1 + 3) lane-wise, then the 16-lane tree, then the tail one fma at a time);
float dot_f32_vec(const float* w, const float* a, int64_t n);
// Q4_K rows (Q8_K activations) as its 4-token repacked GEMM: like vec_dot's Q4_K, two chains, but
// one fma per pair of 32-element sub-blocks instead of one per block.
float dot_q4_K_pairs(const void* w, const void* a, int64_t n);

}  // namespace flashfix::cpu
