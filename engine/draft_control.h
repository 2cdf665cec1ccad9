// When drafting pays, and how many tokens: speculative decoding must never be a slowdown.
//
// A verify pass of k+1 tokens costs more than a one-token step (on a MoE the extra tokens route to
// other experts, whose weights are read too), and returns 1 + (the accepted drafts) tokens. With a
// per-token acceptance a, a pass of k drafts yields (1 - a^(k+1)) / (1 - a) tokens on average; the
// controller picks the source and k in 0..K that maximise tokens per unit of time, using the measured
// time of decode steps by their token count (StepCosts, engine-wide) and each source's measured
// acceptance and drafting time (DraftControl, per sequence). Times are the process's CPU time (the
// engine's choice): on a shared machine, other load stretches wall time by the moment, not work.
// Acceptance enters the decision at its lower confidence bound, so a run of lucky guesses from a
// source that does not pay does not switch drafting on. When nothing beats plain decoding it stops
// drafting and probes again every kProbeInterval steps with one token, so a source that starts to pay
// (the model begins copying a span of its input) is noticed. While drafting it likewise takes a plain
// step every kProbeInterval steps (and before its first draft), so the cost it compares with is
// measured rather than assumed. A source whose drafting costs next to nothing (context lookup) is
// asked for one token even on steps that do not draft ("shadow"): comparing it with the token then
// sampled keeps its acceptance known without paying for a verify pass, so it is not probed (once the
// cost of a pass one token longer is known).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flashfix {

// Time and weight bytes of a decode-only step by the number of tokens it runs (all sequences together).
class StepCosts {
 public:
  void observe(int64_t tokens, double seconds, double weight_bytes = 0);
  // The cost of a step of `tokens` over one of `base` tokens: its time measured where known,
  // interpolated between measured counts, else extrapolated with a prior that a token costs a fifth
  // of a step; never below the ratio of the weight bytes the two read where both were measured.
  // Decode streams its weights, so the byte ratio is the floor the time ratio reaches; a time ratio
  // under it comes from a disturbed measurement (another process's load in one of the two EMAs), and
  // trusting it would draft where drafting loses.
  double ratio(int64_t tokens, int64_t base) const;
  // Seconds of a step of `tokens` as above; 0 before any step was measured.
  double seconds(int64_t tokens) const { return seconds_.empty() ? 0 : estimate(seconds_, tokens); }
  bool measured(int64_t tokens) const { return tokens < int64_t(seconds_.size()) && seconds_[size_t(tokens)] > 0; }

 private:
  static double estimate(const std::vector<double>& ema, int64_t tokens);
  std::vector<double> seconds_, bytes_;  // EMAs by token count; 0: never measured
};

struct DraftChoice {
  int source = -1;  // -1: no draft this step
  int k = 0;
  bool shadow = false;  // propose one token but do not verify it (acceptance bookkeeping only)
};

class DraftControl {
 public:
  static constexpr int kProbeInterval = 32;

  // always: every step drafts max_k tokens from the first source that has any (tests, measuring).
  DraftControl(int n_sources, int max_k, bool always);
  // base: tokens the step runs without this sequence's drafts (this sequence's own token included);
  // room: the most drafts the request can still use; skip: a source that had nothing this step.
  DraftChoice choose(const StepCosts& costs, int64_t base, int64_t room, int skip = -1);
  // After a verify pass: the chosen source proposed `proposed` tokens (fewer than asked is fine),
  // `accepted` of them were accepted; proposing took `seconds`.
  void record(int source, int asked, int proposed, int accepted, double seconds);

 private:
  struct Source {
    double accepts = 1, rejects = 1;  // decayed counts of drafted tokens verified; the prior is a = 1/2
    double seconds_per_token = 0;     // drafting time per token asked
  };
  std::vector<Source> sources_;
  int max_k_;
  bool always_;
  int idle_ = 0;        // steps since the last draft
  int since_plain_ = 0;  // drafted steps since the last plain one
};

}  // namespace flashfix
