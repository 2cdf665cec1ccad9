// Hash chain over full token blocks (vLLM's automatic prefix caching): a block's hash covers its
// tokens and its parent's hash, so equal hashes mean equal whole prefixes. The chain starts from a
// key of the model and everything that changes the KV, so caches of different models never meet.
#pragma once
#include <cstdint>
#include <span>

#include <xxhash.h>

namespace flashfix {

inline uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent);
}

}  // namespace flashfix
