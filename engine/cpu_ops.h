// Scalar-reference CPU kernels the forward pass is written in. Each takes plain float rows; weights
// are described by MatView so stacked expert slabs and whole tensors go through one path.
#pragma once
#include <cstdint>

#include "engine/model.h"
#include "engine/thread_pool.h"

namespace flashfix::cpu {

// A [n_out x n_in] matrix in some tensor type: row r is the r-th ne[0]-row.
struct MatView {
  TensorType type;
  int64_t n_in, n_out;
  const uint8_t* data;
  size_t row_bytes;
};
MatView mat(Weight w);                 // a 2-D tensor
MatView expert(Weight w, int64_t e);   // slab e of a stacked 3-D expert tensor

// Y[t][o] = sum_i W[o][i] * X[t][i] for t < n_tok. X rows are n_in long, Y rows n_out long.
// Weights are read in place (cpu_dot.h); each row is applied to every token: one weight read per batch.
void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y);

// y = x / sqrt(mean(x^2) + eps) * w over n elements (in place allowed).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// NEOX rotation of the first rope.n_rot dims of one head at position pos: pairs (i, i + n_rot/2).
// freq_factors: n_rot/2 divisors of theta (rope_freqs), or null.
void rope_neox(float* head, int64_t pos, const RopeConfig& rope, const float* freq_factors);

void embed_row(Weight table, int32_t token, float* out);

inline float silu(float x) { return x / (1.f + __builtin_expf(-x)); }
inline float sigmoid(float x) { return 1.f / (1.f + __builtin_expf(-x)); }

}  // namespace flashfix::cpu
