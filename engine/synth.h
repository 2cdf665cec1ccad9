// Random-weight models of any shape, written as GGUF files that load like converted ones.
//
// Used to test and benchmark the engine at sizes no golden file covers (a scaled-down Qwen3-30B-A3B or
// Step-3.5-Flash) without downloading weights. The metadata mirrors what llama.cpp's converter writes for
// the architecture, including a tokenizer, so every loader path that reads a real file reads these too.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tensor_types.h"

namespace flashfix {

struct SynthShape {
  std::string arch;          // "qwen3moe" | "step35"
  std::string name;          // general.name; empty: "synth-<arch>"
  int n_layer = 0;           // trunk layers
  int n_embd = 0;
  int n_head = 0;            // full-attention layers
  int n_head_swa = 0;        // step35 sliding-window layers; 0: same as n_head
  int n_head_kv = 0;
  int head_dim = 0;
  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_exp = 0;
  int n_ff = 0;              // dense FFN (step35 leading dense layers and MTP blocks)
  int n_ff_shexp = 0;        // step35 shared expert; 0: none
  int n_dense = 0;           // step35 leading dense layers
  int n_mtp = 0;             // step35 nextn blocks after the trunk
  int swa_window = 0;        // step35; 0: every layer full attention
  int64_t context = 4096;
  float rope_base = 0;       // 0: the architecture's usual base (1e6 qwen3moe, 5e6 step35)
};

struct SynthOptions {
  SynthShape shape;
  TensorType type = TensorType::F32;  // of 2-D/3-D weights; norms, biases, router, rope_freqs stay F32
  uint64_t seed = 1;
  std::string vocab_path;             // GGUF whose tokenizer.* metadata is copied; empty: built-in byte vocab
  // Quantized weights (Q8_0, Q4_K, Q5_K, Q6_K) as blocks of random quants under scales that give the
  // Gaussian's spread, instead of quantized Gaussians: ~20x faster (the K-quant scale search is 90% of
  // synth's time), for speed benchmarks of full-size shapes, where only the bytes and the routing
  // matter. Float weights stay Gaussian either way: they have no quantization to skip.
  bool random_blocks = false;
};

// A tiny model of the architecture, shaped like the golden tiny-*-s11 files. Throws std::invalid_argument
// for an unknown architecture.
SynthShape synth_default_shape(std::string_view arch);
// Named real-model shapes ("qwen3-30b-a3b", "step3.5-flash") shrunk by 0 < scale <= 1. Throws
// std::invalid_argument for an unknown name or scale.
SynthShape synth_preset(std::string_view name, double scale = 1.0);
std::vector<std::string_view> synth_preset_names();

// Throws std::invalid_argument naming the first thing that makes the shape unbuildable with this type.
void synth_validate(const SynthOptions& opt);

// Validates, then writes the model to `path`. Weights are Gaussian with std 1/sqrt(fan_in), norms near 1,
// deterministic for a given seed whatever the thread count.
void synth_model(const SynthOptions& opt, const std::string& path);

}  // namespace flashfix
