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

}  // namespace flashfix::cpu
