// Picks the next token from logits: greedy, or temperature sampling narrowed by top-k, top-p and
// min-p, with an optional repetition penalty, reproducible from a seed.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace flashfix {

struct SamplerParams {
  float temperature = 0.f;     // <= 0: greedy (argmax)
  int top_k = 40;              // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.f;  // 1: off; > 1 discourages tokens among the last repeat_last_n
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // history: tokens so far (prompt and generated), for the repetition penalty. Modifies logits.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);
  const SamplerParams& params() const { return p_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  // Buffers reused from token to token, so sampling allocates nothing once they have grown.
  std::vector<std::pair<float, int32_t>> cand_;
  std::vector<double> weight_;
  std::vector<int32_t> recent_;
};

}  // namespace flashfix
