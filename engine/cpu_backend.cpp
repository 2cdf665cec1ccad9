// The reference CPU forward pass for every supported architecture. It reads only ModelConfig's
// per-layer fields; the differences between step35 and qwen3moe are data (head counts, window,
// rotary dims and base, router kind, clamps, gate and shared expert present or not).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu_dot.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_ops.h"
#include "engine/cpu_packed_weights.h"
#include "engine/huge_page_buffer.h"

namespace flashfix {
namespace {

using namespace cpu;

// The sum of kAttendLanes floats folded as a 16-lane register: lane l + (l + 8), then + (l + 4), then
// (0 + 2) + (1 + 3).
float fold_lanes(const float* x) {
  float h8[8], h4[4];
  for (int l = 0; l < 8; ++l) h8[l] = x[l] + x[l + 8];
  for (int l = 0; l < 4; ++l) h4[l] = h8[l] + h8[l + 4];
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

// Block storage: per layer kind, one K and one V array per layer of that kind, a block's
// kKvBlockTokens positions at (block * kKvBlockTokens) rows; Full blocks also keep the trunk's final
// hidden state. V and the hidden state are position rows; K is lane-major within a block and head
// (element i of kv head h of offset u at [h][i][u]), the layout attend_scores reads 16 keys per load
// from (cpu_kernels.h). Blocks travel (read_block, write_block) as position rows, so the bytes the
// engine copies and the disk cache keeps are the same on every backend.
// MTP layers keep their rows in Full blocks even when their attention is windowed: the engine
// releases Sliding blocks one trunk window behind, and chained heads read further back.
class CpuKvStore final : public KvStore {
 public:
  CpuKvStore(const ModelConfig& c, int64_t full_blocks, int64_t sliding_blocks) : c_(c) {
    n_blocks_[0] = full_blocks, n_blocks_[1] = sliding_blocks;
    size_t floats = 0;
    auto add_span = [&](int kind, size_t width, bool lanes) {
      const Span span{floats, width, lanes};
      floats += size_t(n_blocks_[kind] * kKvBlockTokens) * width;
      row_floats_[kind] += width;
      return span;
    };
    slot_.resize(c.layers.size());
    for (int il = 0; il < int(c.layers.size()); ++il) {
      const LayerConfig& L = c.layers[size_t(il)];
      const int kind = int(kind_of(il));
      slot_[size_t(il)] = int(k_[kind].size());
      k_[kind].push_back(add_span(kind, size_t(L.n_head_kv * c.head_dim), true));
      v_[kind].push_back(add_span(kind, size_t(L.n_head_kv * c.v_head_dim), false));
    }
    hidden_ = add_span(0, size_t(c.n_embd), false);
    mem_ = HugePageBuffer(floats * sizeof(float), "the KV cache (lower --kv-budget-mb or --ctx-size)");
  }

  int64_t n_blocks(KvKind kind) const override { return n_blocks_[int(kind)]; }
  size_t block_bytes(KvKind kind) const override { return row_floats_[int(kind)] * kKvBlockTokens * sizeof(float); }

  KvKind kind_of(int il) const {
    const LayerConfig& L = c_.layers[size_t(il)];
    return L.sliding && !L.mtp ? KvKind::Sliding : KvKind::Full;
  }
  // One layer's K (lane-major blocks: [n_blocks][n_head_kv][head_dim][kKvBlockTokens]) or V (position
  // rows: [n_blocks * kKvBlockTokens][n_head_kv * dim]).
  float* k_base(int il) { return base(k_, il); }
  float* v_base(int il) { return base(v_, il); }
  float* hidden_row(int32_t block, int64_t off) { return at(hidden_) + size_t(block * kKvBlockTokens + off) * hidden_.width; }
  const float* hidden_row(int32_t block, int64_t off) const { return const_cast<CpuKvStore*>(this)->hidden_row(block, off); }

  void copy_block(KvKind kind, int32_t src, int32_t dst, int64_t n) override {
    for_each_span(kind, [&](float* base, const Span& span) {
      const float* from = base + size_t(src) * span.width * kKvBlockTokens;
      float* to = base + size_t(dst) * span.width * kKvBlockTokens;
      if (!span.lanes) return void(std::copy_n(from, size_t(n) * span.width, to));
      for (size_t i = 0; i < span.width; ++i) std::copy_n(from + i * kKvBlockTokens, n, to + i * kKvBlockTokens);
    });
  }
  void read_block(KvKind kind, int32_t block, std::span<uint8_t> out) const override {
    check_size(kind, out.size());
    auto* dst = reinterpret_cast<float*>(out.data());
    const_cast<CpuKvStore*>(this)->for_each_span(kind, [&](float* base, const Span& span) {
      const float* from = base + size_t(block) * span.width * kKvBlockTokens;
      if (!span.lanes) {
        dst = std::copy_n(from, span.width * kKvBlockTokens, dst);
        return;
      }
      for (int64_t u = 0; u < kKvBlockTokens; ++u)
        for (size_t i = 0; i < span.width; ++i) *dst++ = from[i * kKvBlockTokens + size_t(u)];
    });
  }
  void write_block(KvKind kind, int32_t block, std::span<const uint8_t> in) override {
    check_size(kind, in.size());
    auto* src = reinterpret_cast<const float*>(in.data());
    for_each_span(kind, [&](float* base, const Span& span) {
      float* to = base + size_t(block) * span.width * kKvBlockTokens;
      if (!span.lanes) {
        std::copy_n(src, span.width * kKvBlockTokens, to);
        src += span.width * kKvBlockTokens;
        return;
      }
      for (int64_t u = 0; u < kKvBlockTokens; ++u)
        for (size_t i = 0; i < span.width; ++i) to[i * kKvBlockTokens + size_t(u)] = *src++;
    });
  }

 private:
  // One array of `width` floats per position from `offset` floats into mem_: position rows, or
  // lane-major within each block (K).
  struct Span {
    size_t offset, width;
    bool lanes;
  };
  float* at(Span s) { return reinterpret_cast<float*>(mem_.data()) + s.offset; }
  float* base(const std::array<std::vector<Span>, 2>& arr, int il) { return at(arr[int(kind_of(il))][size_t(slot_[size_t(il)])]); }
  void check_size(KvKind kind, size_t bytes) const {
    if (bytes != block_bytes(kind)) throw std::invalid_argument("KV block buffer of the wrong size");
  }
  // Every array of a kind, in one fixed order (the block byte layout).
  template <class Fn>
  void for_each_span(KvKind kind, Fn&& fn) {
    const int k = int(kind);
    for (size_t i = 0; i < k_[k].size(); ++i) {
      fn(at(k_[k][i]), k_[k][i]);
      fn(at(v_[k][i]), v_[k][i]);
    }
    if (kind == KvKind::Full) fn(at(hidden_), hidden_);
  }

  const ModelConfig& c_;
  int64_t n_blocks_[2] = {0, 0};
  size_t row_floats_[2] = {0, 0};
  std::vector<int> slot_;                                  // layer -> index among the layers of its kind
  std::array<std::vector<Span>, 2> k_, v_;  // [kind][slot]
  Span hidden_;
  // Every array in one buffer of huge pages: attention walks a layer's cached rows per token, on 4
  // KB pages a TLB miss per page on long contexts. Its pages are zeros until written (resident
  // memory grows with the positions used), and a budget the machine cannot hold is refused here
  // with a clear error instead of ending in the OOM killer once the cache fills.
  HugePageBuffer mem_;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const Model& model, int n_threads, bool repack_weights) : model_(model), c_(model.config()), pool_(n_threads) {
    if (repack_weights) packed_ = std::make_unique<PackedWeights>(model, pool_);
    count_weight_bytes();
  }

  std::string_view name() const override { return "cpu"; }
  const Model& model() const override { return model_; }
  uint64_t weight_bytes_read() const override { return bytes_read_; }

  std::unique_ptr<KvStore> new_kv_store(int64_t full_blocks, int64_t sliding_blocks) override {
    if (full_blocks < 0 || sliding_blocks < 0) throw std::invalid_argument("negative KV block count");
    return std::make_unique<CpuKvStore>(c_, full_blocks, sliding_blocks);
  }
  size_t kv_block_bytes(KvKind kind) const override { return CpuKvStore(c_, 0, 0).block_bytes(kind); }

  void forward(KvStore& store_base, std::span<const BatchRun> runs) override {
    auto& store = static_cast<CpuKvStore&>(store_base);
    splitter_.run(c_, store, runs, [&](std::span<const int32_t> tokens, std::span<const UbatchToken> meta) { ubatch(store, tokens, meta); });
  }

  void logits_from_hidden(const KvStore& store_base, const BlockTable& blocks, int64_t pos0, int64_t n,
                          float* logits) override {
    const auto& store = static_cast<const CpuKvStore&>(store_base);
    std::vector<const float*>& rows = head_rows_;
    std::vector<float*>& outs = head_outs_;
    rows.clear(), outs.clear();
    for (int64_t p = pos0; p < pos0 + n; ++p) {
      const int32_t b = block_of(blocks.full, p);
      if (b < 0 || b >= store.n_blocks(KvKind::Full)) throw std::logic_error("logits of a position whose block is not held");
      rows.push_back(store.hidden_row(b, p % kKvBlockTokens));
      outs.push_back(logits + (p - pos0) * c_.n_vocab);
    }
    output_logits(rows, outs, model_.weights().output_norm, model_.weights().output);
  }

  int mtp_heads() const override { return c_.n_nextn; }
  void mtp_draft(KvStore& store, std::span<const MtpRun> runs) override;

 private:
  // One SwiGLU MLP applied to n rows: a routed expert over its tokens, or a dense/shared MLP over all.
  struct FfnGroup {
    MatView gate, up, down;
    ActRows in_gate, in_up;  // the rows, converted for gate's and up's weight types
    float clamp;
    float* out;  // [rows x n_embd]
  };

  void count_weight_bytes();
  // Views of a matrix, or of one expert's slab, with its packed copy when there is one.
  MatView mat(Weight w) const { return with_packed(cpu::mat(w), w, 0); }
  MatView expert(Weight w, int64_t e) const { return with_packed(cpu::expert(w, e), w, e); }
  MatView with_packed(MatView v, Weight w, int64_t e) const {
    if (packed_) v.packed = packed_->slab(w, e);
    return v;
  }
  void ubatch(CpuKvStore& store, std::span<const int32_t> tokens, std::span<const UbatchToken> meta);
  void decoder_layer(CpuKvStore& store, std::span<const UbatchToken> meta, int il, int64_t first_key);
  void check_mtp_run(const CpuKvStore& store, const MtpRun& r) const;
  void mtp_head(CpuKvStore& store, std::span<const MtpRun> runs, int k);
  void norm_rows(const float* x, Weight w, float* y, int64_t T);
  void add_norm_rows(const float* add, Weight w, int64_t T);
  void attention(CpuKvStore& store, std::span<const UbatchToken> meta, int il, int64_t first_key);
  void output_logits(std::span<const float* const> rows, std::span<float* const> outs, Weight norm, Weight head);
  void ffn(int il, int64_t T);
  int64_t route(int il, int64_t T);
  void route_token(float* p, const float* bias, float* sel, int64_t* rank, int64_t* order, float* weight) const;
  ActRows gather(const ActRows& src, std::vector<uint8_t>& buf);
  void run_ffn_groups();

  const Model& model_;
  const ModelConfig& c_;
  ThreadPool pool_;
  std::unique_ptr<PackedWeights> packed_;  // null: repacking off
  // Scratch reused across calls: sized on first use, never shrunk, so a decode step allocates nothing.
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, proj_, ff_, router_, sel_, hid_gate_, hid_up_, moe_out_, shexp_out_;
  std::vector<float> rope_tables_;  // [pool thread][n_rot]: each thread's (cos, sin) table
  std::vector<float> attend_weights_;       // [pool thread][head of a slice][key position]: attention's weights
  std::vector<const float*> attend_rows_;  // [pool thread][key position]: the value rows they weigh
  std::vector<uint8_t> cold_keys_;          // [token of the micro-batch]: attention prefetches its keys and values
  std::vector<uint8_t> gathered_gate_, gathered_up_, hid_q_;
  ActivationCache acts_;
  std::vector<MatmulJob> jobs_;
  std::vector<FfnGroup> groups_;
  std::vector<int64_t> order_, rank_, expert_count_, expert_first_, slot_token_, group_rows_, hid_off_, hid_q_off_;
  std::vector<float> token_weight_, slot_weight_, head_in_, head_out_;
  UbatchSplitter splitter_;
  std::vector<const float*> head_rows_;  // hidden rows that want logits, and where they go
  std::vector<float*> head_outs_;
  // MTP scratch: a chunk's rows (run, index in the run), the heads' input concat [e; h], each row's
  // output hidden state (the next head's input) and the last rows' logits.
  struct MtpRow {
    int32_t run;
    int64_t i;
  };
  std::vector<MtpRow> mtp_rows_;
  std::vector<UbatchToken> mtp_meta_;
  std::vector<float> mtp_cat_, mtp_hidden_, mtp_logits_;
  std::vector<int64_t> mtp_sel_, mtp_last_;
  // Weight bytes a micro-batch reads besides experts, embedding rows and the head; per layer, one
  // expert's gate, up and down; the running total (weight_bytes_read).
  uint64_t trunk_bytes_ = 0, embd_row_bytes_ = 0, head_bytes_ = 0;
  std::vector<uint64_t> expert_bytes_;
  std::vector<uint64_t> mtp_bytes_;  // per MTP head, as trunk_bytes_ (its head counted by output_logits)
  uint64_t bytes_read_ = 0;
};

void CpuBackend::count_weight_bytes() {
  const ModelWeights& w = model_.weights();
  embd_row_bytes_ = w.token_embd->nbytes / uint64_t(c_.n_vocab);
  head_bytes_ = w.output->nbytes + w.output_norm->nbytes;
  expert_bytes_.assign(c_.layers.size(), 0);
  mtp_bytes_.assign(size_t(c_.n_nextn), 0);
  for (int il = 0; il < int(c_.layers.size()); ++il) {
    const LayerWeights& lw = w.layers[size_t(il)];
    uint64_t& dense = il < c_.n_layer ? trunk_bytes_ : mtp_bytes_[size_t(il - c_.n_layer)];
    for (Weight t : {lw.attn_norm, lw.attn_q, lw.attn_k, lw.attn_v, lw.attn_output, lw.attn_q_norm, lw.attn_k_norm,
                     lw.attn_gate, lw.ffn_norm, lw.ffn_gate, lw.ffn_up, lw.ffn_down, lw.ffn_gate_inp, lw.exp_probs_b,
                     lw.ffn_gate_shexp, lw.ffn_up_shexp, lw.ffn_down_shexp, lw.nextn_eh_proj, lw.nextn_enorm, lw.nextn_hnorm})
      if (t) dense += t->nbytes;
    if (c_.layers[size_t(il)].moe)
      for (Weight t : {lw.ffn_gate_exps, lw.ffn_up_exps, lw.ffn_down_exps}) expert_bytes_[size_t(il)] += t->nbytes / uint64_t(c_.n_expert);
  }
}

void CpuBackend::norm_rows(const float* x, Weight w, float* y, int64_t T) {
  const int64_t E = c_.n_embd;
  const float* wf = reinterpret_cast<const float*>(w->data);
  pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int) {
    rms_norm_rows(x + t0 * E, wf, y + t0 * E, t1 - t0, E, c_.rms_eps);
  });
}

// x_ += add, then xn_ = the normed x_, token by token in one parallel loop: the residual add was a
// serial pass over T x n_embd floats with the other threads idle, and fusing it saves a handoff.
void CpuBackend::add_norm_rows(const float* add, Weight w, int64_t T) {
  const int64_t E = c_.n_embd;
  const float* wf = reinterpret_cast<const float*>(w->data);
  pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int) {
    add_to(&x_[size_t(t0 * E)], add + t0 * E, (t1 - t0) * E);
    rms_norm_rows(&x_[size_t(t0 * E)], wf, &xn_[size_t(t0 * E)], t1 - t0, E, c_.rms_eps);
  });
}

void CpuBackend::ubatch(CpuKvStore& store, std::span<const int32_t> tokens, std::span<const UbatchToken> meta) {
  const int64_t T = int64_t(tokens.size()), E = c_.n_embd;
  const ModelWeights& w = model_.weights();
  x_.resize(size_t(T * E));
  xn_.resize(size_t(T * E));
  for (int64_t t = 0; t < T; ++t) embed_row(w.token_embd, tokens[size_t(t)], &x_[size_t(t * E)]);
  bytes_read_ += trunk_bytes_ + uint64_t(T) * embd_row_bytes_;

  for (int il = 0; il < c_.n_layer; ++il) decoder_layer(store, meta, il, 0);
  std::vector<const float*>& rows = head_rows_;
  std::vector<float*>& outs = head_outs_;
  rows.clear(), outs.clear();
  for (int64_t t = 0; t < T; ++t) {
    const UbatchToken& m = meta[size_t(t)];
    std::copy_n(&x_[size_t(t * E)], E, store.hidden_row(block_of(m.blocks->full, m.pos), m.pos % kKvBlockTokens));
    if (m.logits) rows.push_back(&x_[size_t(t * E)]), outs.push_back(m.logits);
  }
  output_logits(rows, outs, w.output_norm, w.output);
}

// One decoder block (trunk or MTP) over the rows in x_, in place: each token attends to its
// sequence's keys of this layer from position first_key on (and within the window), then the FFN.
void CpuBackend::decoder_layer(CpuKvStore& store, std::span<const UbatchToken> meta, int il, int64_t first_key) {
  const int64_t T = int64_t(meta.size());
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  norm_rows(x_.data(), lw.attn_norm, xn_.data(), T);
  attention(store, meta, il, first_key);
  add_norm_rows(proj_.data(), lw.ffn_norm, T);
  ffn(il, T);  // adds its output into x_
}

// The output head over scattered hidden rows, a bounded group at a time (a group's logits are
// [group x n_vocab] of scratch; the head's weights are read once per group).
void CpuBackend::output_logits(std::span<const float* const> rows, std::span<float* const> outs, Weight norm, Weight head) {
  constexpr size_t kGroup = 32;
  const int64_t E = c_.n_embd, V = c_.n_vocab;
  for (size_t g = 0; g < rows.size(); g += kGroup) {
    const size_t n = std::min(kGroup, rows.size() - g);
    bytes_read_ += head_bytes_;
    head_in_.resize(n * size_t(E));
    for (size_t i = 0; i < n; ++i)
      rms_norm(rows[g + i], reinterpret_cast<const float*>(norm->data), &head_in_[i * size_t(E)], E, c_.rms_eps);
    if (n == 1) {
      matmul(pool_, mat(head), head_in_.data(), 1, outs[g]);
      continue;
    }
    head_out_.resize(n * size_t(V));
    matmul(pool_, mat(head), head_in_.data(), int64_t(n), head_out_.data());
    for (size_t i = 0; i < n; ++i) std::copy_n(&head_out_[i * size_t(V)], V, outs[g + i]);
  }
}

void CpuBackend::attention(CpuKvStore& store, std::span<const UbatchToken> meta, int il, int64_t first_key) {
  const int64_t T = int64_t(meta.size());
  const LayerConfig& L = c_.layers[size_t(il)];
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  const int64_t H = L.n_head, Hkv = L.n_head_kv, hd = c_.head_dim, vd = c_.v_head_dim, E = c_.n_embd;
  const int64_t qw = H * hd, kw = Hkv * hd, vw = Hkv * vd;
  // KV addressing lives here and only here: where position pos of kv head h of a token's sequence
  // is stored (its block table for this layer's kind, then the row in the block).
  const bool in_sliding = store.kind_of(il) == KvKind::Sliding;
  auto table = [&](int64_t t) -> const std::vector<int32_t>& {
    return in_sliding ? meta[size_t(t)].blocks->sliding : meta[size_t(t)].blocks->full;
  };
  float* const kbase = store.k_base(il);
  float* const vbase = store.v_base(il);
  auto row = [](const std::vector<int32_t>& blocks, int64_t pos) {
    return int64_t(blocks[size_t(pos / kKvBlockTokens)]) * kKvBlockTokens + pos % kKvBlockTokens;
  };
  // Kv head h's keys of pos's block, lane-major (CpuKvStore): pos's key element i at [i * kKvBlockTokens + pos % kKvBlockTokens].
  static_assert(kKvBlockTokens == kAttendLanes);
  auto keys_at = [&](const std::vector<int32_t>& blocks, int64_t pos, int64_t h) {
    return kbase + int64_t(blocks[size_t(pos / kKvBlockTokens)]) * kKvBlockTokens * kw + h * hd * kKvBlockTokens;
  };
  auto value_at = [&](const std::vector<int32_t>& blocks, int64_t pos, int64_t h) { return vbase + row(blocks, pos) * vw + h * vd; };
  // How many of the n keys from pos on share pos's block: up to the block's end.
  auto keys_in_run = [](int64_t pos, int64_t n) { return std::min(n, kKvBlockTokens - pos % kKvBlockTokens); };

  // q, k, v and the gate read the normed input, converted once, in one parallel loop.
  q_.resize(size_t(T * qw));
  k_.resize(size_t(T * kw));
  v_.resize(size_t(T * vw));
  gate_.resize(size_t(T * H));
  acts_.reset(xn_.data(), T, E);
  jobs_.clear();
  jobs_.push_back({mat(lw.attn_q), acts_.get(pool_, lw.attn_q->type), q_.data()});
  jobs_.push_back({mat(lw.attn_k), acts_.get(pool_, lw.attn_k->type), k_.data()});
  jobs_.push_back({mat(lw.attn_v), acts_.get(pool_, lw.attn_v->type), v_.data()});
  if (L.attn_gate) jobs_.push_back({mat(lw.attn_gate), acts_.get(pool_, lw.attn_gate->type), gate_.data()});
  matmul_jobs(pool_, jobs_);

  const float* freq_factors =
      L.rope.use_freq_factors ? reinterpret_cast<const float*>(model_.weights().rope_freqs->data) : nullptr;
  const float* qn = reinterpret_cast<const float*>(lw.attn_q_norm->data);
  const float* kn = reinterpret_cast<const float*>(lw.attn_k_norm->data);
  // One (cos, sin) table per pool thread, sized before the loop: which threads take a token varies
  // from step to step, so growing a thread's table on its first use would allocate mid-decode.
  const size_t table_floats = size_t(L.rope.n_rot);
  if (rope_tables_.size() < table_floats * size_t(pool_.size())) rope_tables_.resize(table_floats * size_t(pool_.size()));
  pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int thread) {
    float* cos_sin = &rope_tables_[size_t(thread) * table_floats];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pos = meta[size_t(t)].pos;
      rope_table(pos, L.rope, freq_factors, cos_sin);  // shared by every head of the token
      rms_norm_rows(&q_[size_t(t * qw)], qn, &q_[size_t(t * qw)], H, hd, c_.rms_eps);
      for (int64_t h = 0; h < H; ++h) rope_apply(&q_[size_t(t * qw + h * hd)], cos_sin, L.rope.n_rot);
      rms_norm_rows(&k_[size_t(t * kw)], kn, &k_[size_t(t * kw)], Hkv, hd, c_.rms_eps);
      for (int64_t h = 0; h < Hkv; ++h) rope_apply(&k_[size_t(t * kw + h * hd)], cos_sin, L.rope.n_rot);
      // Every token's K/V goes into its block before any token attends: tokens of one sequence in
      // this micro-batch see each other.
      for (int64_t h = 0; h < Hkv; ++h) {
        float* lane = keys_at(table(t), pos, h) + pos % kKvBlockTokens;
        for (int64_t i = 0; i < hd; ++i) lane[i * kKvBlockTokens] = k_[size_t(t * kw + h * hd + i)];
      }
      std::copy_n(&v_[size_t(t * vw)], vw, value_at(table(t), pos, 0));
    }
  });

  // The reference's attention for a prompt, in its order of float operations (its KQ product, soft
  // max and KQV product; /work/notes/kernel-order.md): per head, the scores are dot_f32_vec(q, k) *
  // scale; the weights expf_vector(x - max) / their sum, where the sum adds the 16-key chunks (keys
  // 16c..16c+15 by position) each folded like a 16-lane register, in double, and the weights are then
  // multiplied by float(1 / sum); the output element d sums p * v over the keys in 16 lanes (key j
  // in lane j % 16, one fma per key), folded once at the end. On quantized models a last-bit
  // difference here moves 8-bit activations across rounding boundaries and routes tokens differently.
  // A task takes a token, a KV head and a slice of the query heads that share it: the keys are scored
  // for the slice's heads together (each key loaded once per pair of heads) and the value rows summed
  // for them slice of elements by slice (from L1 after the first head). Slices are whole groups
  // whenever there is a task per thread: splitting a group makes every head of it read the keys again.
  const CpuKernels& kern = kernels();
  const float scale = 1.f / std::sqrt(float(hd));
  const int64_t group = H / Hkv;
  const int64_t slice = T * Hkv >= pool_.size() ? std::min<int64_t>(group, kAttendHeads) : 1;
  const int64_t slices = (group + slice - 1) / slice;
  // Scratch per pool thread, sized before the loop (decode must not allocate once warmed up): the
  // slice's weights and the value rows for every key position of the longest window here, rounded up
  // so that a growing context regrows it rarely.
  int64_t most_keys = 0;
  for (const UbatchToken& m : meta)
    most_keys = std::max(most_keys, m.pos + 1 - std::max(first_key, L.sliding ? m.pos - c_.sliding_window + 1 : 0));
  const size_t key_room = size_t((most_keys + 2 * kAttendLanes + 511) / 512 * 512);
  if (attend_weights_.size() < size_t(slice) * key_room * size_t(pool_.size()))
    attend_weights_.resize(size_t(slice) * key_room * size_t(pool_.size()));
  if (attend_rows_.size() < key_room * size_t(pool_.size())) attend_rows_.resize(key_room * size_t(pool_.size()));
  att_.resize(size_t(T * H * vd));
  // Whose keys are cold: a decode step's or verify pass's tokens read their sequence's rows from DRAM
  // (the weights streamed since evicted them), all at once on the pool's threads, as does the first
  // token of a prompt's run. The next tokens of a longer run read the same rows again, from L3, and
  // prefetching for them too stalled the task loop on a full miss queue (4096-token prefill 5-8%
  // slower, decode no faster).
  if (cold_keys_.size() < size_t(T)) cold_keys_.resize(size_t(T));
  for (int64_t t0 = 0, t1; t0 < T; t0 = t1) {
    for (t1 = t0 + 1; t1 < T && meta[size_t(t1)].blocks == meta[size_t(t0)].blocks;) ++t1;
    for (int64_t t = t0; t < t1; ++t) cold_keys_[size_t(t)] = t == t0 || t1 - t0 <= kTileTokens;
  }
  pool_.parallel_for(T * Hkv * slices, [&](int64_t i0, int64_t i1, int thread) {
    float* const weights = &attend_weights_[size_t(slice) * key_room * size_t(thread)];
    const float** const rows = &attend_rows_[key_room * size_t(thread)];
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / (Hkv * slices), kvh = i / slices % Hkv, h0 = kvh * group + i % slices * slice;
      const int nh = int(std::min(slice, (kvh + 1) * group - h0));
      const int64_t pos = meta[size_t(t)].pos;
      const std::vector<int32_t>& blocks = table(t);
      const int64_t start = std::max(first_key, L.sliding ? pos - c_.sliding_window + 1 : 0);
      // Positions from chunk0 (whole 16-key chunks): head h's weight for position chunk0 + u at
      // weights[h * key_room + u] (zero outside [start, pos], for the softmax's chunk sums), its value
      // row at rows[u].
      const int64_t chunk0 = start / kAttendLanes * kAttendLanes, first = start - chunk0, n = pos + 1 - chunk0;
      const int64_t padded = (n + kAttendLanes - 1) / kAttendLanes * kAttendLanes;
      const float* q = &q_[size_t(t * qw + h0 * hd)];
      const bool cold = cold_keys_[size_t(t)];
      for (int64_t j0 = start; j0 <= pos;) {
        const int run = int(keys_in_run(j0, pos + 1 - j0));
        // Cold keys: the next run's keys and this run's values are asked for now (into L2: asking
        // for L1 was barely faster than not asking), or the kernels would wait on one row's lines at
        // a time (a third faster on cold keys). Values are summed only after every score, so this
        // run's have the rest of the scoring to arrive.
        for (int64_t e = 0; cold && j0 + run <= pos && e < hd * kKvBlockTokens; e += 64 / int64_t(sizeof(float)))
          __builtin_prefetch(keys_at(blocks, j0 + run, kvh) + e, 0, 2);
        for (int64_t j = j0; cold && j < j0 + run; ++j)
          for (int64_t e = 0; e < vd; e += 64 / int64_t(sizeof(float))) __builtin_prefetch(value_at(blocks, j, kvh) + e, 0, 2);
        kern.attend_scores(q, size_t(hd), nh, keys_at(blocks, j0, kvh), int(j0 % kKvBlockTokens), run, hd, weights + (j0 - chunk0), key_room);
        j0 += run;
      }
      for (int h = 0; h < nh; ++h) {
        float* x = weights + size_t(h) * key_room;
        kern.attend_exp(x + first, n - first, scale);
        std::fill(x, x + first, 0.f);
        std::fill(x + n, x + padded, 0.f);
        double sum = 0;
        for (int64_t c = 0; c < padded; c += kAttendLanes) sum += double(fold_lanes(x + c));
        kern.scale_f32(float(1.0 / sum), x + first, n - first);
      }
      for (int64_t u = first; u < n; ++u) rows[u] = value_at(blocks, chunk0 + u, kvh);
      kern.attend_values(&att_[size_t(t * H * vd + h0 * vd)], size_t(vd), nh, vd, first, n, rows, weights, key_room);
    }
  });

  if (L.attn_gate) {  // head-wise gate from the normed layer input, applied before the output projection
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const float g = sigmoid(gate_[size_t(t * H + h)]);
        float* out = &att_[size_t(t * H * vd + h * vd)];
        for (int64_t d = 0; d < vd; ++d) out[d] *= g;
      }
  }
  proj_.resize(size_t(T * E));
  matmul(pool_, mat(lw.attn_output), att_.data(), T, proj_.data());
}

// Every group's gate and up products in one parallel loop; then act(gate) * up, with the SwiGLU
// clamp when limit > 0 (up to [-L, L], silu(gate) to <= L), converted for down, in one loop over all
// rows; then every group's down product in one loop.
void CpuBackend::run_ffn_groups() {
  const size_t G = groups_.size();
  // Prefix sums over the groups: rows, hidden floats, and bytes of hidden rows converted for down.
  group_rows_.assign(1, 0);
  hid_off_.assign(1, 0);
  hid_q_off_.assign(1, 0);
  for (const FfnGroup& g : groups_) {
    const int64_t n = g.in_gate.n_tok;
    group_rows_.push_back(group_rows_.back() + n);
    hid_off_.push_back(hid_off_.back() + n * g.gate.n_out);
    hid_q_off_.push_back(hid_q_off_.back() + n * int64_t(row_bytes(activation_type(g.down.type), g.down.n_in)));
  }
  if (hid_gate_.size() < size_t(hid_off_.back())) hid_gate_.resize(size_t(hid_off_.back())), hid_up_.resize(size_t(hid_off_.back()));
  if (hid_q_.size() < size_t(hid_q_off_.back())) hid_q_.resize(size_t(hid_q_off_.back()));

  jobs_.clear();
  for (size_t g = 0; g < G; ++g) {
    jobs_.push_back({groups_[g].gate, groups_[g].in_gate, hid_gate_.data() + hid_off_[g]});
    jobs_.push_back({groups_[g].up, groups_[g].in_up, hid_up_.data() + hid_off_[g]});
  }
  matmul_jobs(pool_, jobs_);

  const CpuKernels& kern = kernels();
  pool_.parallel_for(group_rows_.back(), [&](int64_t r0, int64_t r1, int) {
    size_t g = size_t(std::upper_bound(group_rows_.begin(), group_rows_.end(), r0) - group_rows_.begin()) - 1;
    for (int64_t r = r0; r < r1; ++r) {
      while (r >= group_rows_[g + 1]) ++g;
      const FfnGroup& grp = groups_[g];
      const int64_t F = grp.gate.n_out, local = r - group_rows_[g];
      float* hg = hid_gate_.data() + hid_off_[g] + local * F;
      const float* hu = hid_up_.data() + hid_off_[g] + local * F;
      kern.silu_f32(hg, hg, F);
      if (grp.clamp > 0.f) {
        for (int64_t i = 0; i < F; ++i) hg[i] = std::min(hg[i], grp.clamp) * std::clamp(hu[i], -grp.clamp, grp.clamp);
      } else {
        multiply_by(hg, hu, F);
      }
      const TensorType at = activation_type(grp.down.type);
      if (at != TensorType::F32)
        quantize_activation_fast(at, hg, hid_q_.data() + hid_q_off_[g] + size_t(local) * row_bytes(at, F), F);
    }
  });

  jobs_.clear();
  for (size_t g = 0; g < G; ++g) {
    const FfnGroup& grp = groups_[g];
    const TensorType at = activation_type(grp.down.type);
    const uint8_t* a = at == TensorType::F32 ? reinterpret_cast<const uint8_t*>(hid_gate_.data() + hid_off_[g])
                                             : hid_q_.data() + hid_q_off_[g];
    jobs_.push_back({grp.down, ActRows{at, a, row_bytes(at, grp.down.n_in), grp.in_gate.n_tok}, grp.out});
  }
  matmul_jobs(pool_, jobs_);
}

// Routes every token: probabilities from the router, selection on probabilities plus the optional
// bias, weights from the unbiased probabilities, renormalised and scaled. Leaves the (token, weight)
// pairs grouped by expert in slot_token_/slot_weight_ (expert e owns slots expert_first_[e]..+count,
// tokens ascending) and returns the number of slots (T * K).
int64_t CpuBackend::route(int il, int64_t T) {
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  const int64_t X = c_.n_expert, K = c_.n_expert_used;
  router_.resize(size_t(T * X));
  jobs_.assign(1, {mat(lw.ffn_gate_inp), acts_.get(pool_, lw.ffn_gate_inp->type), router_.data()});
  matmul_jobs(pool_, jobs_);
  const float* bias = lw.exp_probs_b ? reinterpret_cast<const float*>(lw.exp_probs_b->data) : nullptr;
  order_.resize(size_t(T * K));  // selected experts per token, in rank order
  token_weight_.resize(size_t(T * K));
  // Tokens are routed independently, in parallel; each pool thread has its own selection scratch
  // (sized before the loop, so decode allocates nothing once warm).
  if (sel_.size() < size_t(X * pool_.size())) sel_.resize(size_t(X * pool_.size())), rank_.resize(size_t(X * pool_.size()));
  pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int thread) {
    float* const sel = &sel_[size_t(X * thread)];
    int64_t* const rank = &rank_[size_t(X * thread)];
    for (int64_t t = t0; t < t1; ++t) route_token(&router_[size_t(t * X)], bias, sel, rank, &order_[size_t(t * K)],
                                                 &token_weight_[size_t(t * K)]);
  });

  // Counting sort of (token, rank) pairs by expert keeps tokens ascending within each expert.
  expert_count_.assign(size_t(X), 0);
  for (int64_t i = 0; i < T * K; ++i) ++expert_count_[size_t(order_[size_t(i)])];
  expert_first_.assign(size_t(X) + 1, 0);
  for (int64_t e = 0; e < X; ++e) expert_first_[size_t(e) + 1] = expert_first_[size_t(e)] + expert_count_[size_t(e)];
  slot_token_.resize(size_t(T * K));
  std::vector<int64_t>& fill = expert_count_;  // next free slot per expert
  std::copy_n(expert_first_.begin(), X, fill.begin());
  slot_weight_.resize(size_t(T * K));
  for (int64_t i = 0; i < T * K; ++i) {
    const int64_t slot = fill[size_t(order_[size_t(i)])]++;
    slot_token_[size_t(slot)] = i / K;
    slot_weight_[size_t(slot)] = token_weight_[size_t(i)];
  }
  return T * K;
}

// One token's routing (route): p, its router row, becomes probabilities in place; its K selected
// experts in rank order go to order, their weights to weight. sel and rank: n_expert floats and
// indices of scratch.
void CpuBackend::route_token(float* p, const float* bias, float* sel, int64_t* rank, int64_t* order, float* weight) const {
  const int64_t X = c_.n_expert, K = c_.n_expert_used;
  const CpuKernels& kern = kernels();
  if (c_.router == RouterKind::Softmax) {
    // The reference's soft_max: whole 16-value chunks by its vector exp, each folded like a 16-lane
    // register, the rest by expf; the sum in double; then a multiply by float(1 / sum).
    const float mx = *std::max_element(p, p + X);
    for (int64_t e = 0; e < X; ++e) p[e] -= mx;
    const int64_t body = X / kAttendLanes * kAttendLanes;
    kern.exp_vector_f32(p, p, body);
    kern.exp_f32(p + body, p + body, X - body);
    double sum = 0;
    for (int64_t e = 0; e < body; e += kAttendLanes) sum += double(fold_lanes(p + e));
    for (int64_t e = body; e < X; ++e) sum += double(p[e]);
    kern.scale_f32(float(1.0 / sum), p, X);
  } else {
    for (int64_t e = 0; e < X; ++e) p[e] = sigmoid(p[e]);
  }
  for (int64_t e = 0; e < X; ++e) sel[e] = bias ? p[e] + bias[e] : p[e];
  std::iota(rank, rank + X, 0);
  std::partial_sort(rank, rank + K, rank + X, [&](int64_t a, int64_t b) { return sel[a] > sel[b] || (sel[a] == sel[b] && a < b); });
  // The reference's weights: the selected probabilities summed in double, clamped, divided by (not
  // multiplied by the inverse), then scaled where the model scales.
  double wsum = 0;
  for (int64_t k = 0; k < K; ++k) wsum += double(p[rank[k]]);
  const float norm = std::max(float(wsum), 6.103515625e-5f);
  for (int64_t k = 0; k < K; ++k) {
    order[k] = rank[k];
    float w = p[rank[k]];
    if (c_.router_renorm) w /= norm;
    if (c_.expert_weights_scale != 1.f) w *= c_.expert_weights_scale;
    weight[k] = w;
  }
}

// The rows of src for every slot's token, in slot order: each expert then reads a contiguous block.
ActRows CpuBackend::gather(const ActRows& src, std::vector<uint8_t>& buf) {
  const int64_t n = int64_t(slot_token_.size());
  if (buf.size() < src.row_bytes * size_t(n)) buf.resize(src.row_bytes * size_t(n));
  uint8_t* const dst = buf.data();
  auto copy = [&](int64_t s0, int64_t s1, int) {
    for (int64_t s = s0; s < s1; ++s)
      std::memcpy(dst + size_t(s) * src.row_bytes, src.data + size_t(slot_token_[size_t(s)]) * src.row_bytes, src.row_bytes);
  };
  // A decode step's few rows copy in less time than a handoff to the pool takes (microseconds).
  constexpr int64_t kPoolRows = 64;
  if (n < kPoolRows) copy(0, n, 0);
  else pool_.parallel_for(n, copy);
  return {src.type, buf.data(), src.row_bytes, n};
}

void CpuBackend::ffn(int il, int64_t T) {
  const LayerConfig& L = c_.layers[size_t(il)];
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  const int64_t E = c_.n_embd;
  acts_.reset(xn_.data(), T, E);
  ff_.resize(size_t(T * E));
  groups_.clear();
  if (!L.moe) {
    groups_.push_back({mat(lw.ffn_gate), mat(lw.ffn_up), mat(lw.ffn_down), acts_.get(pool_, lw.ffn_gate->type),
                       acts_.get(pool_, lw.ffn_up->type), L.clamp_shexp, ff_.data()});
    run_ffn_groups();
    pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int) {
      add_to(&x_[size_t(t0 * E)], &ff_[size_t(t0 * E)], (t1 - t0) * E);
    });
    return;
  }

  // Experts are grouped by the tokens routed to them (each expert's weights are read once per
  // micro-batch, and in decode only the K selected ones are touched); the shared expert joins the same
  // parallel loops over all tokens.
  const int64_t slots = route(il, T);
  const ActRows in_gate = gather(acts_.get(pool_, lw.ffn_gate_exps->type), gathered_gate_);
  const ActRows in_up = activation_type(lw.ffn_up_exps->type) == in_gate.type
                            ? in_gate
                            : gather(acts_.get(pool_, lw.ffn_up_exps->type), gathered_up_);
  moe_out_.resize(size_t(slots * E));
  for (int64_t e = 0; e < c_.n_expert; ++e) {
    const int64_t first = expert_first_[size_t(e)], n = expert_first_[size_t(e) + 1] - first;
    if (n == 0) continue;
    bytes_read_ += expert_bytes_[size_t(il)];
    auto rows = [&](const ActRows& a) { return ActRows{a.type, a.data + size_t(first) * a.row_bytes, a.row_bytes, n}; };
    groups_.push_back({expert(lw.ffn_gate_exps, e), expert(lw.ffn_up_exps, e), expert(lw.ffn_down_exps, e), rows(in_gate),
                       rows(in_up), L.clamp_exp, moe_out_.data() + first * E});
  }
  if (L.shared_expert) {
    shexp_out_.resize(size_t(T * E));
    groups_.push_back({mat(lw.ffn_gate_shexp), mat(lw.ffn_up_shexp), mat(lw.ffn_down_shexp),
                       acts_.get(pool_, lw.ffn_gate_shexp->type), acts_.get(pool_, lw.ffn_up_shexp->type), L.clamp_shexp,
                       shexp_out_.data()});
  }
  run_ffn_groups();

  // Per token: the weighted sum from 0 in expert order, then the shared expert (the reference's order
  // of additions), then the residual add. A chunk of tokens takes, expert by expert, the run of that
  // expert's slots that holds its tokens (tokens ascend within an expert's slots): the slot rows are
  // read in address order, where walking each token's own slots read them scattered (twice the time).
  const int64_t X = c_.n_expert;
  pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int) {
    std::fill(&ff_[size_t(t0 * E)], &ff_[size_t(t1 * E)], 0.f);
    for (int64_t e = 0; e < X; ++e) {
      const auto begin = slot_token_.begin() + expert_first_[size_t(e)], end = slot_token_.begin() + expert_first_[size_t(e) + 1];
      const auto lo = std::lower_bound(begin, end, t0), hi = std::lower_bound(lo, end, t1);
      for (int64_t s = lo - slot_token_.begin(); s < hi - slot_token_.begin(); ++s)
        add_scaled(&ff_[size_t(slot_token_[size_t(s)] * E)], slot_weight_[size_t(s)], &moe_out_[size_t(s * E)], E);
    }
    if (L.shared_expert) add_to(&ff_[size_t(t0 * E)], &shexp_out_[size_t(t0 * E)], (t1 - t0) * E);
    add_to(&x_[size_t(t0 * E)], &ff_[size_t(t0 * E)], (t1 - t0) * E);
  });
}

void CpuBackend::check_mtp_run(const CpuKvStore& store, const MtpRun& r) const {
  const int64_t c = int64_t(r.tokens.size()) - 1;
  if (r.n_heads < 1 || r.n_heads > c_.n_nextn)
    throw std::invalid_argument("an MTP run asks for " + std::to_string(r.n_heads) + " heads; the model has " +
                                std::to_string(c_.n_nextn));
  if (!r.blocks || !r.drafts || c < 1 || r.from < 1 || r.from > c) throw std::invalid_argument("malformed MTP run");
  for (int32_t t : r.tokens)
    if (t < 0 || t >= c_.n_vocab) throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary");
  for (int64_t p = 0; p < c + r.n_heads; p += kKvBlockTokens) {
    const int32_t b = block_of(r.blocks->full, p);
    if (b < 0 || b >= store.n_blocks(KvKind::Full)) throw std::logic_error("MTP run at a position whose KV block is not held");
  }
}

void CpuBackend::mtp_draft(KvStore& store_base, std::span<const MtpRun> runs) {
  auto& store = static_cast<CpuKvStore&>(store_base);
  for (const MtpRun& r : runs) check_mtp_run(store, r);
  // A head's row needs only the previous head's output at the same row and its own K/V of earlier
  // positions, so the rows of all runs go in chunks of a micro-batch, every head over a chunk in turn.
  int max_heads = 0;
  for (const MtpRun& r : runs) max_heads = std::max(max_heads, r.n_heads);
  auto flush = [&] {
    for (int k = 1; k <= max_heads; ++k) mtp_head(store, runs, k);
    mtp_rows_.clear();
  };
  mtp_rows_.clear();
  for (size_t r = 0; r < runs.size(); ++r)
    for (int64_t i = 0; i < int64_t(runs[r].tokens.size()) - runs[r].from; ++i) {
      mtp_rows_.push_back({int32_t(r), i});
      if (int64_t(mtp_rows_.size()) == kMaxUbatchTokens) flush();
    }
  if (!mtp_rows_.empty()) flush();
}

// Head k over the chunk's rows of the runs that ask for it: row i of a run sits at position
// s = from + k - 1 + i and reads the token there (a draft of head s - c past the last accepted
// token c) and the previous head's output at s - 1 (the trunk's stored hidden state for head 1).
void CpuBackend::mtp_head(CpuKvStore& store, std::span<const MtpRun> runs, int k) {
  const ModelWeights& w = model_.weights();
  const int il = c_.n_layer + k - 1;
  const LayerWeights& lw = w.layers[size_t(il)];
  const int64_t E = c_.n_embd, V = c_.n_vocab, N = int64_t(mtp_rows_.size());
  mtp_sel_.clear(), mtp_meta_.clear();
  for (int64_t n = 0; n < N; ++n) {
    const MtpRun& r = runs[size_t(mtp_rows_[size_t(n)].run)];
    if (r.n_heads < k) continue;
    mtp_sel_.push_back(n);
    mtp_meta_.push_back({r.blocks, r.from + k - 1 + mtp_rows_[size_t(n)].i, nullptr});
  }
  const int64_t T = int64_t(mtp_sel_.size());
  if (T == 0) return;
  if (mtp_hidden_.size() < size_t(N * E)) mtp_hidden_.resize(size_t(N * E));
  mtp_cat_.resize(size_t(T * 2 * E));
  const Weight embd = lw.nextn_embed_tokens ? lw.nextn_embed_tokens : w.token_embd;
  const auto* enorm = reinterpret_cast<const float*>(lw.nextn_enorm->data);
  const auto* hnorm = reinterpret_cast<const float*>(lw.nextn_hnorm->data);
  pool_.parallel_for(T, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = mtp_sel_[size_t(t)], s = mtp_meta_[size_t(t)].pos;
      const MtpRun& r = runs[size_t(mtp_rows_[size_t(n)].run)];
      const int64_t c = int64_t(r.tokens.size()) - 1;
      float* cat = &mtp_cat_[size_t(t * 2 * E)];
      embed_row(embd, s <= c ? r.tokens[size_t(s)] : r.drafts[size_t(s - c - 1)], cat);
      rms_norm(cat, enorm, cat, E, c_.rms_eps);
      const float* h = k == 1 ? store.hidden_row(block_of(r.blocks->full, s - 1), (s - 1) % kKvBlockTokens)
                              : &mtp_hidden_[size_t(n * E)];
      rms_norm(h, hnorm, cat + E, E, c_.rms_eps);
    }
  });
  x_.resize(size_t(T * E));
  xn_.resize(size_t(T * E));
  bytes_read_ += mtp_bytes_[size_t(k - 1)] + uint64_t(T) * embd_row_bytes_;
  matmul(pool_, mat(lw.nextn_eh_proj), mtp_cat_.data(), T, x_.data());
  decoder_layer(store, mtp_meta_, il, k);

  head_rows_.clear(), head_outs_.clear(), mtp_last_.clear();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t n = mtp_sel_[size_t(t)];
    const MtpRow& row = mtp_rows_[size_t(n)];
    float* hidden = &mtp_hidden_[size_t(n * E)];
    std::copy_n(&x_[size_t(t * E)], E, hidden);
    const MtpRun& r = runs[size_t(row.run)];
    if (row.i == int64_t(r.tokens.size()) - 1 - r.from) head_rows_.push_back(hidden), mtp_last_.push_back(row.run);
  }
  if (mtp_logits_.size() < head_rows_.size() * size_t(V)) mtp_logits_.resize(head_rows_.size() * size_t(V));
  for (size_t j = 0; j < head_rows_.size(); ++j) head_outs_.push_back(&mtp_logits_[j * size_t(V)]);
  output_logits(head_rows_, head_outs_, lw.nextn_head_norm ? lw.nextn_head_norm : w.output_norm,
                lw.nextn_head ? lw.nextn_head : w.output);
  for (size_t j = 0; j < head_rows_.size(); ++j) {
    const MtpRun& r = runs[size_t(mtp_last_[j])];
    const float* logits = head_outs_[j];
    r.drafts[k - 1] = int32_t(std::max_element(logits, logits + V) - logits);
    if (r.logits) std::copy_n(logits, V, r.logits + (k - 1) * V);
  }
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const Model& model, int n_threads, bool repack_weights) {
  return std::make_unique<CpuBackend>(model, n_threads, repack_weights);
}

}  // namespace flashfix
