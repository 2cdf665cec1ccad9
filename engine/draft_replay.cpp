// A draft source that knows the answer: the continuation the model produced before, corrupted at a
// chosen share of positions, so speculation can be measured at any acceptance rate on a model whose
// real drafts would be accepted at some arbitrary rate (random weights).
#include <stdexcept>

#include <xxhash.h>

#include "engine/draft.h"

namespace flashfix {
namespace {

class ReplayDraft final : public DraftSource {
 public:
  ReplayDraft(std::vector<int32_t> continuation, int64_t prompt_tokens, double accuracy, int32_t n_vocab, uint64_t seed)
      : want_(std::move(continuation)), prompt_(prompt_tokens), accuracy_(accuracy), n_vocab_(n_vocab), seed_(seed) {
    if (!(accuracy >= 0 && accuracy <= 1)) throw std::invalid_argument("replay draft accuracy must be in [0, 1]");
    if (n_vocab < 2) throw std::invalid_argument("replay drafts need a vocabulary of two tokens or more");
  }

  std::string_view name() const override { return "oracle"; }

  void propose(const DraftContext& ctx, int max_k, std::vector<int32_t>& out) override {
    // Generated index of the first draft: the last token (generated index n - 1) is not fed yet.
    const int64_t first = int64_t(ctx.tokens.size()) - prompt_;
    for (int64_t j = first; j < first + max_k && j < int64_t(want_.size()); ++j) out.push_back(token_at(j));
  }
  void accepted(int) override {}

 private:
  // The token drafted for generated index j: the known one, or (with probability 1 - accuracy, a
  // hash of seed and j deciding) a different one.
  int32_t token_at(int64_t j) const {
    const uint64_t h = XXH3_64bits_withSeed(&j, sizeof j, seed_);
    if (double(h >> 11) * 0x1p-53 < accuracy_) return want_[size_t(j)];
    return int32_t((int64_t(want_[size_t(j)]) + 1 + int64_t(h % uint64_t(n_vocab_ - 1))) % n_vocab_);
  }

  std::vector<int32_t> want_;
  int64_t prompt_;
  double accuracy_;
  int32_t n_vocab_;
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<DraftSource> make_replay_draft(std::vector<int32_t> continuation, int64_t prompt_tokens, double accuracy,
                                               int32_t n_vocab, uint64_t seed) {
  return std::make_unique<ReplayDraft>(std::move(continuation), prompt_tokens, accuracy, n_vocab, seed);
}

}  // namespace flashfix
