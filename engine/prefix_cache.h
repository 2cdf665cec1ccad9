// The prefix index: which KV blocks hold which token prefixes, shared by reference count.
//
// Full blocks are keyed by their chain hash (prefix_hash.h); a request walks the chain over its
// prompt and reuses every block found, then takes the longest token overlap among the next block's
// candidates (a full block that diverges inside, or the partial last block a finished sequence left)
// by copying those rows into a block of its own: copy on write, so a shared block is never written.
// Sliding-window layers keep their blocks in a second pool: an entry's sliding block may be evicted
// on its own, and a prefix is reusable only up to where the last window before it is still held.
// Under pressure the least recently used blocks held by the index alone are evicted (a reused chain
// is stamped leaf first, so leaves go before the roots other requests share), after being written to
// the disk cache when there is one; unreachable descendants of an evicted block age out the same way.
#pragma once
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/backend.h"
#include "engine/block_pool.h"
#include "engine/kv_disk_cache.h"

namespace flashfix {

class PrefixCache {
 public:
  // window: the sliding-window length (0 without sliding layers). disk may be null.
  PrefixCache(KvStore& store, BlockPool& pool, uint64_t root_key, int64_t window, KvDiskCache* disk);

  // References in `table` the blocks of the longest cached prefix of `prompt`, at most max_reuse
  // positions, and returns its length; `chain` gets the hashes of the whole blocks reused. Blocks it
  // loads from disk or copies come from unclaimed ones only.
  int64_t acquire(std::span<const int32_t> prompt, int64_t max_reuse, BlockTable& table, std::vector<uint64_t>& chain);

  // A block for new positions: a free one, else an evicted one; -1 when every block is in use.
  int32_t allocate(KvKind kind);

  // Indexes the sequence's whole block chain.size() (tokens covers it) and appends its hash.
  void publish_block(std::span<const int32_t> tokens, const BlockTable& table, std::vector<uint64_t>& chain);
  // Indexes the partial block after the sequence's whole blocks, holding tokens[chain.size() * B, n).
  void publish_tail(std::span<const int32_t> tokens, int64_t n, const BlockTable& table, const std::vector<uint64_t>& chain);

  // Writes every indexed whole block the disk does not have yet (at shutdown).
  void flush();

 private:
  struct Entry {
    uint64_t parent = 0;
    std::vector<int32_t> tokens;   // kKvBlockTokens for a whole block, fewer for a tail
    int32_t full = -1, sliding = -1;
    uint64_t stamp = 0;
    bool on_disk = false;
  };
  using Map = std::unordered_map<uint64_t, Entry>;

  Entry* find_or_load(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);
  bool evict_one(KvKind kind);
  void drop(bool tail, Map::iterator it);
  void save(uint64_t hash, Entry& e);

  KvStore& store_;
  BlockPool& pool_;
  uint64_t root_;
  int64_t window_;
  KvDiskCache* disk_;
  Map blocks_;   // whole blocks by chain hash
  Map tails_;    // partial blocks by an id of their own
  std::unordered_multimap<uint64_t, uint64_t> children_, tail_children_;  // parent hash -> keys of blocks_, tails_
  uint64_t clock_ = 0, next_tail_id_ = 1;
};

}  // namespace flashfix
