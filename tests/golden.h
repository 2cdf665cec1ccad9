// Shared helpers for tests against ../shared/golden: the reference tokens, greedy continuation and
// logits an independent engine computed, and the metric its README defines.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flashfix::test {

// FLASHFIX_GOLDEN_DIR overrides the checkout's ../shared/golden: test binaries carried to another
// machine (scripts/gpu_check.sh) find the models where they were carried to.
inline std::string golden_dir() {
  if (const char* d = std::getenv("FLASHFIX_GOLDEN_DIR"); d && *d) return d;
  return std::string(FLASHFIX_SHARED_DIR) + "/golden";
}

struct Golden {
  std::string name;                 // e.g. "tiny-step35-s11-Q6_K"
  std::string model_path;
  std::vector<int32_t> tokens, greedy;
  int64_t n_vocab = 0;
  std::vector<float> logits;        // [tokens x n_vocab]
  bool quantized() const { return name.find("-Q") != std::string::npos; }
};

inline Golden load_golden(const std::string& name) {
  Golden g;
  g.name = name;
  g.model_path = golden_dir() + "/" + name + ".gguf";
  std::ifstream js(golden_dir() + "/" + name + ".prompt1.json");
  auto j = nlohmann::json::parse(js);
  g.tokens = j["tokens"].get<std::vector<int32_t>>();
  g.greedy = j["greedy"].get<std::vector<int32_t>>();
  g.n_vocab = j["n_vocab"].get<int64_t>();
  std::ifstream lf(golden_dir() + "/" + name + ".prompt1.logits.f32", std::ios::binary);
  g.logits.resize(g.tokens.size() * size_t(g.n_vocab));
  lf.read(reinterpret_cast<char*>(g.logits.data()), std::streamsize(g.logits.size() * sizeof(float)));
  if (!lf) throw std::runtime_error("cannot read logits of " + name);
  return g;
}

inline const std::vector<std::string>& golden_models() {
  static const std::vector<std::string> names = {"tiny-qwen3moe-s11", "tiny-qwen3moe-s11-Q8_0", "tiny-qwen3moe-s11-Q4_K_M",
                                                 "tiny-step35-s11", "tiny-step35-s11-Q6_K"};
  return names;
}

// ||a - b|| / ||b|| over one row.
inline double rel_l2(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += double(a[i] - b[i]) * double(a[i] - b[i]);
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num / den);
}

inline int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

}  // namespace flashfix::test
