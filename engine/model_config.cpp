#include "engine/model_config.h"

#include <cmath>

namespace flashfix {

bool architecture_supported(std::string_view arch) { return arch == "qwen3moe" || arch == "step35"; }

namespace {

// "blk.N.suffix" exists in the tensor table.
bool has_layer_tensor(const GgufFile& f, int il, const char* suffix) {
  return f.find_tensor("blk." + std::to_string(il) + "." + suffix) != nullptr;
}

int positive(const GgufFile& f, const std::string& key, int64_t v, int64_t max = 1 << 24) {
  if (v <= 0 || v > max)
    throw GgufError(f.path() + ": metadata " + key + " = " + std::to_string(v) + " is out of range (1.." + std::to_string(max) + ")");
  return int(v);
}

// Per-layer counts arrive as doubles (a file may store them as floats). Converting a NaN or out-of-range
// double to an integer is undefined behaviour, so the range is checked on the double (found by fuzzing).
int positive_count(const GgufFile& f, const std::string& key, double v, int64_t max) {
  if (!(v >= 1 && v <= double(max)) || v != std::floor(v))
    throw GgufError(f.path() + ": metadata " + key + " = " + std::to_string(v) + " is not an integer in 1.." + std::to_string(max));
  return int(v);
}

}  // namespace

ModelConfig ModelConfig::from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.arch = std::string(f.require_string("general.architecture"));
  if (!architecture_supported(c.arch))
    throw GgufError(f.path() + ": architecture '" + c.arch + "' is not supported (supported: qwen3moe, step35)");
  c.name = std::string(f.get_string("general.name").value_or(""));
  const std::string p = c.arch + ".";
  auto req = [&](const char* k, int64_t max = 1 << 24) { return positive(f, p + k, f.require_int(p + k), max); };
  // An optional count, range-checked as int64 before it narrows (a file claiming 2^32+8 experts must not
  // read as 8).
  auto count = [&](const char* k, int64_t fallback, int64_t max) {
    int64_t v = f.get_int(p + k).value_or(fallback);
    if (v < 0 || v > max)
      throw GgufError(f.path() + ": metadata " + p + k + " = " + std::to_string(v) + " is out of range (0.." + std::to_string(max) + ")");
    return int(v);
  };
  auto opt = [&](const char* k, int64_t fallback) {
    auto v = f.get_int(p + k);
    return v ? positive(f, p + k, *v) : int(fallback);
  };

  const bool step = c.arch == "step35";
  int block_count = req("block_count", 4096);
  c.n_nextn = count("nextn_predict_layers", 0, 4095);
  if (c.n_nextn < 0 || c.n_nextn >= block_count)
    throw GgufError(f.path() + ": nextn_predict_layers " + std::to_string(c.n_nextn) + " must be below block_count");
  c.n_layer = block_count - c.n_nextn;
  c.n_embd = req("embedding_length");
  c.context_length = f.get_int(p + "context_length").value_or(4096);
  if (c.context_length <= 0) throw GgufError(f.path() + ": context_length must be positive");

  auto heads = f.get_per_layer(p + "attention.head_count", block_count);
  if (!heads) throw GgufError(f.path() + ": missing metadata " + p + "attention.head_count");
  auto heads_kv = f.get_per_layer(p + "attention.head_count_kv", block_count);
  if (!heads_kv) heads_kv = heads;
  c.head_dim = opt("attention.key_length", c.n_embd / positive_count(f, p + "attention.head_count[0]", (*heads)[0], 4096));
  c.v_head_dim = opt("attention.value_length", c.head_dim);
  c.rms_eps = float(f.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-6));
  if (!(c.rms_eps > 0.f) || c.rms_eps > 1.f) throw GgufError(f.path() + ": layer_norm_rms_epsilon out of range");

  // Vocabulary size is the embedding's row count (files may carry padding rows past the tokenizer).
  const GgufTensor* embd = f.find_tensor("token_embd.weight");
  if (!embd) throw GgufError(f.path() + ": missing tensor token_embd.weight");
  if (embd->ne.size() != 2) throw GgufError(f.path() + ": token_embd.weight must be 2-D");
  c.n_vocab = embd->ne[1];

  c.n_expert = count("expert_count", 0, 4096);
  c.n_expert_used = count("expert_used_count", 0, 4096);
  if (c.n_expert < 0 || c.n_expert > 4096 || c.n_expert_used < 0 || c.n_expert_used > c.n_expert)
    throw GgufError(f.path() + ": expert_count/expert_used_count out of range");
  int n_ff = count("feed_forward_length", 0, 1 << 24);
  c.n_ff_exp = count("expert_feed_forward_length", c.n_expert_used ? n_ff / c.n_expert_used : 0, 1 << 24);
  c.n_ff_shexp = count("expert_shared_feed_forward_length", c.n_ff_exp, 1 << 24);

  // Router: qwen3moe is softmax + renorm regardless of metadata; step35 defaults to sigmoid.
  int gating = count("expert_gating_func", step ? 2 : 1, 16);
  if (gating != 1 && gating != 2)
    throw GgufError(f.path() + ": expert_gating_func " + std::to_string(gating) + " is not supported (1 softmax, 2 sigmoid)");
  c.router = gating == 2 ? RouterKind::Sigmoid : RouterKind::Softmax;
  c.router_renorm = step ? f.get_bool(p + "expert_weights_norm").value_or(true) : true;
  double scale = f.get_float(p + "expert_weights_scale").value_or(0.0);
  c.expert_weights_scale = (scale == 0.0) ? 1.f : float(scale);

  // Sliding window: step35 marks SWA layers with a per-layer bool array.
  std::vector<double> swa(block_count, 0.0);
  c.sliding_window = count("attention.sliding_window", 0, 1 << 30);
  if (auto pat = f.get_per_layer(p + "attention.sliding_window_pattern", block_count); pat && step) swa = *pat;
  bool any_swa = false;
  for (double s : swa) any_swa |= s != 0.0;
  if (any_swa && c.sliding_window <= 0) throw GgufError(f.path() + ": sliding-window layers need attention.sliding_window > 0");

  std::vector<double> clamp_exp(block_count, 0.0), clamp_shexp(block_count, 0.0);
  if (auto v = f.get_per_layer(p + "swiglu_clamp_exp", block_count)) clamp_exp = *v;
  if (auto v = f.get_per_layer(p + "swiglu_clamp_shexp", block_count)) clamp_shexp = *v;

  // RoPE: context-level scaling applies to full-attention layers; SWA layers use their own base.
  RopeConfig base_rope;
  base_rope.freq_base = float(f.get_float(p + "rope.freq_base").value_or(10000.0));
  if (auto type = f.get_string(p + "rope.scaling.type"); type && *type != "none") {
    double factor = f.get_float(p + "rope.scaling.factor").value_or(1.0);
    if (!(factor >= 1.0)) throw GgufError(f.path() + ": rope.scaling.factor must be >= 1");
    base_rope.freq_scale = float(1.0 / factor);
    if (*type == "yarn") {
      base_rope.ext_factor = 1.f;
      // The net cos/sin scale of YaRN is 1 + 0.1 ln(factor) (llama.cpp folds it into attn_factor).
      base_rope.attn_factor = float(f.get_float(p + "rope.scaling.attn_factor").value_or(1.0));
      base_rope.n_ctx_orig = count("rope.scaling.original_context_length", std::min<int64_t>(c.context_length, 1 << 30), 1 << 30);
    } else if (*type != "linear") {
      throw GgufError(f.path() + ": rope.scaling.type '" + std::string(*type) + "' is not supported");
    }
  }
  int rot_dims = count("rope.dimension_count", c.head_dim, 1 << 16);
  float swa_base = float(f.get_float(p + "rope.freq_base_swa").value_or(10000.0));
  int swa_rot = count("rope.dimension_count_swa", rot_dims, 1 << 16);
  bool has_freq_factors = f.find_tensor("rope_freqs.weight") != nullptr;

  c.layers.resize(block_count);
  for (int il = 0; il < block_count; ++il) {
    LayerConfig& L = c.layers[il];
    L.n_head = positive_count(f, p + "attention.head_count[" + std::to_string(il) + "]", (*heads)[il], 4096);
    L.n_head_kv = positive_count(f, p + "attention.head_count_kv[" + std::to_string(il) + "]", (*heads_kv)[il], 4096);
    if (L.n_head % L.n_head_kv != 0)
      throw GgufError(f.path() + ": layer " + std::to_string(il) + " has " + std::to_string(L.n_head) +
                      " heads, not a multiple of its " + std::to_string(L.n_head_kv) + " kv heads");
    L.sliding = swa[il] != 0.0;
    L.mtp = il >= c.n_layer;
    if (step) {
      L.attn_gate = true;
      L.rope = base_rope;
      if (L.sliding) {  // SWA layers: full rotary, own base, no scaling or factors
        L.rope = RopeConfig{};
        L.rope.n_rot = swa_rot;
        L.rope.freq_base = swa_base;
      } else {          // full layers: half the head dims (hard-coded by the format), rope_freqs factors
        L.rope.n_rot = rot_dims / 2;
        L.rope.use_freq_factors = has_freq_factors;
      }
      L.clamp_exp = float(clamp_exp[il]);
      L.clamp_shexp = float(clamp_shexp[il]);
    } else {
      L.rope = base_rope;
      L.rope.n_rot = rot_dims;
    }
    if (L.rope.n_rot <= 0 || L.rope.n_rot > c.head_dim || L.rope.n_rot % 2 != 0)
      throw GgufError(f.path() + ": layer " + std::to_string(il) + " rotary dims " + std::to_string(L.rope.n_rot) +
                      " must be even and at most the head dim " + std::to_string(c.head_dim));
    if (L.clamp_exp < 0 || L.clamp_shexp < 0) throw GgufError(f.path() + ": swiglu clamp limits must be >= 0");
    L.moe = has_layer_tensor(f, il, "ffn_gate_inp.weight");
    L.shared_expert = L.moe && has_layer_tensor(f, il, "ffn_gate_shexp.weight");
    L.n_ff = L.moe ? 0 : n_ff;
    if (L.moe && (c.n_expert <= 0 || c.n_expert_used <= 0 || c.n_ff_exp <= 0))
      throw GgufError(f.path() + ": layer " + std::to_string(il) + " has a router but expert_count/expert_used_count/expert_feed_forward_length are missing");
    if (!L.moe && L.n_ff <= 0)
      throw GgufError(f.path() + ": layer " + std::to_string(il) + " is dense but feed_forward_length is missing");
  }
  return c;
}

}  // namespace flashfix
