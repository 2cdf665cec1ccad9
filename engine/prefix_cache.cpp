#include "engine/prefix_cache.h"

#include <algorithm>
#include <utility>

#include "engine/prefix_hash.h"

namespace flashfix {
namespace {

constexpr int64_t B = kKvBlockTokens;

void erase_pair(std::unordered_multimap<uint64_t, uint64_t>& mm, uint64_t key, uint64_t value) {
  auto [lo, hi] = mm.equal_range(key);
  for (auto it = lo; it != hi; ++it)
    if (it->second == value) return void(mm.erase(it));
}

}  // namespace

PrefixCache::PrefixCache(KvStore& store, BlockPool& pool, uint64_t root_key, int64_t window, KvDiskCache* disk)
    : store_(store), pool_(pool), root_(root_key), window_(window), disk_(disk) {}

PrefixCache::Entry* PrefixCache::find_or_load(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) {
  if (auto it = blocks_.find(hash); it != blocks_.end())
    return std::ranges::equal(it->second.tokens, tokens) ? &it->second : nullptr;  // else a hash collision
  if (!disk_ || pool_.unclaimed(KvKind::Full) < 1) return nullptr;
  const bool sliding = window_ > 0;
  auto db = disk_->load(hash, store_.block_bytes(KvKind::Full), sliding ? store_.block_bytes(KvKind::Sliding) : 0);
  if (!db || db->parent != parent || !std::ranges::equal(db->tokens, tokens)) return nullptr;
  Entry e;
  e.parent = parent;
  e.tokens.assign(tokens.begin(), tokens.end());
  e.on_disk = true;
  if ((e.full = allocate(KvKind::Full)) < 0) return nullptr;
  store_.write_block(KvKind::Full, e.full, db->full);
  pool_.set_indexed(KvKind::Full, e.full, true);
  if (sliding && !db->sliding.empty() && pool_.unclaimed(KvKind::Sliding) >= 1 && (e.sliding = allocate(KvKind::Sliding)) >= 0) {
    store_.write_block(KvKind::Sliding, e.sliding, db->sliding);
    pool_.set_indexed(KvKind::Sliding, e.sliding, true);
  }
  children_.emplace(parent, hash);
  return &blocks_.emplace(hash, std::move(e)).first->second;
}

int64_t PrefixCache::acquire(std::span<const int32_t> prompt, int64_t max_reuse, BlockTable& table, std::vector<uint64_t>& chain) {
  // Whole blocks along the hash chain; each is referenced at once so that loading the next one
  // (which may evict) cannot take it away.
  std::vector<Entry*> found;
  uint64_t parent = root_;
  while (int64_t(found.size() + 1) * B <= max_reuse) {
    auto blk = prompt.subspan(found.size() * B, B);
    const uint64_t h = chain_hash(parent, blk);
    Entry* e = find_or_load(h, parent, blk);
    if (!e) break;
    pool_.ref(KvKind::Full, e->full);
    found.push_back(e);
    chain.push_back(h);
    parent = h;
  }
  int64_t n = int64_t(found.size()) * B;
  auto release_from = [&](size_t keep) {
    for (size_t j = keep; j < found.size(); ++j) pool_.unref(KvKind::Full, found[j]->full);
    found.resize(keep), chain.resize(keep);
    n = int64_t(keep) * B;
    parent = keep ? chain.back() : root_;
  };
  // A continuation at position n attends back to n - window + 1: those blocks' sliding halves must
  // still be here, else reuse stops below the first missing one.
  auto first_window_block = [&](int64_t pos) { return size_t(std::max<int64_t>(0, pos - window_ + 1) / B); };
  if (window_ > 0)
    for (size_t j = found.size(); j-- > first_window_block(n);)
      if (found[j]->sliding < 0) {
        release_from(j);
        j = found.size();  // recheck the new, shorter prefix's window
        if (j == 0) break;
      }

  // The best partial overlap with the next block: a diverging whole block or a finished sequence's tail.
  const Entry* best = nullptr;
  int64_t best_k = 0;
  auto consider = [&](const Entry& e) {
    if (window_ > 0 && e.sliding < 0) return;
    const int64_t limit = std::min<int64_t>({int64_t(e.tokens.size()), max_reuse - n, int64_t(prompt.size()) - n});
    int64_t k = 0;
    while (k < limit && e.tokens[size_t(k)] == prompt[size_t(n + k)]) ++k;
    if (k > best_k) best = &e, best_k = k;
  };
  for (auto [lo, hi] = children_.equal_range(parent); lo != hi; ++lo) consider(blocks_.at(lo->second));
  for (auto [lo, hi] = tail_children_.equal_range(parent); lo != hi; ++lo) consider(tails_.at(lo->second));

  table.full.clear(), table.sliding.clear();
  const size_t first_sliding = first_window_block(n + best_k);
  for (size_t j = 0; j < found.size(); ++j) {
    table.full.push_back(found[j]->full);
    int32_t s = -1;
    if (window_ > 0 && j >= first_sliding) pool_.ref(KvKind::Sliding, s = found[j]->sliding);
    table.sliding.push_back(s);
  }
  for (size_t j = found.size(); j-- > 0;) found[j]->stamp = ++clock_;  // leaf first: roots stay longest

  if (best && pool_.unclaimed(KvKind::Full) >= 1 && (window_ == 0 || pool_.unclaimed(KvKind::Sliding) >= 1)) {
    const int32_t f = allocate(KvKind::Full);
    const int32_t s = window_ > 0 ? allocate(KvKind::Sliding) : -1;
    if (f >= 0 && (window_ == 0 || s >= 0)) {
      store_.copy_block(KvKind::Full, best->full, f, best_k);
      if (s >= 0) store_.copy_block(KvKind::Sliding, best->sliding, s, best_k);
      table.full.push_back(f);
      table.sliding.push_back(s);
      const_cast<Entry*>(best)->stamp = ++clock_;
      return n + best_k;
    }
    if (f >= 0) pool_.unref(KvKind::Full, f);
    if (s >= 0) pool_.unref(KvKind::Sliding, s);
  }
  return n;
}

int32_t PrefixCache::allocate(KvKind kind) {
  int32_t b = pool_.take(kind);
  while (b < 0 && evict_one(kind)) b = pool_.take(kind);
  return b;
}

bool PrefixCache::evict_one(KvKind kind) {
  // Linear scan: eviction happens only under pressure, and the index holds at most the pool's blocks.
  auto oldest = [&](Map& map) {
    auto best = map.end();
    for (auto it = map.begin(); it != map.end(); ++it) {
      const int32_t b = kind == KvKind::Full ? it->second.full : it->second.sliding;
      if (b >= 0 && pool_.refs(kind, b) == 1 && (best == map.end() || it->second.stamp < best->second.stamp)) best = it;
    }
    return best;
  };
  auto whole = oldest(blocks_), tail = oldest(tails_);
  const bool use_tail = tail != tails_.end() && (whole == blocks_.end() || tail->second.stamp < whole->second.stamp);
  if (!use_tail && whole == blocks_.end()) return false;
  auto it = use_tail ? tail : whole;
  if (!use_tail) save(it->first, it->second);
  if (kind == KvKind::Sliding) {  // the whole-block entry lives on for reuse of shorter prefixes
    pool_.unref(KvKind::Sliding, std::exchange(it->second.sliding, -1));
    return true;
  }
  drop(use_tail, it);
  return true;
}

void PrefixCache::drop(bool tail, Map::iterator it) {
  Entry& e = it->second;
  pool_.unref(KvKind::Full, e.full);
  if (e.sliding >= 0) pool_.unref(KvKind::Sliding, e.sliding);
  erase_pair(tail ? tail_children_ : children_, e.parent, it->first);
  (tail ? tails_ : blocks_).erase(it);
}

void PrefixCache::save(uint64_t hash, Entry& e) {
  if (!disk_ || e.on_disk) return;
  DiskBlock db;
  db.hash = hash, db.parent = e.parent, db.tokens = e.tokens;
  db.full.resize(store_.block_bytes(KvKind::Full));
  store_.read_block(KvKind::Full, e.full, db.full);
  if (e.sliding >= 0) {
    db.sliding.resize(store_.block_bytes(KvKind::Sliding));
    store_.read_block(KvKind::Sliding, e.sliding, db.sliding);
  }
  disk_->save(db);
  e.on_disk = true;
}

void PrefixCache::publish_block(std::span<const int32_t> tokens, const BlockTable& table, std::vector<uint64_t>& chain) {
  const size_t i = chain.size();
  const uint64_t parent = i ? chain.back() : root_;
  auto blk = tokens.subspan(i * B, B);
  const uint64_t h = chain_hash(parent, blk);
  chain.push_back(h);
  if (blocks_.contains(h)) return;  // another sequence computed the same prefix first
  Entry e;
  e.parent = parent;
  e.tokens.assign(blk.begin(), blk.end());
  e.full = table.full[i];
  pool_.ref(KvKind::Full, e.full);
  pool_.set_indexed(KvKind::Full, e.full, true);
  if (window_ > 0 && (e.sliding = table.sliding[i]) >= 0) {
    pool_.ref(KvKind::Sliding, e.sliding);
    pool_.set_indexed(KvKind::Sliding, e.sliding, true);
  }
  e.stamp = ++clock_;
  e.on_disk = disk_ && disk_->contains(h);
  children_.emplace(parent, h);
  blocks_.emplace(h, std::move(e));
}

void PrefixCache::publish_tail(std::span<const int32_t> tokens, int64_t n, const BlockTable& table, const std::vector<uint64_t>& chain) {
  const int64_t start = int64_t(chain.size()) * B;
  if (n <= start || n - start >= B) return;
  const uint64_t parent = chain.empty() ? root_ : chain.back();
  auto tail = tokens.subspan(size_t(start), size_t(n - start));
  // One tail per divergence: a tail that another one already contains adds nothing; a longer one
  // replaces the tails it extends.
  for (auto [lo, hi] = tail_children_.equal_range(parent); lo != hi;) {
    auto it = tails_.find(lo->second);
    ++lo;
    const auto& t = it->second.tokens;
    if (t.size() >= tail.size() && std::equal(tail.begin(), tail.end(), t.begin())) return;
    if (t.size() < tail.size() && std::equal(t.begin(), t.end(), tail.begin()) && pool_.refs(KvKind::Full, it->second.full) == 1) {
      drop(true, it);
      break;  // the multimap changed under the loop
    }
  }
  Entry e;
  e.parent = parent;
  e.tokens.assign(tail.begin(), tail.end());
  e.full = table.full[size_t(start / B)];
  pool_.ref(KvKind::Full, e.full);
  pool_.set_indexed(KvKind::Full, e.full, true);
  if (window_ > 0 && (e.sliding = table.sliding[size_t(start / B)]) >= 0) {
    pool_.ref(KvKind::Sliding, e.sliding);
    pool_.set_indexed(KvKind::Sliding, e.sliding, true);
  }
  e.stamp = ++clock_;
  const uint64_t id = next_tail_id_++;
  tail_children_.emplace(parent, id);
  tails_.emplace(id, std::move(e));
}

void PrefixCache::flush() {
  for (auto& [h, e] : blocks_) save(h, e);
}

}  // namespace flashfix
