#include "engine/synth.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "engine/gguf.h"
#include "engine/quant_blocks.h"
#include "engine/quantize_model.h"

namespace flashfix {

namespace {

[[noreturn]] void bad(const std::string& why) { throw std::invalid_argument(why); }

// ---- deterministic fast Gaussian noise ----------------------------------------------------------

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256+: a few cycles per 64 bits, plenty for weights nobody trains.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& x : s_) x = splitmix64(seed);
  }
  uint64_t next() {
    uint64_t r = s_[0] + s_[3], t = s_[1] << 17;
    s_[2] ^= s_[0], s_[3] ^= s_[1], s_[1] ^= s_[2], s_[0] ^= s_[3], s_[2] ^= t;
    s_[3] = (s_[3] << 45) | (s_[3] >> 19);
    return r;
  }
  // Box-Muller, two normals per draw.
  void normals(float* out, int64_t n, float mean, float std) {
    constexpr float kTwoPi = 6.283185307179586f;
    for (int64_t k = 0; k < n; k += 2) {
      uint64_t r = next();
      float u1 = (float((r >> 40) & 0xffffff) + 1.f) * 0x1p-24f;  // (0, 1]: log never sees 0
      float u2 = float(r & 0xffffff) * 0x1p-24f;
      float rad = std::sqrt(-2.f * std::log(u1)) * std, a = kTwoPi * u2;
      out[k] = mean + rad * std::cos(a);
      if (k + 1 < n) out[k + 1] = mean + rad * std::sin(a);
    }
  }

 private:
  uint64_t s_[4];
};

uint64_t hash_name(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// What goes into a tensor: Gaussian weights, or llama3-style rope factors.
struct Init {
  float mean = 0, std = 0;
  bool rope_factors = false;
};

// Random quants under scales chosen so a weight's spread is about `std`, for a quantized type. The
// quants' and the sub-block scales' bits come straight from the generator; only the fp16 super-block
// scales are set, since random bits there would be infinities and NaNs.
void random_block_row(uint8_t* dst, TensorType type, int64_t row_len, Rng& rng, float std) {
  const size_t bytes = row_bytes(type, row_len);
  for (size_t i = 0; i < bytes; i += 8) {
    uint64_t r = rng.next();
    std::memcpy(dst + i, &r, std::min<size_t>(8, bytes - i));
  }
  const int64_t blocks = row_len / type_traits(type).block_elems;
  switch (type) {
    case TensorType::Q4_K: {
      // y = d*sc*q - dmin*m with sc, m uniform on 0..63 and q on 0..15. dmin = 7.5 d centres y
      // (E[sc*q] = 7.5 E[m]); then Var(y) / d^2 = Var(sc*q) + 7.5^2 Var(m) = 47532 + 19195 = 258^2.
      const uint16_t d = fp32_to_fp16(std / 258.f), dmin = fp32_to_fp16(std / 258.f * 7.5f);
      auto* b = reinterpret_cast<block_q4_K*>(dst);
      for (int64_t i = 0; i < blocks; ++i) b[i].d = d, b[i].dmin = dmin;
      return;
    }
    case TensorType::Q5_K: {
      // As Q4_K with q on 0..31: dmin = 15.5 d centres y; Var(y) / d^2 = 195665 + 15.5^2 Var(m) = 527^2.
      const uint16_t d = fp32_to_fp16(std / 527.f), dmin = fp32_to_fp16(std / 527.f * 15.5f);
      auto* b = reinterpret_cast<block_q5_K*>(dst);
      for (int64_t i = 0; i < blocks; ++i) b[i].d = d, b[i].dmin = dmin;
      return;
    }
    case TensorType::Q6_K: {  // y = d*sc*(q-32), sc uniform on -128..127 (sd 74), q-32 on -32..31 (18.5)
      const uint16_t d = fp32_to_fp16(std / (74.f * 18.5f));
      auto* b = reinterpret_cast<block_q6_K*>(dst);
      for (int64_t i = 0; i < blocks; ++i) b[i].d = d;
      return;
    }
    case TensorType::Q8_0: {  // y = d*q, q uniform on -128..127
      const uint16_t d = fp32_to_fp16(std / 74.f);
      auto* b = reinterpret_cast<block_q8_0*>(dst);
      for (int64_t i = 0; i < blocks; ++i) b[i].d = d;
      return;
    }
    default:  // a quantized type synth_validate let through: never a quiet fallback to the slow search
      throw std::logic_error("synth --random-blocks has no block layout for " + std::string(type_traits(type).name));
  }
}

// Fills `rows` rows of `row_len` values encoded as `type`. Each row has its own generator seeded from
// (tensor seed, row), so the bytes do not depend on how rows are split over threads.
void fill_rows(uint8_t* dst, TensorType type, int64_t row_len, int64_t rows, uint64_t seed, Init init,
               bool random_blocks) {
  const size_t rb = row_bytes(type, row_len);
  auto work = [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(row_len));
    for (int64_t r = r0; r < r1; ++r) {
      uint8_t* out = dst + size_t(r) * rb;
      Rng rng(seed ^ (uint64_t(r) * 0xd1b54a32d192ed03ull));
      if (random_blocks) {
        random_block_row(out, type, row_len, rng, init.std);
        continue;
      }
      if (init.rope_factors) {
        // Ramp from 1 to 2 over the rotated pairs (n_rot/2 = row_len/2), padded with 1 like the converter.
        for (int64_t i = 0; i < row_len; ++i) row[i] = i < row_len / 2 ? 1.f + float(i) / float(row_len / 2) : 1.f;
      } else {
        rng.normals(row.data(), row_len, init.mean, init.std);
      }
      if (type == TensorType::F32) std::memcpy(out, row.data(), rb);
      else quantize_row(type, row.data(), out, row_len);
    }
  };
  parallel_rows(rows, row_len, work);
}

// ---- architecture layout ------------------------------------------------------------------------

bool is_step(const SynthShape& s) { return s.arch == "step35"; }
int total_layers(const SynthShape& s) { return s.n_layer + s.n_mtp; }
bool sliding(const SynthShape& s, int il) { return is_step(s) && s.swa_window > 0 && (il >= s.n_layer || il % 4 != 0); }
int heads(const SynthShape& s, int il) { return sliding(s, il) && s.n_head_swa ? s.n_head_swa : s.n_head; }
bool dense(const SynthShape& s, int il) { return is_step(s) && (il < s.n_dense || il >= s.n_layer); }
// Step-3.5-Flash clamps the SwiGLU of its last two trunk layers (43-44 of 45).
bool clamped(const SynthShape& s, int il) { return is_step(s) && il < s.n_layer && il >= s.n_layer - 2; }

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  bool weight;  // written in the requested type; otherwise F32
  Init init;
};

std::vector<TensorPlan> plan_tensors(const SynthShape& s, int64_t n_vocab) {
  const int64_t E = s.n_embd, hd = s.head_dim, kv = s.n_head_kv, X = s.n_expert;
  std::vector<TensorPlan> out;
  auto weight = [&](std::string name, std::vector<int64_t> ne) {
    float std = 1.f / std::sqrt(float(ne[0]));
    out.push_back({std::move(name), std::move(ne), true, {0.f, std}});
  };
  auto f32 = [&](std::string name, std::vector<int64_t> ne, float mean, float std) {
    out.push_back({std::move(name), std::move(ne), false, {mean, std}});
  };
  auto norm = [&](std::string name, int64_t n) { f32(std::move(name), {n}, 1.f, 0.05f); };

  weight("token_embd.weight", {E, n_vocab});
  norm("output_norm.weight", E);
  weight("output.weight", {E, n_vocab});
  if (is_step(s)) out.push_back({"rope_freqs.weight", {hd / 2}, false, {0, 0, true}});
  for (int il = 0; il < total_layers(s); ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    const int64_t H = heads(s, il);
    norm(p + "attn_norm.weight", E);
    weight(p + "attn_q.weight", {E, hd * H});
    weight(p + "attn_k.weight", {E, hd * kv});
    weight(p + "attn_v.weight", {E, hd * kv});
    norm(p + "attn_q_norm.weight", hd);
    norm(p + "attn_k_norm.weight", hd);
    if (is_step(s)) weight(p + "attn_gate.weight", {E, H});
    weight(p + "attn_output.weight", {hd * H, E});
    norm(p + "ffn_norm.weight", E);
    if (dense(s, il)) {
      weight(p + "ffn_gate.weight", {E, s.n_ff});
      weight(p + "ffn_up.weight", {E, s.n_ff});
      weight(p + "ffn_down.weight", {s.n_ff, E});
    } else {
      f32(p + "ffn_gate_inp.weight", {E, X}, 0.f, 1.f / std::sqrt(float(E)));
      if (is_step(s)) f32(p + "exp_probs_b.bias", {X}, 0.f, 0.01f);
      weight(p + "ffn_gate_exps.weight", {E, s.n_ff_exp, X});
      weight(p + "ffn_up_exps.weight", {E, s.n_ff_exp, X});
      weight(p + "ffn_down_exps.weight", {s.n_ff_exp, E, X});
      if (is_step(s) && s.n_ff_shexp > 0) {
        weight(p + "ffn_gate_shexp.weight", {E, s.n_ff_shexp});
        weight(p + "ffn_up_shexp.weight", {E, s.n_ff_shexp});
        weight(p + "ffn_down_shexp.weight", {s.n_ff_shexp, E});
      }
    }
    if (il >= s.n_layer) {
      weight(p + "nextn.eh_proj.weight", {2 * E, E});
      norm(p + "nextn.enorm.weight", E);
      norm(p + "nextn.hnorm.weight", E);
      norm(p + "nextn.shared_head_norm.weight", E);
    }
  }
  return out;
}

void write_arch_metadata(GgufWriter& w, const SynthShape& s) {
  const std::string p = s.arch + ".";
  const bool step = is_step(s);
  const int n = total_layers(s);
  w.set_u32(p + "context_length", uint32_t(s.context));
  w.set_u32(p + "embedding_length", uint32_t(s.n_embd));
  w.set_u32(p + "block_count", uint32_t(n));
  if (s.n_mtp > 0) w.set_u32(p + "nextn_predict_layers", uint32_t(s.n_mtp));
  if (s.n_ff > 0) w.set_u32(p + "feed_forward_length", uint32_t(s.n_ff));
  w.set_u32(p + "expert_feed_forward_length", uint32_t(s.n_ff_exp));
  if (step && s.n_ff_shexp > 0) w.set_u32(p + "expert_shared_feed_forward_length", uint32_t(s.n_ff_shexp));
  w.set_u32(p + "expert_count", uint32_t(s.n_expert));
  w.set_u32(p + "expert_used_count", uint32_t(s.n_expert_used));
  if (step) {
    w.set_u32(p + "expert_gating_func", 2);  // sigmoid
    w.set_f32(p + "expert_weights_scale", 3.f);
    w.set_bool(p + "expert_weights_norm", true);
    std::vector<int32_t> h(n), hkv(n, s.n_head_kv);
    std::vector<bool> swa(n);
    std::vector<float> clamp_exp(n, 0.f), clamp_shexp(n, 0.f);
    for (int il = 0; il < n; ++il) {
      h[il] = heads(s, il);
      swa[il] = sliding(s, il);
      if (clamped(s, il)) {
        clamp_exp[il] = dense(s, il) ? 0.f : 7.f;
        clamp_shexp[il] = 16.f;
      }
    }
    w.set_array_i32(p + "attention.head_count", h);
    w.set_array_i32(p + "attention.head_count_kv", hkv);
    w.set_u32(p + "attention.key_length", uint32_t(s.head_dim));
    w.set_u32(p + "attention.value_length", uint32_t(s.head_dim));
    if (s.swa_window > 0) {
      w.set_u32(p + "attention.sliding_window", uint32_t(s.swa_window));
      w.set_array_bool(p + "attention.sliding_window_pattern", swa);
    }
    w.set_f32(p + "attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_f32(p + "rope.freq_base", s.rope_base > 0 ? s.rope_base : 5e6f);
    w.set_f32(p + "rope.freq_base_swa", 1e4f);
    w.set_u32(p + "rope.dimension_count", uint32_t(s.head_dim));
    w.set_array_f32(p + "swiglu_clamp_exp", clamp_exp);
    w.set_array_f32(p + "swiglu_clamp_shexp", clamp_shexp);
    w.set_u32(p + "leading_dense_block_count", uint32_t(s.n_dense));
  } else {
    w.set_u32(p + "attention.head_count", uint32_t(s.n_head));
    w.set_u32(p + "attention.head_count_kv", uint32_t(s.n_head_kv));
    w.set_u32(p + "attention.key_length", uint32_t(s.head_dim));
    w.set_u32(p + "attention.value_length", uint32_t(s.head_dim));
    w.set_f32(p + "rope.freq_base", s.rope_base > 0 ? s.rope_base : 1e6f);
    w.set_f32(p + "attention.layer_norm_rms_epsilon", 1e-6f);
  }
}

// GPT-2's byte-level alphabet in GPT-2's id order: printable bytes stand for themselves, the other 68
// map to U+0100.. so every token is visible text.
std::vector<std::string> byte_tokens() {
  std::vector<int> printable;
  for (int b = 0; b < 256; ++b)
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) printable.push_back(b);
  auto utf8 = [](int cp) {
    std::string s;
    if (cp < 0x80) s += char(cp);
    else s += char(0xc0 | (cp >> 6)), s += char(0x80 | (cp & 0x3f));
    return s;
  };
  std::vector<std::string> tokens;
  for (int b : printable) tokens.push_back(utf8(b));
  int extra = 0;
  for (int b = 0; b < 256; ++b)
    if (std::find(printable.begin(), printable.end(), b) == printable.end()) tokens.push_back(utf8(256 + extra++));
  return tokens;
}

// Writes tokenizer.* metadata; returns the vocabulary size.
int64_t write_vocab(GgufWriter& w, const std::string& vocab_path) {
  if (!vocab_path.empty()) {
    auto v = GgufFile::open(vocab_path);
    const auto* tokens = v->get_string_array("tokenizer.ggml.tokens");
    if (!tokens || tokens->empty()) bad(vocab_path + " has no tokenizer.ggml.tokens");
    for (const auto& kv : v->metadata())
      if (kv.key.starts_with("tokenizer.")) w.copy_value(std::string(kv.key), kv.value);
    return int64_t(tokens->size());
  }
  std::vector<std::string> tokens = byte_tokens();
  std::vector<int32_t> types(tokens.size(), 1);  // normal
  // Qwen's convention: the ChatML markers are control tokens, the tool/think tags user-defined.
  const std::pair<const char*, int32_t> specials[] = {
      {"<|im_start|>", 3}, {"<|im_end|>", 3}, {"<|endoftext|>", 3}, {"<tool_call>", 4},
      {"</tool_call>", 4}, {"<think>", 4},    {"</think>", 4}};
  for (auto [text, type] : specials) tokens.push_back(text), types.push_back(type);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "qwen2");
  w.set_array_string("tokenizer.ggml.tokens", tokens);
  w.set_array_i32("tokenizer.ggml.token_type", types);
  w.set_array_string("tokenizer.ggml.merges", std::vector<std::string>{});  // bytes only: nothing to merge
  w.set_u32("tokenizer.ggml.eos_token_id", 257);                           // <|im_end|>
  w.set_u32("tokenizer.ggml.padding_token_id", 258);                       // <|endoftext|>
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  return int64_t(tokens.size());
}

int round_up(double x, int multiple) { return std::max(multiple, int(std::ceil(x / multiple - 1e-9)) * multiple); }

}  // namespace

std::vector<std::string_view> synth_preset_names() { return {"qwen3-30b-a3b", "step3.5-flash"}; }

SynthShape synth_default_shape(std::string_view arch) {
  SynthShape s;
  s.arch = std::string(arch);
  s.n_embd = 256, s.n_head = 4, s.n_head_kv = 2, s.head_dim = 64;
  s.n_expert = 8, s.n_expert_used = 2, s.n_ff_exp = 256;
  if (arch == "qwen3moe") {
    s.n_layer = 3, s.n_ff = 1024;
  } else if (arch == "step35") {
    s.n_layer = 6, s.n_head_swa = 8, s.n_ff = 512, s.n_ff_shexp = 256, s.n_dense = 1, s.n_mtp = 3, s.swa_window = 16;
  } else {
    bad("--arch must be qwen3moe or step35, got '" + std::string(arch) + "'");
  }
  return s;
}

SynthShape synth_preset(std::string_view name, double scale) {
  if (!(scale > 0 && scale <= 1)) bad("--scale must be in (0, 1], got " + std::to_string(scale));
  SynthShape s;
  int full_heads, swa_heads, kv;
  if (name == "qwen3-30b-a3b") {  // Qwen3-Coder-30B-A3B
    s.arch = "qwen3moe";
    s.n_layer = 48, s.n_embd = 2048, full_heads = swa_heads = 32, kv = 4, s.head_dim = 128;
    s.n_expert = 128, s.n_expert_used = 8, s.n_ff_exp = 768, s.n_ff = 6144, s.n_ff_shexp = 0;
    s.n_dense = 0, s.n_mtp = 0, s.swa_window = 0, s.context = 262144, s.rope_base = 1e7f;
  } else if (name == "step3.5-flash") {
    s.arch = "step35";
    s.n_layer = 45, s.n_embd = 4096, full_heads = 64, swa_heads = 96, kv = 8, s.head_dim = 128;
    s.n_expert = 288, s.n_expert_used = 8, s.n_ff_exp = 1280, s.n_ff = 11264, s.n_ff_shexp = 1280;
    s.n_dense = 3, s.n_mtp = 3, s.swa_window = 512, s.context = 262144, s.rope_base = 5e6f;
  } else {
    bad("unknown preset '" + std::string(name) + "' (qwen3-30b-a3b, step3.5-flash)");
  }
  s.name = std::string(name);
  if (scale < 1) {
    s.name += "-x" + std::to_string(scale).substr(0, 4);
    auto shrink = [scale](int v) { return std::max(1, int(std::lround(v * scale))); };
    // Widths stay multiples of 256 so every K-quant fits; head_dim stays (it is what the kernels see).
    s.n_layer = shrink(s.n_layer);
    s.n_embd = round_up(s.n_embd * scale, 256);
    s.n_ff = round_up(s.n_ff * scale, 256);
    s.n_ff_exp = round_up(s.n_ff_exp * scale, 256);
    if (s.n_ff_shexp) s.n_ff_shexp = round_up(s.n_ff_shexp * scale, 256);
    s.n_expert = std::max(s.n_expert_used, shrink(s.n_expert));
    if (s.n_dense) s.n_dense = std::min(shrink(s.n_dense), std::max(0, s.n_layer - 1));
    if (s.n_mtp) s.n_mtp = shrink(s.n_mtp);
    kv = shrink(kv);
    // Query heads: a multiple of the kv heads whose total width (heads x head_dim) is a whole K-quant block.
    int step = std::lcm(kv, 256 / std::gcd(s.head_dim, 256));
    full_heads = round_up(full_heads * scale, step);
    swa_heads = round_up(swa_heads * scale, step);
  }
  s.n_head = full_heads, s.n_head_kv = kv;
  s.n_head_swa = s.arch == "step35" ? swa_heads : 0;
  return s;
}

void synth_validate(const SynthOptions& opt) {
  const SynthShape& s = opt.shape;
  const bool step = is_step(s);
  if (s.arch != "qwen3moe" && !step) bad("--arch must be qwen3moe or step35, got '" + s.arch + "'");
  auto range = [](const char* flag, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      bad(std::string(flag) + " = " + std::to_string(v) + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
  };
  range("--layers", s.n_layer, 1, 4096);
  range("--mtp", s.n_mtp, 0, step ? 4096 - s.n_layer : 0);
  range("--embd", s.n_embd, 1, 1 << 20);
  range("--head-dim", s.head_dim, 2, 4096);
  range("--heads", s.n_head, 1, 4096);
  range("--heads-swa", s.n_head_swa, 0, step ? 4096 : 0);
  range("--heads-kv", s.n_head_kv, 1, 4096);
  range("--context", s.context, 1, int64_t(1) << 31);
  range("--swa-window", s.swa_window, 0, step ? 1 << 30 : 0);
  range("--dense-layers", s.n_dense, 0, step ? s.n_layer : 0);
  range("--ff-shexp", s.n_ff_shexp, 0, step ? 1 << 24 : 0);
  // Step35 full layers rotate head_dim/2 dims, which must itself be even.
  if (s.head_dim % (step ? 4 : 2) != 0)
    bad("--head-dim " + std::to_string(s.head_dim) + " must be a multiple of " + (step ? "4 for step35" : "2"));
  for (int h : {s.n_head, s.n_head_swa})
    if (h % s.n_head_kv != 0)
      bad("query heads " + std::to_string(h) + " are not a multiple of --heads-kv " + std::to_string(s.n_head_kv));
  bool any_moe = !step || s.n_dense < s.n_layer;
  bool any_dense = step && (s.n_dense > 0 || s.n_mtp > 0);
  range("--experts", s.n_expert, any_moe ? 1 : 0, 4096);
  range("--experts-used", s.n_expert_used, any_moe ? 1 : 0, s.n_expert);
  range("--ff-exp", s.n_ff_exp, any_moe ? 1 : 0, 1 << 24);
  range("--ff", s.n_ff, any_dense ? 1 : 0, 1 << 24);

  const TensorType t = opt.type;
  if (!can_quantize_to(t) || t == TensorType::Q8_K)
    bad("--type " + std::string(type_traits(t).name) + " cannot be written (f32, f16, bf16, q8_0, q4_K, q5_K, q6_K)");
  // Every weight row (ne[0]) must be whole blocks of the type.
  std::vector<std::pair<std::string, int64_t>> rows = {{"--embd", s.n_embd}};
  for (int h : {s.n_head, step ? s.n_head_swa : 0})
    if (h) rows.push_back({"--heads x --head-dim", int64_t(h) * s.head_dim});
  if (any_moe) rows.push_back({"--ff-exp", s.n_ff_exp});
  if (any_dense) rows.push_back({"--ff", s.n_ff});
  if (step && any_moe && s.n_ff_shexp) rows.push_back({"--ff-shexp", s.n_ff_shexp});
  for (const auto& [what, n] : rows)
    if (!row_ok(t, n))
      bad(what + " = " + std::to_string(n) + " is not a multiple of the " + std::string(type_traits(t).name) +
          " block size " + std::to_string(type_traits(t).block_elems));
}

void synth_model(const SynthOptions& opt, const std::string& path) {
  synth_validate(opt);
  const SynthShape& s = opt.shape;
  GgufWriter w;
  w.set_string("general.architecture", s.arch);
  w.set_string("general.name", s.name.empty() ? "synth-" + s.arch : s.name);
  write_arch_metadata(w, s);
  w.set_u32("general.file_type", uint32_t(llama_file_type(opt.type)));
  if (type_traits(opt.type).block_elems > 1) w.set_u32("general.quantization_version", 2);
  const int64_t n_vocab = write_vocab(w, opt.vocab_path);

  for (auto& t : plan_tensors(s, n_vocab)) {
    const TensorType type = t.weight ? opt.type : TensorType::F32;
    const int64_t row_len = t.ne[0];
    int64_t rows = 1;
    for (size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
    const uint64_t seed = hash_name(t.name, opt.seed);
    // Float weights have no scale search to skip: they stay Gaussian under --random-blocks.
    const bool random_blocks = opt.random_blocks && t.weight && type_traits(type).block_elems > 1;
    w.add_tensor(t.name, type, t.ne, [=, init = t.init](uint8_t* dst, size_t) {
      fill_rows(dst, type, row_len, rows, seed, init, random_blocks);
    });
  }
  w.write(path);
}

}  // namespace flashfix
