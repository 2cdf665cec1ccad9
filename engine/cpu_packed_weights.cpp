#include "engine/cpu_packed_weights.h"

#include <string>
#include <utility>
#include <vector>

#include "engine/cpu_ops.h"

namespace flashfix::cpu {
namespace {

// The matrices the forward pass multiplies by (cpu_backend.cpp); norms, biases and embedding tables
// are read otherwise.
std::vector<Weight> matmul_weights(const ModelWeights& w) {
  std::vector<Weight> out{w.output};
  for (const LayerWeights& l : w.layers)
    for (Weight t : {l.attn_q, l.attn_k, l.attn_v, l.attn_output, l.attn_gate, l.ffn_gate, l.ffn_up, l.ffn_down,
                     l.ffn_gate_inp, l.ffn_gate_exps, l.ffn_up_exps, l.ffn_down_exps, l.ffn_gate_shexp, l.ffn_up_shexp,
                     l.ffn_down_shexp, l.nextn_eh_proj, l.nextn_head})
      if (t) out.push_back(t);
  return out;
}

// Packing pays when the packed groups are the rows' own bytes: decode then reads no more than the file.
// The GEMM of the matrix's summation order (the orders of a type share one packed layout).
const GemmKernel* packable(Weight t) {
  if (t->ne.size() < 2 || t->ne.size() > 3) return nullptr;
  const GemmKernel* g = gemm_for(t->type, t->ne.size() == 3 ? expert(t, 0).order : mat(t).order);
  if (!g) return nullptr;
  return g->packed_bytes(t->ne[0]) == size_t(kGemmRows) * t->row_bytes() ? g : nullptr;
}

int64_t row_groups(Weight t) { return (t->dim(1) + kGemmRows - 1) / kGemmRows; }

}  // namespace

PackedWeights::PackedWeights(const Model& model, ThreadPool& pool) : path_(kernels().path) {
  std::vector<std::pair<Weight, const GemmKernel*>> todo;
  size_t size = 0;
  for (Weight t : matmul_weights(model.weights())) {
    const GemmKernel* g = packable(t);
    if (!g || slabs_.count(t)) continue;
    const size_t slab_bytes = size_t(row_groups(t)) * g->packed_bytes(t->ne[0]);
    slabs_[t] = {size, slab_bytes};
    size += slab_bytes * size_t(t->dim(2));
    todo.emplace_back(t, g);
  }
  if (size == 0) return;
  mem_ = HugePageBuffer(size, "the repacked weights (run with --no-repack to read them from the mapped file)");
  for (const auto& [t, kernel] : todo) {
    const GemmKernel& g = *kernel;
    const int64_t n = t->ne[0], rows = t->dim(1), groups = row_groups(t);
    const size_t rb = t->row_bytes(), group_bytes = g.packed_bytes(n);
    const Slabs& s = slabs_[t];
    pool.parallel_for(t->dim(2) * groups, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t e = i / groups, r0 = i % groups * kGemmRows;
        g.pack(t->data + size_t(e * rows + r0) * rb, rb, int(std::min<int64_t>(kGemmRows, rows - r0)), n,
               mem_.data() + s.offset + size_t(e) * s.slab_bytes + size_t(i % groups) * group_bytes);
      }
    });
    model.file().drop_pages(t->data, t->nbytes);
  }
}

const uint8_t* PackedWeights::slab(Weight t, int64_t e) const {
  if (!mem_.data() || kernels().path != path_) return nullptr;
  const auto it = slabs_.find(t);
  return it == slabs_.end() ? nullptr : mem_.data() + it->second.offset + size_t(e) * it->second.slab_bytes;
}

}  // namespace flashfix::cpu
