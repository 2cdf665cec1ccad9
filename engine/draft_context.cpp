// Prompt lookup: the last n tokens (n = 3, 2, 1) are looked up among the earlier ones, and what
// followed their most recent earlier occurrence is the draft. Code edits copy long spans of the file
// being edited, which this predicts almost perfectly. The index maps each n-gram to where it last
// ended and grows by the tokens added since the previous call, so a step costs a few hash lookups
// however long the context is.
#include <unordered_map>

#include <xxhash.h>

#include "engine/draft.h"

namespace flashfix {
namespace {

constexpr int kLongestNgram = 3;

class ContextDraft final : public DraftSource {
 public:
  std::string_view name() const override { return "context"; }

  void propose(const DraftContext& ctx, int max_k, std::vector<int32_t>& out) override {
    const std::span<const int32_t> t = ctx.tokens;
    const int64_t last = int64_t(t.size()) - 1;
    // Index n-grams ending before the last token: a lookup then finds only earlier occurrences.
    for (; indexed_ < last; ++indexed_)
      for (int n = 1; n <= kLongestNgram && n <= indexed_ + 1; ++n) ends_[key(t, indexed_, n)] = indexed_;
    for (int n = kLongestNgram; n >= 1; --n) {
      if (n > last + 1) continue;
      const auto it = ends_.find(key(t, last, n));
      if (it == ends_.end() || !same(t, it->second, last, n)) continue;  // a hash collision
      for (int64_t p = it->second + 1; p <= last && p <= it->second + max_k; ++p) out.push_back(t[size_t(p)]);
      return;
    }
  }

  void accepted(int) override {}  // the index only ever grows with the sequence's accepted tokens

 private:
  static uint64_t key(std::span<const int32_t> t, int64_t end, int n) {
    return XXH3_64bits_withSeed(&t[size_t(end - n + 1)], size_t(n) * sizeof(int32_t), uint64_t(n));
  }
  static bool same(std::span<const int32_t> t, int64_t a, int64_t b, int n) {
    for (int i = 0; i < n; ++i)
      if (t[size_t(a - i)] != t[size_t(b - i)]) return false;
    return true;
  }

  std::unordered_map<uint64_t, int64_t> ends_;  // n-gram hash -> position of its last token
  int64_t indexed_ = 0;                         // n-grams ending before this position are indexed
};

}  // namespace

std::unique_ptr<DraftSource> make_context_draft(const DraftSetup&) { return std::make_unique<ContextDraft>(); }

}  // namespace flashfix
