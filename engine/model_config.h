// Hyper-parameters of a model, read from GGUF metadata and expressed per layer.
//
// Families differ by data, not by code: a step35 layer and a qwen3moe layer are the same LayerConfig
// with different head counts, window, rotary dims, rope base, router and clamps. The forward pass
// reads only these fields, never the architecture name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/gguf.h"

namespace flashfix {

enum class RouterKind { Softmax, Sigmoid };

struct RopeConfig {
  int n_rot = 0;              // rotated dims (a prefix of the head; the rest pass through)
  float freq_base = 10000.f;
  bool use_freq_factors = false;  // divide theta by rope_freqs[i]
  // Context-level scaling (llama.cpp's ggml_rope_ext parameters).
  float freq_scale = 1.f;
  float ext_factor = 0.f;     // YaRN mix (1 when rope.scaling.type == yarn)
  float attn_factor = 1.f;
  float beta_fast = 32.f, beta_slow = 1.f;
  int n_ctx_orig = 0;
};

struct LayerConfig {
  int n_head = 0;
  int n_head_kv = 0;
  bool sliding = false;       // sliding-window attention (window = ModelConfig::sliding_window)
  RopeConfig rope;
  bool attn_gate = false;     // head-wise sigmoid gate on the attention output
  bool moe = false;           // routed experts (else a dense SwiGLU FFN)
  bool shared_expert = false; // always-on expert added to the routed ones
  int n_ff = 0;               // dense FFN width (dense layers only)
  float clamp_exp = 0.f;      // SwiGLU clamp of routed experts (0 = off)
  float clamp_shexp = 0.f;    // SwiGLU clamp of the shared expert and of dense FFNs (0 = off)
  bool mtp = false;           // a next-token-prediction (nextn) block, not part of the trunk
};

struct ModelConfig {
  std::string arch;           // general.architecture
  std::string name;           // general.name (may be empty)
  int64_t n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;            // trunk layers (block_count - nextn_predict_layers)
  int n_nextn = 0;            // MTP blocks after the trunk
  int head_dim = 0;           // key_length
  int v_head_dim = 0;         // value_length
  int64_t context_length = 0;
  int sliding_window = 0;
  float rms_eps = 1e-6f;

  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_exp = 0;
  int n_ff_shexp = 0;
  RouterKind router = RouterKind::Softmax;
  bool router_renorm = true;
  float expert_weights_scale = 1.f;

  std::vector<LayerConfig> layers;  // n_layer + n_nextn entries

  // Reads and validates the metadata of a supported architecture. Layer fields that depend on which
  // tensors exist (moe, shared_expert, n_ff) are filled from the tensor table. Throws GgufError.
  static ModelConfig from_gguf(const GgufFile& f);
};

bool architecture_supported(std::string_view arch);

}  // namespace flashfix
