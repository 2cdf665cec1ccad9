// A loaded model: the mapped GGUF file, its per-layer configuration, and a view of every weight the
// forward pass needs, each checked against the shape the configuration implies. Loading fails with a
// message naming the tensor that is missing, misshapen, of an unusable type, or unexpected.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/model_config.h"

namespace flashfix {

// A weight is a view of a tensor in the mapped file; null when optional and absent.
using Weight = const GgufTensor*;

struct LayerWeights {
  Weight attn_norm = nullptr, attn_q = nullptr, attn_k = nullptr, attn_v = nullptr, attn_output = nullptr;
  Weight attn_q_norm = nullptr, attn_k_norm = nullptr, attn_gate = nullptr;
  Weight ffn_norm = nullptr;
  Weight ffn_gate = nullptr, ffn_up = nullptr, ffn_down = nullptr;                  // dense
  Weight ffn_gate_inp = nullptr, exp_probs_b = nullptr;                             // router
  Weight ffn_gate_exps = nullptr, ffn_up_exps = nullptr, ffn_down_exps = nullptr;  // stacked experts
  Weight ffn_gate_shexp = nullptr, ffn_up_shexp = nullptr, ffn_down_shexp = nullptr;
  // MTP (nextn) blocks only.
  Weight nextn_eh_proj = nullptr, nextn_enorm = nullptr, nextn_hnorm = nullptr;
  Weight nextn_embed_tokens = nullptr, nextn_head = nullptr, nextn_head_norm = nullptr;
};

struct ModelWeights {
  Weight token_embd = nullptr, output_norm = nullptr, output = nullptr, rope_freqs = nullptr;
  std::vector<LayerWeights> layers;
};

struct ParameterCounts {
  int64_t total = 0;             // every tensor in the file
  int64_t active = 0;            // read per token by the trunk: non-expert weights, top-k experts, one embedding row
  uint64_t active_bytes = 0;     // bytes behind `active` (what bounds decode speed)
  int64_t mtp = 0;               // in nextn blocks
};

class Model {
 public:
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> from_file(std::unique_ptr<GgufFile> file);

  const GgufFile& file() const { return *file_; }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  ParameterCounts parameter_counts() const;

 private:
  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  ModelWeights weights_;
};

}  // namespace flashfix
