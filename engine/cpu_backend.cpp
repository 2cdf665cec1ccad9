// The reference CPU forward pass for every supported architecture. It reads only ModelConfig's
// per-layer fields; the differences between step35 and qwen3moe are data (head counts, window,
// rotary dims and base, router kind, clamps, gate and shared expert present or not).
#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu_ops.h"

namespace flashfix {
namespace {

using namespace cpu;

// Block storage: per layer kind, one K and one V array per layer of that kind, indexed by
// (block * kKvBlockTokens + offset) rows; Full blocks also keep the trunk's final hidden state.
class CpuKvStore final : public KvStore {
 public:
  CpuKvStore(const ModelConfig& c, int64_t full_blocks, int64_t sliding_blocks) : c_(c) {
    n_blocks_[0] = full_blocks, n_blocks_[1] = sliding_blocks;
    slot_.resize(size_t(c.n_layer));
    for (int il = 0; il < c.n_layer; ++il) {
      const LayerConfig& L = c.layers[size_t(il)];
      const int kind = L.sliding ? 1 : 0;
      slot_[size_t(il)] = int(k_[kind].size());
      const auto rows = size_t(n_blocks_[kind] * kKvBlockTokens);
      k_[kind].emplace_back(rows * size_t(L.n_head_kv * c.head_dim), 0.f);
      v_[kind].emplace_back(rows * size_t(L.n_head_kv * c.v_head_dim), 0.f);
      row_floats_[kind] += size_t(L.n_head_kv) * size_t(c.head_dim + c.v_head_dim);
    }
    row_floats_[0] += size_t(c.n_embd);
    hidden_.assign(size_t(full_blocks * kKvBlockTokens * c.n_embd), 0.f);
  }

  int64_t n_blocks(KvKind kind) const override { return n_blocks_[int(kind)]; }
  size_t block_bytes(KvKind kind) const override { return row_floats_[int(kind)] * kKvBlockTokens * sizeof(float); }

  float* k_row(int il, int32_t block, int64_t off) { return row(k_, il, block, off, c_.head_dim); }
  float* v_row(int il, int32_t block, int64_t off) { return row(v_, il, block, off, c_.v_head_dim); }
  float* hidden_row(int32_t block, int64_t off) { return &hidden_[size_t((block * kKvBlockTokens + off) * c_.n_embd)]; }
  const float* hidden_row(int32_t block, int64_t off) const { return const_cast<CpuKvStore*>(this)->hidden_row(block, off); }

  void copy_block(KvKind kind, int32_t src, int32_t dst, int64_t n) override {
    for_each_span(kind, [&](float* base, size_t per_row) {
      std::copy_n(base + size_t(src) * per_row * kKvBlockTokens, size_t(n) * per_row, base + size_t(dst) * per_row * kKvBlockTokens);
    });
  }
  void read_block(KvKind kind, int32_t block, std::span<uint8_t> out) const override {
    check_size(kind, out.size());
    auto* dst = reinterpret_cast<float*>(out.data());
    const_cast<CpuKvStore*>(this)->for_each_span(kind, [&](float* base, size_t per_row) {
      dst = std::copy_n(base + size_t(block) * per_row * kKvBlockTokens, per_row * kKvBlockTokens, dst);
    });
  }
  void write_block(KvKind kind, int32_t block, std::span<const uint8_t> in) override {
    check_size(kind, in.size());
    auto* src = reinterpret_cast<const float*>(in.data());
    for_each_span(kind, [&](float* base, size_t per_row) {
      std::copy_n(src, per_row * kKvBlockTokens, base + size_t(block) * per_row * kKvBlockTokens);
      src += per_row * kKvBlockTokens;
    });
  }

 private:
  float* row(std::array<std::vector<std::vector<float>>, 2>& arr, int il, int32_t block, int64_t off, int64_t dim) {
    const LayerConfig& L = c_.layers[size_t(il)];
    const auto width = size_t(L.n_head_kv * dim);
    return &arr[L.sliding ? 1 : 0][size_t(slot_[size_t(il)])][(size_t(block) * kKvBlockTokens + size_t(off)) * width];
  }
  void check_size(KvKind kind, size_t bytes) const {
    if (bytes != block_bytes(kind)) throw std::invalid_argument("KV block buffer of the wrong size");
  }
  // Every array of a kind with its floats per position, in one fixed order (the block byte layout).
  template <class Fn>
  void for_each_span(KvKind kind, Fn&& fn) {
    const int k = int(kind);
    for (size_t i = 0; i < k_[k].size(); ++i) {
      const size_t rows = size_t(n_blocks_[k] * kKvBlockTokens);
      fn(k_[k][i].data(), k_[k][i].size() / rows);
      fn(v_[k][i].data(), v_[k][i].size() / rows);
    }
    if (kind == KvKind::Full) fn(hidden_.data(), size_t(c_.n_embd));
  }

  const ModelConfig& c_;
  int64_t n_blocks_[2] = {0, 0};
  size_t row_floats_[2] = {0, 0};
  std::vector<int> slot_;                                  // layer -> index among the layers of its kind
  std::array<std::vector<std::vector<float>>, 2> k_, v_;   // [kind][slot][rows * width]
  std::vector<float> hidden_;
};

// Where one token of a micro-batch comes from and where its logits go (null: none).
struct UbatchToken {
  const BlockTable* blocks;
  int64_t pos;
  float* logits;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const Model& model, int n_threads) : model_(model), c_(model.config()), pool_(n_threads) {}

  std::string_view name() const override { return "cpu"; }
  const Model& model() const override { return model_; }

  std::unique_ptr<KvStore> new_kv_store(int64_t full_blocks, int64_t sliding_blocks) override {
    if (full_blocks < 0 || sliding_blocks < 0) throw std::invalid_argument("negative KV block count");
    return std::make_unique<CpuKvStore>(c_, full_blocks, sliding_blocks);
  }
  size_t kv_block_bytes(KvKind kind) const override { return CpuKvStore(c_, 0, 0).block_bytes(kind); }

  void forward(KvStore& store_base, std::span<const BatchRun> runs) override {
    auto& store = static_cast<CpuKvStore&>(store_base);
    for (const BatchRun& r : runs) check_run(store, r);
    // Cut the runs into micro-batches of at most kMaxUbatchTokens tokens, a run possibly across two.
    std::vector<int32_t> toks;
    std::vector<UbatchToken> meta;
    for (const BatchRun& r : runs) {
      for (int64_t i = 0; i < int64_t(r.tokens.size()); ++i) {
        toks.push_back(r.tokens[size_t(i)]);
        float* out = i >= r.logits_from ? r.logits + (i - r.logits_from) * c_.n_vocab : nullptr;
        meta.push_back({r.blocks, r.pos0 + i, out});
        if (int64_t(toks.size()) == kMaxUbatchTokens) ubatch(store, toks, meta), toks.clear(), meta.clear();
      }
    }
    if (!toks.empty()) ubatch(store, toks, meta);
  }

  void logits_from_hidden(const KvStore& store_base, const BlockTable& blocks, int64_t pos0, int64_t n,
                          float* logits) override {
    const auto& store = static_cast<const CpuKvStore&>(store_base);
    std::vector<const float*> rows;
    std::vector<float*> outs;
    for (int64_t p = pos0; p < pos0 + n; ++p) {
      const int32_t b = block_of(blocks.full, p);
      if (b < 0 || b >= store.n_blocks(KvKind::Full)) throw std::logic_error("logits of a position whose block is not held");
      rows.push_back(store.hidden_row(b, p % kKvBlockTokens));
      outs.push_back(logits + (p - pos0) * c_.n_vocab);
    }
    output_logits(rows, outs);
  }

 private:
  static int32_t block_of(const std::vector<int32_t>& table, int64_t pos) {
    const auto i = size_t(pos / kKvBlockTokens);
    return i < table.size() ? table[i] : -1;
  }
  bool has_kind(bool sliding) const {
    return std::ranges::any_of(c_.layers.begin(), c_.layers.begin() + c_.n_layer, [&](const LayerConfig& L) { return L.sliding == sliding; });
  }
  // Every position a run writes or reads must have a block: a missing one is the caller's bug.
  void check_run(const CpuKvStore& store, const BatchRun& r) const {
    const int64_t n = int64_t(r.tokens.size());
    if (n == 0 || r.pos0 < 0 || r.logits_from < 0 || r.logits_from > n || (r.logits_from < n && !r.logits))
      throw std::invalid_argument("malformed batch run");
    for (int32_t t : r.tokens)
      if (t < 0 || t >= c_.n_vocab) throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary");
    auto need = [&](const std::vector<int32_t>& table, KvKind kind, int64_t from, int64_t to) {
      for (int64_t p = from - from % kKvBlockTokens; p < to; p += kKvBlockTokens) {
        const int32_t b = block_of(table, p);
        if (b < 0 || b >= store.n_blocks(kind)) throw std::logic_error("batch run at a position whose KV block is not held");
      }
    };
    need(r.blocks->full, KvKind::Full, has_kind(false) ? 0 : r.pos0, r.pos0 + n);
    if (has_kind(true)) need(r.blocks->sliding, KvKind::Sliding, std::max<int64_t>(0, r.pos0 - c_.sliding_window + 1), r.pos0 + n);
  }

  void ubatch(CpuKvStore& store, std::span<const int32_t> tokens, std::span<const UbatchToken> meta);
  void attention(CpuKvStore& store, std::span<const UbatchToken> meta, int il);
  void ffn(int il, int64_t T);
  void swiglu(const MatView& gate, const MatView& up, const MatView& down, const float* x, int64_t T, float clamp, float* out);
  void output_logits(std::span<const float* const> rows, std::span<float* const> outs);

  const Model& model_;
  const ModelConfig& c_;
  ThreadPool pool_;
  // Scratch reused across calls: sized on first use, never shrunk.
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, proj_, ff_, router_, buf_in_, buf_gate_, buf_up_, buf_out_, sel_, head_in_, head_out_;
  std::vector<int64_t> order_;
  std::vector<std::vector<std::pair<int64_t, float>>> routed_;  // expert -> (token, weight)
};

void CpuBackend::ubatch(CpuKvStore& store, std::span<const int32_t> tokens, std::span<const UbatchToken> meta) {
  const int64_t T = int64_t(tokens.size()), E = c_.n_embd;
  const ModelWeights& w = model_.weights();
  x_.resize(size_t(T * E));
  xn_.resize(size_t(T * E));
  for (int64_t t = 0; t < T; ++t) embed_row(w.token_embd, tokens[size_t(t)], &x_[size_t(t * E)]);

  for (int il = 0; il < c_.n_layer; ++il) {
    const LayerWeights& lw = w.layers[size_t(il)];
    for (int64_t t = 0; t < T; ++t)
      rms_norm(&x_[size_t(t * E)], reinterpret_cast<const float*>(lw.attn_norm->data), &xn_[size_t(t * E)], E, c_.rms_eps);
    attention(store, meta, il);
    for (int64_t i = 0; i < T * E; ++i) x_[size_t(i)] += proj_[size_t(i)];

    for (int64_t t = 0; t < T; ++t)
      rms_norm(&x_[size_t(t * E)], reinterpret_cast<const float*>(lw.ffn_norm->data), &xn_[size_t(t * E)], E, c_.rms_eps);
    ffn(il, T);
    for (int64_t i = 0; i < T * E; ++i) x_[size_t(i)] += ff_[size_t(i)];
  }
  std::vector<const float*> rows;
  std::vector<float*> outs;
  for (int64_t t = 0; t < T; ++t) {
    const UbatchToken& m = meta[size_t(t)];
    std::copy_n(&x_[size_t(t * E)], E, store.hidden_row(block_of(m.blocks->full, m.pos), m.pos % kKvBlockTokens));
    if (m.logits) rows.push_back(&x_[size_t(t * E)]), outs.push_back(m.logits);
  }
  output_logits(rows, outs);
}

// The output head over scattered hidden rows, a bounded group at a time (a group's logits are
// [group x n_vocab] of scratch; the head's weights are read once per group).
void CpuBackend::output_logits(std::span<const float* const> rows, std::span<float* const> outs) {
  constexpr size_t kGroup = 32;
  const int64_t E = c_.n_embd, V = c_.n_vocab;
  const ModelWeights& w = model_.weights();
  for (size_t g = 0; g < rows.size(); g += kGroup) {
    const size_t n = std::min(kGroup, rows.size() - g);
    head_in_.resize(n * size_t(E));
    for (size_t i = 0; i < n; ++i)
      rms_norm(rows[g + i], reinterpret_cast<const float*>(w.output_norm->data), &head_in_[i * size_t(E)], E, c_.rms_eps);
    if (n == 1) {
      matmul(pool_, mat(w.output), head_in_.data(), 1, outs[g]);
      continue;
    }
    head_out_.resize(n * size_t(V));
    matmul(pool_, mat(w.output), head_in_.data(), int64_t(n), head_out_.data());
    for (size_t i = 0; i < n; ++i) std::copy_n(&head_out_[i * size_t(V)], V, outs[g + i]);
  }
}

void CpuBackend::attention(CpuKvStore& store, std::span<const UbatchToken> meta, int il) {
  const int64_t T = int64_t(meta.size());
  const LayerConfig& L = c_.layers[size_t(il)];
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  const int64_t H = L.n_head, Hkv = L.n_head_kv, hd = c_.head_dim, vd = c_.v_head_dim, E = c_.n_embd;
  const int64_t qw = H * hd, kw = Hkv * hd, vw = Hkv * vd;
  q_.resize(size_t(T * qw));
  k_.resize(size_t(T * kw));
  v_.resize(size_t(T * vw));
  matmul(pool_, mat(lw.attn_q), xn_.data(), T, q_.data());
  matmul(pool_, mat(lw.attn_k), xn_.data(), T, k_.data());
  matmul(pool_, mat(lw.attn_v), xn_.data(), T, v_.data());

  const float* freq_factors =
      L.rope.use_freq_factors ? reinterpret_cast<const float*>(model_.weights().rope_freqs->data) : nullptr;
  const float* qn = reinterpret_cast<const float*>(lw.attn_q_norm->data);
  const float* kn = reinterpret_cast<const float*>(lw.attn_k_norm->data);
  auto table = [&](const UbatchToken& m) -> const std::vector<int32_t>& { return L.sliding ? m.blocks->sliding : m.blocks->full; };
  // Every token's K/V goes into its block before any token attends: tokens of one sequence in this
  // micro-batch see each other.
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = meta[size_t(t)].pos;
    for (int64_t h = 0; h < H; ++h) {
      float* head = &q_[size_t(t * qw + h * hd)];
      rms_norm(head, qn, head, hd, c_.rms_eps);
      rope_neox(head, pos, L.rope, freq_factors);
    }
    for (int64_t h = 0; h < Hkv; ++h) {
      float* head = &k_[size_t(t * kw + h * hd)];
      rms_norm(head, kn, head, hd, c_.rms_eps);
      rope_neox(head, pos, L.rope, freq_factors);
    }
    const int32_t b = block_of(table(meta[size_t(t)]), pos);
    std::copy_n(&k_[size_t(t * kw)], kw, store.k_row(il, b, pos % kKvBlockTokens));
    std::copy_n(&v_[size_t(t * vw)], vw, store.v_row(il, b, pos % kKvBlockTokens));
  }

  // One task per (token, head). Scores are F32 with a max-subtracted softmax, as the reference does.
  const float scale = 1.f / std::sqrt(float(hd));
  const int64_t group = H / Hkv;
  att_.resize(size_t(T * H * vd));
  pool_.parallel_for(T * H, [&](int64_t i0, int64_t i1, int) {
    thread_local std::vector<float> scores;
    thread_local std::vector<const float*> krows, vrows;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / H, h = i % H, kvh = h / group, pos = meta[size_t(t)].pos;
      const int64_t start = L.sliding ? std::max<int64_t>(0, pos - c_.sliding_window + 1) : 0;
      const int64_t n_keys = pos - start + 1;
      const std::vector<int32_t>& blocks = table(meta[size_t(t)]);
      krows.resize(size_t(n_keys));
      vrows.resize(size_t(n_keys));
      for (int64_t j = 0; j < n_keys; ++j) {
        const int64_t p = start + j;
        const int32_t b = blocks[size_t(p / kKvBlockTokens)];
        krows[size_t(j)] = store.k_row(il, b, p % kKvBlockTokens) + kvh * hd;
        vrows[size_t(j)] = store.v_row(il, b, p % kKvBlockTokens) + kvh * vd;
      }
      const float* qh = &q_[size_t(t * qw + h * hd)];
      scores.resize(size_t(n_keys));
      float mx = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        const float* kh = krows[size_t(j)];
        float s = 0;
        for (int64_t d = 0; d < hd; ++d) s += qh[d] * kh[d];
        scores[size_t(j)] = s * scale;
        mx = std::max(mx, scores[size_t(j)]);
      }
      float sum = 0;
      for (auto& s : scores) sum += (s = std::exp(s - mx));
      float* out = &att_[size_t(t * H * vd + h * vd)];
      std::fill_n(out, vd, 0.f);
      for (int64_t j = 0; j < n_keys; ++j) {
        const float* vh = vrows[size_t(j)];
        const float p = scores[size_t(j)] / sum;
        for (int64_t d = 0; d < vd; ++d) out[d] += p * vh[d];
      }
    }
  });

  if (L.attn_gate) {  // head-wise gate from the normed layer input, applied before the output projection
    gate_.resize(size_t(T * H));
    matmul(pool_, mat(lw.attn_gate), xn_.data(), T, gate_.data());
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

// out = down(act(gate x) * up x), with the SwiGLU clamp when limit > 0: up to [-L, L], silu(gate) to <= L.
void CpuBackend::swiglu(const MatView& gate, const MatView& up, const MatView& down, const float* x, int64_t T,
                        float limit, float* out) {
  const int64_t F = gate.n_out;
  buf_gate_.resize(size_t(T * F));
  buf_up_.resize(size_t(T * F));
  matmul(pool_, gate, x, T, buf_gate_.data());
  matmul(pool_, up, x, T, buf_up_.data());
  for (int64_t i = 0; i < T * F; ++i) {
    float g = silu(buf_gate_[size_t(i)]), u = buf_up_[size_t(i)];
    if (limit > 0.f) {
      g = std::min(g, limit);
      u = std::clamp(u, -limit, limit);
    }
    buf_gate_[size_t(i)] = g * u;
  }
  matmul(pool_, down, buf_gate_.data(), T, out);
}

void CpuBackend::ffn(int il, int64_t T) {
  const LayerConfig& L = c_.layers[size_t(il)];
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  const int64_t E = c_.n_embd;
  ff_.assign(size_t(T * E), 0.f);
  if (!L.moe) {
    swiglu(mat(lw.ffn_gate), mat(lw.ffn_up), mat(lw.ffn_down), xn_.data(), T, L.clamp_shexp, ff_.data());
    return;
  }

  // Route: probabilities from the router, selection on probabilities plus the optional bias, weights
  // from the unbiased probabilities, renormalised and scaled.
  const int64_t X = c_.n_expert, K = c_.n_expert_used;
  router_.resize(size_t(T * X));
  matmul(pool_, mat(lw.ffn_gate_inp), xn_.data(), T, router_.data());
  const float* bias = lw.exp_probs_b ? reinterpret_cast<const float*>(lw.exp_probs_b->data) : nullptr;
  routed_.resize(size_t(X));
  for (auto& r : routed_) r.clear();
  sel_.resize(size_t(X));
  order_.resize(size_t(X));
  for (int64_t t = 0; t < T; ++t) {
    float* p = &router_[size_t(t * X)];
    if (c_.router == RouterKind::Softmax) {
      float mx = *std::max_element(p, p + X), sum = 0;
      for (int64_t e = 0; e < X; ++e) sum += (p[e] = std::exp(p[e] - mx));
      for (int64_t e = 0; e < X; ++e) p[e] /= sum;
    } else {
      for (int64_t e = 0; e < X; ++e) p[e] = sigmoid(p[e]);
    }
    for (int64_t e = 0; e < X; ++e) sel_[size_t(e)] = bias ? p[e] + bias[e] : p[e];
    std::iota(order_.begin(), order_.end(), 0);
    std::partial_sort(order_.begin(), order_.begin() + K, order_.end(),
                      [&](int64_t a, int64_t b) { return sel_[size_t(a)] > sel_[size_t(b)] || (sel_[size_t(a)] == sel_[size_t(b)] && a < b); });
    float wsum = 0;
    for (int64_t k = 0; k < K; ++k) wsum += p[order_[size_t(k)]];
    const float norm = c_.router_renorm ? 1.f / std::max(wsum, 6.103515625e-5f) : 1.f;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t e = order_[size_t(k)];
      routed_[size_t(e)].push_back({t, p[e] * norm * c_.expert_weights_scale});
    }
  }

  // Experts in turn, each over the tokens routed to it: its weights are read once per micro-batch.
  for (int64_t e = 0; e < X; ++e) {
    const auto& toks = routed_[size_t(e)];
    if (toks.empty()) continue;
    const int64_t n = int64_t(toks.size());
    buf_in_.resize(size_t(n * E));
    buf_out_.resize(size_t(n * E));
    for (int64_t i = 0; i < n; ++i) std::copy_n(&xn_[size_t(toks[size_t(i)].first * E)], E, &buf_in_[size_t(i * E)]);
    swiglu(expert(lw.ffn_gate_exps, e), expert(lw.ffn_up_exps, e), expert(lw.ffn_down_exps, e), buf_in_.data(), n,
           L.clamp_exp, buf_out_.data());
    for (int64_t i = 0; i < n; ++i) {
      float* dst = &ff_[size_t(toks[size_t(i)].first * E)];
      const float wgt = toks[size_t(i)].second;
      for (int64_t d = 0; d < E; ++d) dst[d] += wgt * buf_out_[size_t(i * E + d)];
    }
  }
  if (L.shared_expert) {
    buf_out_.resize(size_t(T * E));
    swiglu(mat(lw.ffn_gate_shexp), mat(lw.ffn_up_shexp), mat(lw.ffn_down_shexp), xn_.data(), T, L.clamp_shexp, buf_out_.data());
    for (int64_t i = 0; i < T * E; ++i) ff_[size_t(i)] += buf_out_[size_t(i)];
  }
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const Model& model, int n_threads) {
  return std::make_unique<CpuBackend>(model, n_threads);
}

}  // namespace flashfix
