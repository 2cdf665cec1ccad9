// Reference-counted KV blocks of one KvStore, per kind. A block is free (no reference), held by
// sequences and/or the prefix index, or "evictable": held only by the index, so the prefix cache
// may take it back under pressure. Admission reserves blocks so a running sequence never waits.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/backend.h"

namespace flashfix {

class BlockPool {
 public:
  BlockPool(int64_t full_blocks, int64_t sliding_blocks);

  int64_t total(KvKind k) const { return int64_t(refs_[int(k)].size()); }
  int64_t free_count(KvKind k) const { return int64_t(free_[int(k)].size()); }
  int64_t evictable_count(KvKind k) const { return evictable_[int(k)]; }
  int64_t reserved(KvKind k) const { return reserved_[int(k)]; }
  // Blocks nobody has claimed: free or evictable, minus what admitted sequences may still take.
  int64_t unclaimed(KvKind k) const { return free_count(k) + evictable_count(k) - reserved(k); }

  void reserve(KvKind k, int64_t n) { reserved_[int(k)] += n; }
  void unreserve(KvKind k, int64_t n) { reserved_[int(k)] -= n; }

  // A free block with one reference, or -1 when none is free (the caller evicts and retries).
  int32_t take(KvKind k);
  void ref(KvKind k, int32_t b);
  void unref(KvKind k, int32_t b);
  int32_t refs(KvKind k, int32_t b) const { return refs_[int(k)][size_t(b)]; }
  // Marks a block as held by the prefix index (its reference is one of refs()).
  void set_indexed(KvKind k, int32_t b, bool indexed);

 private:
  void recount(KvKind k, int32_t b, bool before);
  bool evictable(KvKind k, int32_t b) const { return indexed_[int(k)][size_t(b)] && refs_[int(k)][size_t(b)] == 1; }

  std::vector<int32_t> refs_[2];
  std::vector<bool> indexed_[2];
  std::vector<int32_t> free_[2];
  int64_t evictable_[2] = {0, 0};
  int64_t reserved_[2] = {0, 0};
};

}  // namespace flashfix
