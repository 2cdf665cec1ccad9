// Draft sources for speculative decoding: per sequence, something that guesses the next few tokens
// cheaply, so one batched trunk pass can verify them all (engine.cpp accepts the longest agreeing
// prefix, or applies the speculative-sampling rule at temperature > 0, so the output is unchanged).
//
// The engine creates one source of each enabled kind per decoding sequence and, at a decode step,
// asks at most one of them for a draft (draft_control.h decides which and how many tokens pay):
//   1. propose(ctx, max_k, out): ctx.tokens are the sequence's accepted tokens (prompt and generated);
//      positions [0, ctx.computed) have KV and the trunk's final hidden state in ctx.blocks, and
//      ctx.computed == ctx.tokens.size() - 1: the last token, just sampled, is not fed yet. The table
//      already holds blocks for positions [ctx.computed, ctx.computed + 1 + max_k), so a source with
//      KV of its own in the store (MTP) may write those rows; the engine writes the trunk's rows of
//      the same positions in the verify pass right after. Appends at most max_k tokens to out (none:
//      no draft this step).
//   2. The engine feeds [ctx.tokens.back(), d1..dk] as one run and accepts a prefix of the drafts.
//   3. accepted(n_accepted): n_accepted of the k tokens the last propose gave were accepted; the
//      sequence then has n_accepted + 1 new tokens, and computed advanced by n_accepted + 1. Rows
//      written for positions at or after the new computed hold rejected tokens: they are garbage and
//      will be overwritten (never read: attention only reads positions < the next run's end).
// A source that is not asked at a step (another source drafted, or drafting paid too little) sees
// the sequence grow by several tokens before its next propose; it must catch up from ctx itself.
// A source whose propose costs under 1% of a step may be asked for one token that is not verified
// but only compared with the token sampled (draft_control.h, "shadow"); no accepted() follows that.
// Sources run on the scheduler thread and must not block.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "engine/backend.h"

namespace flashfix {

enum class DraftMode { None, Mtp, Context, Auto };

// "none", "mtp", "context" or "auto"; throws std::invalid_argument naming the value otherwise.
DraftMode parse_draft_mode(std::string_view name);
std::string_view draft_mode_name(DraftMode mode);

// Upper bound on --draft-max: a verify pass of K+1 tokens per sequence must stay a small step.
constexpr int kMaxDraftTokens = 16;

struct DraftContext {
  std::span<const int32_t> tokens;  // accepted tokens; tokens.back() is the one the next run starts with
  int64_t computed = 0;             // == tokens.size() - 1
  const BlockTable* blocks = nullptr;
  KvStore* store = nullptr;         // the engine's store, holding the sequence's blocks
};

class DraftSource {
 public:
  virtual ~DraftSource() = default;
  virtual std::string_view name() const = 0;  // "context", "mtp", "oracle": reported per source
  virtual void propose(const DraftContext& ctx, int max_k, std::vector<int32_t>& out) = 0;
  virtual void accepted(int n_accepted) = 0;
};

// What a source is built from: the engine's backend and store (a source with device state, MTP,
// allocates it here) and the longest context a sequence may reach.
struct DraftSetup {
  Backend& backend;
  KvStore& store;
  int64_t n_ctx;
};

// Prompt lookup over the sequence's own tokens (draft_context.cpp); any architecture.
std::unique_ptr<DraftSource> make_context_draft(const DraftSetup& setup);

// Replays a known continuation of the prompt (the model's own earlier output) as drafts, with a
// share 1 - accuracy of its tokens replaced by other ones (chosen from seed, the same every run):
// bench --spec-oracle measures the engine's side of speculation at a chosen acceptance rate.
std::unique_ptr<DraftSource> make_replay_draft(std::vector<int32_t> continuation, int64_t prompt_tokens, double accuracy,
                                               int32_t n_vocab, uint64_t seed);

// Drafts from the model's MTP heads (draft_mtp.cpp). Throws std::invalid_argument naming the reason
// when the model has no MTP heads or the backend cannot run them; mtp_supported says which in advance.
bool mtp_supported(const Backend& backend, std::string* why_not);
std::unique_ptr<DraftSource> make_mtp_draft(const DraftSetup& setup);

}  // namespace flashfix
