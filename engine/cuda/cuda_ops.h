// The CUDA backend's operations, callable from host code on device pointers. Each mirrors one step
// of the CPU reference (engine/cpu_backend.cpp, cpu_ops.cpp, cpu_dot.cpp) and is compared against it
// op by op in tests/cuda/cuda_ops_test.cpp. Every launch goes on the given stream and none waits for
// the device, so a whole forward pass queues without host synchronisation (and can be captured as a
// CUDA graph): sizes that depend on routing live in device memory, never on the host.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "engine/tensor_types.h"

namespace flashfix::cuda {

// Throws std::runtime_error "<what>: <CUDA error string>" unless e is cudaSuccess.
void check(cudaError_t e, const char* what);

// Rows of n floats converted to act_type (cpu::activation_type of a weight type: F16, BF16, Q8_0,
// Q8_K), row_bytes(act_type, n) each, bit-identical to cpu::quantize_activation. F32 is not converted.
void convert_rows(TensorType act_type, const float* x, int64_t n_rows, int64_t n, uint8_t* out, cudaStream_t s);

// y[row r][o] (+)= sum_i W[o][i] * a[r][i] for weights in their file layout (F32, F16, BF16, Q8_0,
// Q4_K, Q5_K, Q6_K) and activations converted by convert_rows. The launch's z dimension selects a group of
// activation rows and, for stacked expert tensors, the expert whose slab they meet:
//   rows of group z: [z_first[z], z_first[z+1]) when z_first is set (experts grouped by the device's
//   routing), else [z * n_rows / n_z, (z + 1) * n_rows / n_z);
//   expert of group z: expert_of[z] when set (decode: one routed slot per z), else z when expert_bytes
//   is set, else none.
// y rows are numbered like a's; a_row_of, when set, maps y row r to the activation row it reads (a
// routed slot reads its token's row, so no gathered copy of the activations is made).
struct Matvec {
  TensorType type = TensorType::F32;
  const uint8_t* w = nullptr;
  size_t w_row_bytes = 0;
  int64_t n_in = 0, n_out = 0;
  size_t expert_bytes = 0;
  const int32_t* expert_of = nullptr;
  const int32_t* z_first = nullptr;
  int n_z = 1;
  const uint8_t* a = nullptr;
  size_t a_row_bytes = 0;
  const int32_t* a_row_of = nullptr;
  int64_t n_rows = 0;
  int64_t max_rows_per_z = 0;  // a bound on any group's rows (picks the token tile); 0: n_rows / n_z
  float* y = nullptr;
  int64_t y_stride = 0;
  bool accumulate = false;  // y += instead of y =
};
bool matvec_supported(TensorType weight_type);
void matvec(const Matvec& m, cudaStream_t s);
// Several products; consecutive ones of the same weight type over the same activation rows and
// groups (q, k, v and the gate; an expert's gate and up) share one launch.
void matvec(const Matvec* parts, int n, cudaStream_t s);

// y[r] = x[src_row ? src_row[r] : r] / sqrt(mean(x^2) + eps) * w over n floats, for n_rows rows.
// With act_out, each normed row is also converted to act_type (convert_rows' rows) in the same kernel.
void rms_norm_rows(const float* x, const int32_t* src_row, const float* w, float* y, int64_t n_rows, int64_t n, float eps,
                   cudaStream_t s, TensorType act_type = TensorType::F32, uint8_t* act_out = nullptr);

// x[i] += y[i] over n floats (the residual adds).
void add_into(float* x, const float* y, int64_t n, cudaStream_t s);
// dst row dst_row[r] = src row r, n floats a row (the trunk's final hidden state into the KV store).
void scatter_rows(const float* src, int64_t n_rows, int64_t n, const int32_t* dst_row, float* dst, cudaStream_t s);

// Positions per KV block (backend.h's kKvBlockTokens; cuda_backend.cpp checks they agree).
constexpr int64_t kBlockTokens = 16;

// Where each token of a micro-batch reads and writes KV: its position, and its sequence's block
// table (table + table_off[t]: physical block of each logical block, -1 where not held).
struct TokenKv {
  const int32_t* pos = nullptr;
  const int32_t* table = nullptr;
  const int32_t* table_off = nullptr;
};

// Rotary parameters of a layer, the YaRN correction range already computed (as cpu_ops.cpp does).
// theta_scale and mscale are computed on the host with the CPU's float expressions, so the
// angles start from the same bits.
struct Rope {
  int n_rot = 0;
  float theta_scale = 1.f;   // freq_base^(-2 / n_rot)
  float freq_scale = 1.f, ext_factor = 0.f;
  float mscale = 1.f;        // attn_factor, times the YaRN magnitude correction when ext_factor != 0
  float corr0 = 0.f, corr1 = 0.f;
  const float* freq_factors = nullptr;  // n_rot / 2 divisors of theta, or null
};

// Per-head RMSNorm of q and k, NEOX rotation of their first n_rot dims, and K, V written into the
// paged cache rows [block * 16 + offset][n_head_kv * dim] of this layer.
struct QkStore {
  float* q = nullptr;        // [T][n_head * head_dim], rotated in place
  const float* k = nullptr;  // [T][n_head_kv * head_dim]
  const float* v = nullptr;  // [T][n_head_kv * v_head_dim]
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  float eps = 1e-6f;
  int64_t n_tok = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0, v_head_dim = 0;
  Rope rope;
  TokenKv kv;
  float* k_cache = nullptr;
  float* v_cache = nullptr;
};
void qk_norm_rope_store(const QkStore& a, cudaStream_t s);

// Softmax attention of every (token, head) over its sequence's keys [start, pos] (start = pos -
// window + 1 for a sliding layer), GQA, optional head-wise sigmoid gate; out [T][n_head * v_head_dim].
// The keys are split in n_split ranges attended in parallel and merged (flash-decoding): decode has
// one token, so heads alone would leave most of the GPU idle on a long context.
struct Attention {
  const float* q = nullptr;
  const float* k_cache = nullptr;
  const float* v_cache = nullptr;
  TokenKv kv;
  int64_t n_tok = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0, v_head_dim = 0;
  int window = 0;              // 0: full attention
  const float* gate = nullptr; // [T][n_head] logits of the head-wise gate, or null
  float* out = nullptr;
  float* partial = nullptr;    // attention_partial_floats(...) floats of scratch
  int n_split = 1;
};
size_t attention_partial_floats(int64_t n_tok, int n_head, int v_head_dim, int n_split);
// Most key splits one attention launch takes (decode's flash-decoding partials).
constexpr int kMaxSplits = 256;
void attention(const Attention& a, cudaStream_t s);

// Router: probabilities (softmax or sigmoid) of logits [T][X], the top k by probability + bias (ties:
// lower expert), weights = probabilities renormalised over the k (if renorm) times scale.
// ids/weights: [T][k] in rank order.
struct Route {
  const float* logits = nullptr;
  int64_t n_tok = 0;
  int n_expert = 0, k = 0;
  bool softmax = true;
  const float* bias = nullptr;
  bool renorm = true;
  float scale = 1.f;
  int32_t* ids = nullptr;
  float* weights = nullptr;
};
void route(const Route& r, cudaStream_t s);

// Groups the T*k routed entries by expert, tokens ascending within each (a stable counting sort, as
// the CPU does): expert_first [n_expert + 1], slot_token [T*k] (the token of each slot),
// entry_slot [T*k] (the slot of entry t*k + j).
void group_by_expert(const int32_t* ids, int64_t n_tok, int k, int n_expert, int32_t* expert_first, int32_t* slot_token,
                     int32_t* entry_slot, cudaStream_t s);
// The token of each entry t*k + j: t (decode's one-slot-per-entry layout).
void entry_tokens(int64_t n_tok, int k, int32_t* slot_token, cudaStream_t s);

// hidden[r][i] = min(silu(gate), clamp) * clamp(up, -clamp, clamp) (no clamps when clamp <= 0), in place
// of gate: [n_rows][n] each; with act_out also converted to act_type in the same kernel.
void swiglu(float* gate, const float* up, int64_t n_rows, int64_t n, float clamp, cudaStream_t s,
            TensorType act_type = TensorType::F32, uint8_t* act_out = nullptr);

// x[t] += sum over t's k entries, in ascending expert order, of weight * expert_out[row of entry]
// (+ shared[t] when set): the CPU's order of additions. entry_slot null: entry i is row i.
void moe_combine(const float* expert_out, const int32_t* ids, const float* weights, const int32_t* entry_slot,
                 const float* shared, int64_t n_tok, int k, int64_t n, float* x, cudaStream_t s);

// Device-to-device copy bandwidth in GB/s (bytes read + bytes written per second) over `bytes`-sized
// buffers: the memory-bandwidth ceiling decode is measured against.
double copy_bandwidth_gbs(size_t bytes);

}  // namespace flashfix::cuda
