#include "engine/model.h"

#include <set>

namespace flashfix {

namespace {

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "{";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "}";
}

// Binds tensors by name and checks their shapes; remembers what was bound so leftovers are reported.
class Binder {
 public:
  explicit Binder(const GgufFile& f) : f_(f) {}

  Weight get(const std::string& name, std::vector<int64_t> shape, bool required, bool f32_only = false) {
    const GgufTensor* t = f_.find_tensor(name);
    if (!t) {
      if (required) throw GgufError(f_.path() + ": missing tensor " + name + " " + shape_str(shape));
      return nullptr;
    }
    std::vector<int64_t> ne = t->ne;
    while (ne.size() > 1 && ne.back() == 1) ne.pop_back();
    while (shape.size() > 1 && shape.back() == 1) shape.pop_back();
    if (ne != shape)
      throw GgufError(f_.path() + ": tensor " + name + " has shape " + shape_str(t->ne) + ", expected " + shape_str(shape));
    if (f32_only && t->type != TensorType::F32)
      throw GgufError(f_.path() + ": tensor " + name + " must be f32, found " + std::string(type_traits(t->type).name));
    used_.insert(t->name);
    return t;
  }

  void check_all_used() const {
    for (const auto& t : f_.tensors())
      if (!used_.count(t.name))
        throw GgufError(f_.path() + ": unexpected tensor " + std::string(t.name) + " for this architecture");
  }

 private:
  const GgufFile& f_;
  std::set<std::string_view> used_;
};

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path) { return from_file(GgufFile::open(path)); }

std::unique_ptr<Model> Model::from_file(std::unique_ptr<GgufFile> file) {
  auto m = std::unique_ptr<Model>(new Model());
  m->file_ = std::move(file);
  m->config_ = ModelConfig::from_gguf(*m->file_);
  const ModelConfig& c = m->config_;
  ModelWeights& w = m->weights_;
  Binder b(*m->file_);
  const int64_t E = c.n_embd, V = c.n_vocab, hd = c.head_dim, vd = c.v_head_dim;

  w.token_embd = b.get("token_embd.weight", {E, V}, true);
  w.output_norm = b.get("output_norm.weight", {E}, true, true);
  w.output = b.get("output.weight", {E, V}, false);
  if (!w.output) w.output = w.token_embd;  // tied embeddings
  bool wants_factors = false;
  for (const auto& L : c.layers) wants_factors |= L.rope.use_freq_factors;
  if (wants_factors) w.rope_freqs = b.get("rope_freqs.weight", {hd / 2}, true, true);

  w.layers.resize(c.layers.size());
  for (size_t il = 0; il < c.layers.size(); ++il) {
    const LayerConfig& L = c.layers[il];
    LayerWeights& lw = w.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    const int64_t H = L.n_head, Hkv = L.n_head_kv;
    lw.attn_norm = b.get(p + "attn_norm.weight", {E}, true, true);
    lw.attn_q = b.get(p + "attn_q.weight", {E, hd * H}, true);
    lw.attn_k = b.get(p + "attn_k.weight", {E, hd * Hkv}, true);
    lw.attn_v = b.get(p + "attn_v.weight", {E, vd * Hkv}, true);
    lw.attn_output = b.get(p + "attn_output.weight", {vd * H, E}, true);
    lw.attn_q_norm = b.get(p + "attn_q_norm.weight", {hd}, true, true);
    lw.attn_k_norm = b.get(p + "attn_k_norm.weight", {hd}, true, true);
    if (L.attn_gate) lw.attn_gate = b.get(p + "attn_gate.weight", {E, H}, true);
    lw.ffn_norm = b.get(p + "ffn_norm.weight", {E}, true, true);
    if (L.moe) {
      const int64_t X = c.n_expert, F = c.n_ff_exp;
      lw.ffn_gate_inp = b.get(p + "ffn_gate_inp.weight", {E, X}, true, true);
      lw.exp_probs_b = b.get(p + "exp_probs_b.bias", {X}, false, true);
      lw.ffn_gate_exps = b.get(p + "ffn_gate_exps.weight", {E, F, X}, true);
      lw.ffn_up_exps = b.get(p + "ffn_up_exps.weight", {E, F, X}, true);
      lw.ffn_down_exps = b.get(p + "ffn_down_exps.weight", {F, E, X}, true);
      if (L.shared_expert) {
        const int64_t S = c.n_ff_shexp;
        lw.ffn_gate_shexp = b.get(p + "ffn_gate_shexp.weight", {E, S}, true);
        lw.ffn_up_shexp = b.get(p + "ffn_up_shexp.weight", {E, S}, true);
        lw.ffn_down_shexp = b.get(p + "ffn_down_shexp.weight", {S, E}, true);
      }
    } else {
      lw.ffn_gate = b.get(p + "ffn_gate.weight", {E, L.n_ff}, true);
      lw.ffn_up = b.get(p + "ffn_up.weight", {E, L.n_ff}, true);
      lw.ffn_down = b.get(p + "ffn_down.weight", {L.n_ff, E}, true);
    }
    if (L.mtp) {
      lw.nextn_eh_proj = b.get(p + "nextn.eh_proj.weight", {2 * E, E}, true);
      lw.nextn_enorm = b.get(p + "nextn.enorm.weight", {E}, true, true);
      lw.nextn_hnorm = b.get(p + "nextn.hnorm.weight", {E}, true, true);
      lw.nextn_embed_tokens = b.get(p + "nextn.embed_tokens.weight", {E, V}, false);
      lw.nextn_head = b.get(p + "nextn.shared_head_head.weight", {E, V}, false);
      lw.nextn_head_norm = b.get(p + "nextn.shared_head_norm.weight", {E}, false, true);
    }
  }
  b.check_all_used();
  return m;
}

ParameterCounts Model::parameter_counts() const {
  ParameterCounts pc;
  const ModelConfig& c = config_;
  for (const auto& t : file_->tensors()) pc.total += t.n_elements();
  auto add = [&](Weight t, double fraction = 1.0) {
    if (!t) return;
    pc.active += int64_t(double(t->n_elements()) * fraction);
    pc.active_bytes += uint64_t(double(t->nbytes) * fraction);
  };
  // One embedding row per token; the output projection is read whole.
  add(weights_.token_embd, 1.0 / double(c.n_vocab));
  add(weights_.output_norm);
  if (weights_.output != weights_.token_embd) add(weights_.output);
  else add(weights_.output, 1.0 - 1.0 / double(c.n_vocab));
  for (size_t il = 0; il < c.layers.size(); ++il) {
    const LayerWeights& lw = weights_.layers[il];
    if (c.layers[il].mtp) {
      for (Weight t : {lw.attn_norm, lw.attn_q, lw.attn_k, lw.attn_v, lw.attn_output, lw.attn_q_norm, lw.attn_k_norm,
                       lw.attn_gate, lw.ffn_norm, lw.ffn_gate, lw.ffn_up, lw.ffn_down, lw.nextn_eh_proj, lw.nextn_enorm,
                       lw.nextn_hnorm, lw.nextn_embed_tokens, lw.nextn_head, lw.nextn_head_norm})
        if (t) pc.mtp += t->n_elements();
      continue;
    }
    for (Weight t : {lw.attn_norm, lw.attn_q, lw.attn_k, lw.attn_v, lw.attn_output, lw.attn_q_norm, lw.attn_k_norm,
                     lw.attn_gate, lw.ffn_norm, lw.ffn_gate, lw.ffn_up, lw.ffn_down, lw.ffn_gate_inp, lw.exp_probs_b,
                     lw.ffn_gate_shexp, lw.ffn_up_shexp, lw.ffn_down_shexp})
      add(t);
    double used = c.n_expert ? double(c.n_expert_used) / double(c.n_expert) : 0.0;
    for (Weight t : {lw.ffn_gate_exps, lw.ffn_up_exps, lw.ffn_down_exps}) add(t, used);
  }
  return pc;
}

}  // namespace flashfix
