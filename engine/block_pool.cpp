#include "engine/block_pool.h"

#include <stdexcept>

namespace flashfix {

BlockPool::BlockPool(int64_t full_blocks, int64_t sliding_blocks) {
  const int64_t n[2] = {full_blocks, sliding_blocks};
  for (int k = 0; k < 2; ++k) {
    refs_[k].assign(size_t(n[k]), 0);
    indexed_[k].assign(size_t(n[k]), false);
    for (int64_t b = n[k] - 1; b >= 0; --b) free_[k].push_back(int32_t(b));  // hand out low ids first
  }
}

int32_t BlockPool::take(KvKind k) {
  auto& fl = free_[int(k)];
  if (fl.empty()) return -1;
  const int32_t b = fl.back();
  fl.pop_back();
  refs_[int(k)][size_t(b)] = 1;
  return b;
}

void BlockPool::ref(KvKind k, int32_t b) {
  const bool before = evictable(k, b);
  ++refs_[int(k)][size_t(b)];
  recount(k, b, before);
}

void BlockPool::unref(KvKind k, int32_t b) {
  auto& r = refs_[int(k)][size_t(b)];
  if (r <= 0) throw std::logic_error("KV block released more often than taken");
  const bool before = evictable(k, b);
  if (--r == 0) {
    indexed_[int(k)][size_t(b)] = false;
    free_[int(k)].push_back(b);
  }
  recount(k, b, before);
}

void BlockPool::set_indexed(KvKind k, int32_t b, bool indexed) {
  const bool before = evictable(k, b);
  indexed_[int(k)][size_t(b)] = indexed;
  recount(k, b, before);
}

void BlockPool::recount(KvKind k, int32_t b, bool before) { evictable_[int(k)] += int64_t(evictable(k, b)) - int64_t(before); }

}  // namespace flashfix
