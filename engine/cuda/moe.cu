// Mixture-of-experts routing on the device: router probabilities, selection with the bias, top-k,
// renormalisation and scale; grouping of the routed entries by expert; SwiGLU with the clamps; and
// the weighted combine. Nothing here returns to the host: expert ids stay in device memory and
// drive the expert matvecs (cuda_ops.h, Matvec::expert_of / z_first).
#include <cfloat>
#include <climits>
#include <stdexcept>

#include "engine/cuda/cuda_common.cuh"
#include "engine/cuda/cuda_ops.h"
#include "engine/cuda/quantize.cuh"

namespace flashfix::cuda {
namespace {

constexpr int kRouteThreads = 128;
constexpr int kMaxExperts = 1024;
constexpr int kMaxUsed = 32;

// Block-wide (value, index) argmax, ties to the lower index (the CPU's partial_sort order).
__device__ void block_argmax(float& v, int& idx) {
  __shared__ float sv[kRouteThreads / kWarpSize];
  __shared__ int si[kRouteThreads / kWarpSize];
  for (int o = kWarpSize / 2; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
  }
  __syncthreads();
  if (threadIdx.x % kWarpSize == 0) sv[threadIdx.x / kWarpSize] = v, si[threadIdx.x / kWarpSize] = idx;
  __syncthreads();
  v = sv[0], idx = si[0];
  for (int w = 1; w < kRouteThreads / kWarpSize; ++w)
    if (sv[w] > v || (sv[w] == v && si[w] < idx)) v = sv[w], idx = si[w];
}

__device__ float block_max_f(float v) {
  int unused = 0;
  block_argmax(v, unused);
  return v;
}

// One block per token.
__global__ void __launch_bounds__(kRouteThreads) route_kernel(Route r) {
  wait_for_previous_kernel();
  __shared__ float p[kMaxExperts];
  __shared__ bool taken[kMaxExperts];
  __shared__ int chosen[kMaxUsed];
  const int64_t t = blockIdx.x;
  const int X = r.n_expert;
  const float* logit = r.logits + t * X;
  if (r.softmax) {
    float mx = -INFINITY;
    for (int e = threadIdx.x; e < X; e += blockDim.x) mx = fmaxf(mx, logit[e]);
    mx = block_max_f(mx);
    double sum = 0;
    for (int e = threadIdx.x; e < X; e += blockDim.x) sum += double(p[e] = expf(logit[e] - mx));
    const float total = float(block_sum_d(sum));
    for (int e = threadIdx.x; e < X; e += blockDim.x) p[e] /= total;
  } else {
    for (int e = threadIdx.x; e < X; e += blockDim.x) p[e] = sigmoid_f(logit[e]);
  }
  for (int e = threadIdx.x; e < X; e += blockDim.x) taken[e] = false;
  __syncthreads();
  for (int k = 0; k < r.k; ++k) {
    float best = -INFINITY;
    int idx = INT_MAX;
    for (int e = threadIdx.x; e < X; e += blockDim.x) {
      if (taken[e]) continue;
      const float sel = r.bias ? p[e] + r.bias[e] : p[e];
      if (sel > best || (sel == best && e < idx)) best = sel, idx = e;
    }
    block_argmax(best, idx);
    if (threadIdx.x == 0) {
      // Every probability is finite, so a selection is always made; guard anyway against NaN logits.
      if (idx == INT_MAX) idx = 0;
      chosen[k] = idx;
      taken[idx] = true;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    float wsum = 0;
    for (int k = 0; k < r.k; ++k) wsum += p[chosen[k]];
    const float norm = r.renorm ? 1.f / fmaxf(wsum, 6.103515625e-5f) : 1.f;
    for (int k = 0; k < r.k; ++k) {
      r.ids[t * r.k + k] = chosen[k];
      r.weights[t * r.k + k] = __fmul_rn(__fmul_rn(p[chosen[k]], norm), r.scale);
    }
  }
}

// One block: counts per expert, their prefix sums, then each thread places its experts' entries in
// entry order (stable: tokens ascending within an expert).
__global__ void group_kernel(const int32_t* ids, int64_t n, int X, int32_t* first, int32_t* slot_token, int32_t* entry_slot,
                             int k) {
  wait_for_previous_kernel();
  __shared__ int count[kMaxExperts + 1];
  for (int e = threadIdx.x; e <= X; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) atomicAdd(&count[ids[i]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int run = 0;
    for (int e = 0; e < X; ++e) {
      const int c = count[e];
      count[e] = run;
      first[e] = run;
      run += c;
    }
    first[X] = run;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < X; e += blockDim.x) {
    int slot = count[e];
    for (int64_t i = 0; i < n; ++i)
      if (ids[i] == e) {
        slot_token[slot] = int32_t(i / k);
        entry_slot[i] = slot++;
      }
  }
}

__global__ void entry_tokens_kernel(int64_t n, int k, int32_t* slot_token) {
  wait_for_previous_kernel();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) slot_token[i] = int32_t(i / k);
}

// One block per row: the row in place, then (act_out) converted for the down matvec.
__global__ void swiglu_kernel(float* gate, const float* up, int64_t n, float clamp, TensorType at, uint8_t* act_out) {
  wait_for_previous_kernel();
  const int64_t r = blockIdx.x;
  float* g = gate + r * n;
  const float* u_row = up + r * n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    float a = silu_f(g[i]), u = u_row[i];
    if (clamp > 0.f) {
      a = fminf(a, clamp);
      u = fminf(fmaxf(u, -clamp), clamp);
    }
    g[i] = __fmul_rn(a, u);
  }
  if (act_out) {
    __syncthreads();
    quantize_row_block(g, n, at, act_out + r * int64_t(act_row_bytes(at, n)));
  }
}

// Blocks (token, slice of kCombineThreads dims): the token's entries sorted by expert (k is small),
// then each thread sums its dim in that order. Slicing the dims over blocks matters at decode's one
// token: a single block walked 2048 dims x 8 experts in a chain of dependent rounds.
constexpr int kCombineThreads = 128;
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(const float* eo, const int32_t* ids, const float* w, const int32_t* entry_slot,
                               const float* shared, int k, int64_t n, float* x) {
  wait_for_previous_kernel();
  __shared__ int order[kMaxUsed];
  const int64_t t = blockIdx.x;
  if (threadIdx.x < k) {  // entry j's rank by (expert id, j): a stable sort in one round
    const int j = threadIdx.x, id = ids[t * k + j];
    int rank = 0;
    for (int i = 0; i < k; ++i) {
      const int other = ids[t * k + i];
      rank += other < id || (other == id && i < j);
    }
    order[rank] = j;
  }
  __syncthreads();
  const int64_t d = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (d < n) {
    float acc = 0;
    for (int j = 0; j < k; ++j) {
      const int64_t e = t * k + order[j];
      const int64_t row = entry_slot ? entry_slot[e] : e;
      acc = __fadd_rn(acc, __fmul_rn(w[e], eo[row * n + d]));
    }
    if (shared) acc = __fadd_rn(acc, shared[t * n + d]);
    x[t * n + d] = __fadd_rn(x[t * n + d], acc);
  }
}

}  // namespace

void route(const Route& r, cudaStream_t s) {
  if (r.n_tok == 0) return;
  if (r.n_expert > kMaxExperts || r.k > kMaxUsed || r.k > r.n_expert)
    throw std::invalid_argument("cuda router: at most 1024 experts and 32 used per token");
  launch_kernel("route", route_kernel, dim3(unsigned(r.n_tok)), dim3(kRouteThreads), s, r);
}

void group_by_expert(const int32_t* ids, int64_t n_tok, int k, int n_expert, int32_t* expert_first, int32_t* slot_token,
                     int32_t* entry_slot, cudaStream_t s) {
  launch_kernel("group", group_kernel, dim3(1), dim3(1024), s, ids, n_tok * k, n_expert, expert_first, slot_token, entry_slot,
                k);
}

void entry_tokens(int64_t n_tok, int k, int32_t* slot_token, cudaStream_t s) {
  const int64_t n = n_tok * k;
  if (n == 0) return;
  launch_kernel("entry_tokens", entry_tokens_kernel, dim3(unsigned((n + 255) / 256)), dim3(256), s, n, k, slot_token);
}

void swiglu(float* gate, const float* up, int64_t n_rows, int64_t n, float clamp, cudaStream_t s, TensorType act_type,
            uint8_t* act_out) {
  if (n_rows == 0) return;
  if (act_out) check_act_type(act_type, n);
  launch_kernel("swiglu", swiglu_kernel, dim3(unsigned(n_rows)), dim3(256), s, gate, up, n, clamp, act_type, act_out);
}

void moe_combine(const float* expert_out, const int32_t* ids, const float* weights, const int32_t* entry_slot,
                 const float* shared, int64_t n_tok, int k, int64_t n, float* x, cudaStream_t s) {
  if (n_tok == 0) return;
  launch_kernel("combine", combine_kernel, dim3(unsigned(n_tok), unsigned((n + kCombineThreads - 1) / kCombineThreads)),
                dim3(kCombineThreads), s, expert_out, ids, weights, entry_slot, shared, k, n, x);
}

}  // namespace flashfix::cuda
