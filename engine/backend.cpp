// The standalone single-sequence path: a Sequence is one run in a one-run batch over a store of its
// own, so tests and tools exercise exactly the code the scheduler drives.
#include "engine/backend.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace flashfix {

std::unique_ptr<Sequence> Backend::new_sequence(int64_t n_ctx) {
  if (n_ctx <= 0) throw std::invalid_argument("context size must be positive");
  const ModelConfig& c = model().config();
  const int64_t n_full = (n_ctx + kKvBlockTokens - 1) / kKvBlockTokens;
  // A micro-batch reads positions back to window - 1 before its first token: that span, rounded out
  // to whole blocks, is all a ring of sliding blocks must hold at once.
  int64_t n_sliding = 0;
  for (int il = 0; il < c.n_layer; ++il)
    if (c.layers[size_t(il)].sliding)
      n_sliding = std::min(n_full, (c.sliding_window + kMaxUbatchTokens + kKvBlockTokens - 1) / kKvBlockTokens + 1);
  BlockTable blocks;
  for (int64_t b = 0; b < n_full; ++b) {
    blocks.full.push_back(int32_t(b));
    if (n_sliding) blocks.sliding.push_back(int32_t(b % n_sliding));
  }
  return std::unique_ptr<Sequence>(new Sequence(new_kv_store(n_full, n_sliding), std::move(blocks), n_ctx));
}

void Backend::mtp_draft(KvStore&, std::span<const MtpRun>) {
  throw std::logic_error("the " + std::string(name()) + " backend runs no MTP heads");
}

void UbatchSplitter::check_run(const ModelConfig& c, const KvStore& store, const BatchRun& r) {
  const int64_t n = int64_t(r.tokens.size());
  if (n == 0 || r.pos0 < 0 || r.logits_from < 0 || r.logits_from > n || (r.logits_from < n && !r.logits))
    throw std::invalid_argument("malformed batch run");
  for (int32_t t : r.tokens)
    if (t < 0 || t >= c.n_vocab) throw std::out_of_range("token id " + std::to_string(t) + " is outside the vocabulary");
  auto has_kind = [&](bool sliding) {
    return std::any_of(c.layers.begin(), c.layers.begin() + c.n_layer, [&](const LayerConfig& L) { return L.sliding == sliding; });
  };
  auto need = [&](const std::vector<int32_t>& table, KvKind kind, int64_t from, int64_t to) {
    for (int64_t p = from - from % kKvBlockTokens; p < to; p += kKvBlockTokens) {
      const int32_t b = block_of(table, p);
      if (b < 0 || b >= store.n_blocks(kind)) throw std::logic_error("batch run at a position whose KV block is not held");
    }
  };
  need(r.blocks->full, KvKind::Full, has_kind(false) ? 0 : r.pos0, r.pos0 + n);
  if (has_kind(true)) need(r.blocks->sliding, KvKind::Sliding, std::max<int64_t>(0, r.pos0 - c.sliding_window + 1), r.pos0 + n);
}

void Backend::forward(Sequence& seq, std::span<const int32_t> tokens, Logits which, float* logits) {
  const int64_t n = int64_t(tokens.size());
  if (n == 0) throw std::invalid_argument("forward needs at least one token");
  if (seq.n_past_ + n > seq.n_ctx_)
    throw std::length_error("context full: " + std::to_string(seq.n_past_) + " + " + std::to_string(n) +
                            " tokens exceed the context of " + std::to_string(seq.n_ctx_));
  BatchRun run{&seq.blocks_, seq.n_past_, tokens, which == Logits::All ? 0 : n - 1, logits};
  forward(*seq.store_, std::span<const BatchRun>(&run, 1));
  seq.n_past_ += n;
}

}  // namespace flashfix
