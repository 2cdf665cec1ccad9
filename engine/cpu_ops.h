// The CPU kernels the forward pass is written in. Weights are described by MatView so stacked expert
// slabs and whole tensors go through one path; the arithmetic inside goes through the dispatched
// kernel table (cpu_kernels.h).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "engine/cpu_kernels.h"  // DotOrder
#include "engine/cpu_silu.h"  // silu
#include "engine/model.h"
#include "engine/thread_pool.h"

namespace flashfix::cpu {

// A [n_out x n_in] matrix in some tensor type: row r is the r-th ne[0]-row.
struct MatView {
  TensorType type;
  int64_t n_in, n_out;
  const uint8_t* data;
  size_t row_bytes;
  cpu::DotOrder order = cpu::DotOrder::Standard;  // the reference's summation order for this matrix
  // The same rows packed at load for the active path's GEMM (cpu_packed_weights.h), row group g at
  // packed + g * packed_bytes(n_in); null: only the file's layout.
  const uint8_t* packed = nullptr;
};
// A 2-D tensor. The reference multiplies it as a dense matrix: Q4_K with rows % 8 == 0 repacked (its
// 4-token GEMM's sub-block pairs), F32 through tinyBLAS (the 16-lane order) where rows % 4 == 0 and
// n_in % 16 == 0, else through ggml_vec_dot_f32.
MatView mat(Weight w);
// Slab e of a stacked 3-D expert tensor; the reference's mul_mat_id takes F32 slabs through
// ggml_vec_dot_f32 and Q4_K ones through its repacked GEMV (the standard order).
MatView expert(Weight w, int64_t e);

// n_tok activation rows already converted to a weight type's activation type (cpu_dot.h).
struct ActRows {
  TensorType type;
  const uint8_t* data;
  size_t row_bytes;
  int64_t n_tok;
};

// Converts x [n_tok x n_in] to `act_type` in buf (grown, never shrunk), in parallel over tokens.
// F32 needs no conversion and points at x.
ActRows convert_rows(ThreadPool& pool, TensorType act_type, const float* x, int64_t n_tok, int64_t n_in,
                     std::vector<uint8_t>& buf);

// One matrix input converted at most once per activation type, however many matrices read it
// (q, k, v and the attention gate; every expert's gate and up).
class ActivationCache {
 public:
  void reset(const float* x, int64_t n_tok, int64_t n_in);
  ActRows get(ThreadPool& pool, TensorType weight_type);

 private:
  const float* x_ = nullptr;
  int64_t n_tok_ = 0, n_in_ = 0;
  struct Entry {
    TensorType type;
    bool valid;
    std::vector<uint8_t> buf;
  };
  std::vector<Entry> entries_;
};

// y[t][o] = sum_i W[o][i] * X[t][i] for t < a.n_tok; y rows are w.n_out long.
struct MatmulJob {
  MatView w;
  ActRows a;
  float* y;
};
// Runs every job in one parallel loop over (job, block of rows), so several small matrices (k and v,
// the selected experts of a decode step) keep every thread busy with one handoff. Inside a block,
// tokens go kTileTokens at a time through the dot-tile kernel: each weight block is loaded and
// unpacked once per tile, and the block's rows stay in L1 while the tile's activations stream past.
void matmul_jobs(ThreadPool& pool, std::span<const MatmulJob> jobs);
// Converts x and runs one matrix.
void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y);

// y = x / sqrt(mean(x^2) + eps) * w over n elements (in place allowed).
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// rms_norm of `rows` consecutive rows of n elements each (x and y: [rows x n], in place allowed).
void rms_norm_rows(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);

// NEOX rotation of the first rope.n_rot dims of a head at position pos: pairs (i, i + n_rot/2).
// rope_table writes the n_rot/2 (cos, sin) pairs of one position once (freq_factors: n_rot/2
// divisors of theta, or null); rope_apply rotates any number of heads with it (the kernel table's
// rope_f32: the reference's rounding, see cpu_kernels.h).
void rope_table(int64_t pos, const RopeConfig& rope, const float* freq_factors, float* cos_sin);
void rope_apply(float* head, const float* cos_sin, int n_rot);
// YaRN correction range (used when rope.ext_factor != 0): the rotary pairs blended between
// interpolation and extrapolation. Other backends start their angles from the same numbers.
void yarn_corr_dims(const RopeConfig& rope, float dims[2]);

void embed_row(Weight table, int32_t token, float* out);

// y[i] += a * x[i] (the product rounded, then the sum: no fma), y[i] += x[i] and y[i] *= x[i], four
// lanes at a time: every lane does the scalar loop's roundings, so the bits are the same. GCC's -O2
// does not vectorize such loops itself (their length and aliasing are unknown), and scalar the MoE
// weighted sum took twice the time of the memory it reads.
void add_scaled(float* y, float a, const float* x, int64_t n);
void add_to(float* y, const float* x, int64_t n);
void multiply_by(float* y, const float* x, int64_t n);

inline float sigmoid(float x) { return 1.f / (1.f + __builtin_expf(-x)); }

}  // namespace flashfix::cpu
