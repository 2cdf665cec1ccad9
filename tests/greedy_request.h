// An engine request that always takes the most likely token (temperature 0), so its output is
// reproducible and comparable with the golden greedy references.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/engine.h"

namespace flashfix::test {

inline Request greedy_request(std::vector<int32_t> prompt, int64_t max_tokens) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  return r;
}

}  // namespace flashfix::test
