// MTP drafting: the model's nextn heads, chained (Backend::mtp_draft). The heads keep K/V of their
// own in the sequence's Full blocks; this source remembers how far each head's rows are up to date
// and has the backend recompute the rest, in one batch, before it drafts.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/draft.h"

namespace flashfix {
namespace {

class MtpDraft final : public DraftSource {
 public:
  explicit MtpDraft(Backend& backend) : backend_(backend), fresh_from_(size_t(backend.mtp_heads())) {
    // Head k's first row is at position k (head 1 reads the trunk's state of position 0).
    for (size_t k = 0; k < fresh_from_.size(); ++k) fresh_from_[k] = int64_t(k) + 1;
    drafts_.resize(fresh_from_.size());
    const ModelConfig& c = backend.model().config();
    const auto windowed = [](const LayerConfig& L) { return L.sliding; };
    window_ = std::all_of(c.layers.begin() + c.n_layer, c.layers.end(), windowed) ? c.sliding_window : 0;
  }

  std::string_view name() const override { return "mtp"; }

  void propose(const DraftContext& ctx, int max_k, std::vector<int32_t>& out) override {
    const int heads = std::min(max_k, int(fresh_from_.size()));
    if (heads <= 0 || ctx.computed < 1) return;  // head 1 needs the trunk's state of a position before the token
    // Head k at position s reads head k-1's output at s - 1, which only exists if that head runs over
    // s - 1 in the same call: every head restarts where the most stale one needs it.
    int64_t from = ctx.computed;
    for (int k = 1; k <= heads; ++k) from = std::min(from, fresh_from_[size_t(k - 1)] - (k - 1));
    // With windowed heads, a row of head k is exact once about k windows before it were computed
    // (head 1's keys, then head 1's outputs feeding head 2's keys, ...): rows further back, stale or
    // never computed (a long prompt), reach neither these drafts nor the keys later calls read.
    if (window_ > 0) from = std::max(from, ctx.computed - heads * window_);
    MtpRun run;
    run.blocks = ctx.blocks;
    run.tokens = ctx.tokens;
    run.from = std::max<int64_t>(1, from);
    run.n_heads = heads;
    run.drafts = drafts_.data();
    backend_.mtp_draft(*ctx.store, std::span<const MtpRun>(&run, 1));
    // Rows from ctx.computed + 1 on were computed from drafts, which the next call redoes.
    for (int k = 1; k <= heads; ++k) fresh_from_[size_t(k - 1)] = ctx.computed + 1;
    out.insert(out.end(), drafts_.begin(), drafts_.begin() + heads);
  }

  // Acceptance needs no bookkeeping: the next propose sees how far the sequence advanced.
  void accepted(int) override {}

 private:
  Backend& backend_;
  std::vector<int64_t> fresh_from_;  // per head: the first position whose row is not known to be up to date
  std::vector<int32_t> drafts_;
  int64_t window_ = 0;  // the heads' attention window when every head has one, else 0
};

}  // namespace

bool mtp_supported(const Backend& backend, std::string* why_not) {
  if (backend.mtp_heads() > 0) return true;
  if (why_not)
    *why_not = backend.model().config().n_nextn == 0
                   ? "the model has no MTP (nextn) heads"
                   : "the " + std::string(backend.name()) + " backend cannot run the model's MTP heads";
  return false;
}

std::unique_ptr<DraftSource> make_mtp_draft(const DraftSetup& setup) {
  std::string why;
  if (!mtp_supported(setup.backend, &why)) throw std::invalid_argument(why);
  return std::make_unique<MtpDraft>(setup.backend);
}

}  // namespace flashfix
