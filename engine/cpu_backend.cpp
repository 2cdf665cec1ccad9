// The reference CPU forward pass for every supported architecture. It reads only ModelConfig's
// per-layer fields; the differences between step35 and qwen3moe are data (head counts, window,
// rotary dims and base, router kind, clamps, gate and shared expert present or not).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu_ops.h"

namespace flashfix {
namespace {

using namespace cpu;

// Prompts are processed in micro-batches of at most this many tokens: it bounds scratch memory, and
// a sliding-window layer's ring buffer needs window + kMaxUbatch slots to serve a whole micro-batch.
constexpr int64_t kMaxUbatch = 512;

struct LayerKv {
  int64_t slots = 0;       // ring size: every position for full attention, window + ubatch for SWA
  std::vector<float> k, v; // [slots][n_head_kv * head_dim]
};

class CpuSequence : public Sequence {
 public:
  CpuSequence(const ModelConfig& c, int64_t n_ctx) : Sequence(n_ctx) {
    kv.resize(size_t(c.n_layer));
    for (int il = 0; il < c.n_layer; ++il) {
      const LayerConfig& L = c.layers[il];
      LayerKv& s = kv[size_t(il)];
      s.slots = L.sliding ? std::min<int64_t>(n_ctx, c.sliding_window + kMaxUbatch) : n_ctx;
      s.k.assign(size_t(s.slots * L.n_head_kv * c.head_dim), 0.f);
      s.v.assign(size_t(s.slots * L.n_head_kv * c.v_head_dim), 0.f);
    }
  }
  void advance(int64_t n) { n_past_ += n; }
  std::vector<LayerKv> kv;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const Model& model, int n_threads) : model_(model), c_(model.config()), pool_(n_threads) {}

  std::string_view name() const override { return "cpu"; }
  const Model& model() const override { return model_; }

  std::unique_ptr<Sequence> new_sequence(int64_t n_ctx) override {
    if (n_ctx <= 0) throw std::invalid_argument("context size must be positive");
    return std::make_unique<CpuSequence>(c_, n_ctx);
  }

  void forward(Sequence& seq_base, std::span<const int32_t> tokens, Logits which, float* logits) override {
    auto& seq = static_cast<CpuSequence&>(seq_base);
    const int64_t n = int64_t(tokens.size());
    if (n == 0) throw std::invalid_argument("forward needs at least one token");
    if (seq.n_past() + n > seq.n_ctx())
      throw std::length_error("context full: " + std::to_string(seq.n_past()) + " + " + std::to_string(n) +
                              " tokens exceed the context of " + std::to_string(seq.n_ctx()));
    for (int32_t t : tokens)
      if (t < 0 || t >= c_.n_vocab) throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary");
    for (int64_t b = 0; b < n; b += kMaxUbatch) {
      int64_t len = std::min(kMaxUbatch, n - b);
      bool last = b + len == n;
      float* out = nullptr;
      if (which == Logits::All) out = logits + b * c_.n_vocab;
      else if (last) out = logits;
      ubatch(seq, tokens.subspan(size_t(b), size_t(len)), which == Logits::All, out);
    }
  }

 private:
  void ubatch(CpuSequence& seq, std::span<const int32_t> tokens, bool all_rows, float* logits);
  void attention(CpuSequence& seq, int il, int64_t pos0, int64_t T);
  void ffn(int il, int64_t T);
  void swiglu(const MatView& gate, const MatView& up, const MatView& down, const float* x, int64_t T, float clamp, float* out);

  const Model& model_;
  const ModelConfig& c_;
  ThreadPool pool_;
  // Scratch reused across calls: sized on first use, never shrunk.
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, proj_, ff_, router_, buf_in_, buf_gate_, buf_up_, buf_out_, sel_;
  std::vector<int64_t> order_;
  std::vector<std::vector<std::pair<int64_t, float>>> routed_;  // expert -> (token, weight)
};

void CpuBackend::ubatch(CpuSequence& seq, std::span<const int32_t> tokens, bool all_rows, float* logits) {
  const int64_t T = int64_t(tokens.size()), E = c_.n_embd;
  const ModelWeights& w = model_.weights();
  x_.resize(size_t(T * E));
  xn_.resize(size_t(T * E));
  for (int64_t t = 0; t < T; ++t) embed_row(w.token_embd, tokens[size_t(t)], &x_[size_t(t * E)]);

  for (int il = 0; il < c_.n_layer; ++il) {
    const LayerWeights& lw = w.layers[size_t(il)];
    for (int64_t t = 0; t < T; ++t)
      rms_norm(&x_[size_t(t * E)], reinterpret_cast<const float*>(lw.attn_norm->data), &xn_[size_t(t * E)], E, c_.rms_eps);
    attention(seq, il, seq.n_past(), T);
    for (int64_t i = 0; i < T * E; ++i) x_[size_t(i)] += proj_[size_t(i)];

    for (int64_t t = 0; t < T; ++t)
      rms_norm(&x_[size_t(t * E)], reinterpret_cast<const float*>(lw.ffn_norm->data), &xn_[size_t(t * E)], E, c_.rms_eps);
    ffn(il, T);
    for (int64_t i = 0; i < T * E; ++i) x_[size_t(i)] += ff_[size_t(i)];
  }
  seq.advance(T);
  if (!logits) return;

  const int64_t first = all_rows ? 0 : T - 1, rows = T - first;
  for (int64_t t = first; t < T; ++t)
    rms_norm(&x_[size_t(t * E)], reinterpret_cast<const float*>(w.output_norm->data), &xn_[size_t((t - first) * E)], E, c_.rms_eps);
  matmul(pool_, mat(w.output), xn_.data(), rows, logits);
}

void CpuBackend::attention(CpuSequence& seq, int il, int64_t pos0, int64_t T) {
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
  LayerKv& kv = seq.kv[size_t(il)];
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = pos0 + t;
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
    const int64_t slot = pos % kv.slots;
    std::copy_n(&k_[size_t(t * kw)], kw, &kv.k[size_t(slot * kw)]);
    std::copy_n(&v_[size_t(t * vw)], vw, &kv.v[size_t(slot * vw)]);
  }

  // One task per (token, head). Scores are F32 with a max-subtracted softmax, as the reference does.
  const float scale = 1.f / std::sqrt(float(hd));
  const int64_t group = H / Hkv;
  att_.resize(size_t(T * H * vd));
  pool_.parallel_for(T * H, [&](int64_t i0, int64_t i1, int) {
    thread_local std::vector<float> scores;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / H, h = i % H, kvh = h / group, pos = pos0 + t;
      const int64_t start = L.sliding ? std::max<int64_t>(0, pos - c_.sliding_window + 1) : 0;
      const int64_t n_keys = pos - start + 1;
      const float* qh = &q_[size_t(t * qw + h * hd)];
      scores.resize(size_t(n_keys));
      float mx = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        const float* kh = &kv.k[size_t(((start + j) % kv.slots) * kw + kvh * hd)];
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
        const float* vh = &kv.v[size_t(((start + j) % kv.slots) * vw + kvh * vd)];
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
