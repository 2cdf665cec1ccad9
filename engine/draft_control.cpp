#include "engine/draft_control.h"

#include <algorithm>
#include <cmath>

namespace flashfix {
namespace {

constexpr double kEma = 0.2;           // weight of a new step time
constexpr double kDecay = 0.95;        // per verify pass: acceptance follows the last ~20 passes
constexpr double kPriorSlope = 0.2;    // unmeasured: each extra token costs a fifth of the base step
constexpr double kMinGain = 1.03;      // drafting must beat plain decoding by more than timing noise
constexpr double kShadowCost = 0.01;   // a source drafting this fraction of a step or less is shadowed
// Decisions use the acceptance this many standard deviations below its estimate. ~20 decayed passes
// leave an estimate of 1/2 uncertain by +-0.11: taken at face value, its swings switch drafting on in
// stretches where it loses (measured: 26% of passes drafted at a true 50% that never pays), while a
// source that is really right keeps a bound near its estimate (0.95 +- 0.05) and loses little.
constexpr double kConfidence = 1.0;

// Expected tokens a pass of k drafts yields at per-token acceptance a.
double yield(double a, int k) { return a >= 1 ? k + 1 : (1 - std::pow(a, k + 1)) / (1 - a); }

// The lower confidence bound of a Beta(accepts, rejects) acceptance.
double cautious_acceptance(double accepts, double rejects) {
  const double n = accepts + rejects, mean = accepts / n;
  return std::max(0.0, mean - kConfidence * std::sqrt(mean * (1 - mean) / (n + 1)));
}

}  // namespace

void StepCosts::observe(int64_t tokens, double seconds, double weight_bytes) {
  if (tokens <= 0 || seconds <= 0) return;
  if (int64_t(seconds_.size()) <= tokens) seconds_.resize(size_t(tokens) + 1, 0), bytes_.resize(size_t(tokens) + 1, 0);
  auto update = [](double& e, double x) { e = e == 0 ? x : (1 - kEma) * e + kEma * x; };
  update(seconds_[size_t(tokens)], seconds);
  if (weight_bytes > 0) update(bytes_[size_t(tokens)], weight_bytes);
}

double StepCosts::estimate(const std::vector<double>& ema, int64_t n) {
  int64_t lo = -1, hi = -1;
  for (int64_t i = std::min<int64_t>(n, int64_t(ema.size()) - 1); i > 0 && lo < 0; --i)
    if (ema[size_t(i)] > 0) lo = i;
  for (int64_t i = n; i < int64_t(ema.size()) && hi < 0; ++i)
    if (ema[size_t(i)] > 0) hi = i;
  if (lo == n) return ema[size_t(n)];
  if (lo > 0 && hi > 0) return ema[size_t(lo)] + (ema[size_t(hi)] - ema[size_t(lo)]) * double(n - lo) / double(hi - lo);
  if (lo > 0) return ema[size_t(lo)] * (1 + kPriorSlope * double(n - lo) / double(lo));
  if (hi > 0) return ema[size_t(hi)] / (1 + kPriorSlope * double(hi - n) / double(n));
  return 1 + kPriorSlope * double(n - 1);
}

double StepCosts::ratio(int64_t tokens, int64_t base) const {
  const double time = estimate(seconds_, tokens) / estimate(seconds_, base);
  const bool bytes_known = tokens < int64_t(bytes_.size()) && base < int64_t(bytes_.size()) && bytes_[size_t(tokens)] > 0 &&
                           bytes_[size_t(base)] > 0;
  return bytes_known ? std::max(time, bytes_[size_t(tokens)] / bytes_[size_t(base)]) : time;
}

DraftControl::DraftControl(int n_sources, int max_k, bool always)
    : sources_(size_t(n_sources)), max_k_(max_k), always_(always) {}

DraftChoice DraftControl::choose(const StepCosts& costs, int64_t base, int64_t room, int skip) {
  const int max_k = int(std::min<int64_t>(max_k_, room));
  if (always_) return max_k > 0 && skip + 1 < int(sources_.size()) ? DraftChoice{skip + 1, max_k} : DraftChoice{};
  const double base_seconds = costs.seconds(base);
  // A source cheap enough to shadow: its acceptance is known from the shadowed guesses, so a probe
  // would only pay a verify pass to learn a cost that the engine-wide StepCosts already holds.
  int shadow = -1;
  if (max_k > 0 && skip < 0 && base_seconds > 0)
    for (int s = 0; s < int(sources_.size()) && shadow < 0; ++s)
      if (sources_[size_t(s)].seconds_per_token > 0 && sources_[size_t(s)].seconds_per_token <= kShadowCost * base_seconds) shadow = s;
  const bool probe_shadow = !costs.measured(base + 1);
  DraftChoice best;
  double best_gain = kMinGain;
  DraftChoice probe;
  double probe_gain = -1;
  for (int s = 0; s < int(sources_.size()); ++s) {
    if (s == skip) continue;
    const Source& src = sources_[size_t(s)];
    const double a = cautious_acceptance(src.accepts, src.rejects);
    for (int k = 1; k <= max_k; ++k) {
      const double drafting = base_seconds > 0 ? src.seconds_per_token * k / base_seconds : 0;
      const double cost = costs.ratio(base + k, base) + drafting;
      const double gain = yield(a, k) / cost;
      if (gain > best_gain) best_gain = gain, best = {s, k};
      if (k == 1 && gain > probe_gain && (s != shadow || probe_shadow)) probe_gain = gain, probe = {s, 1};
    }
  }
  if (best.source >= 0) {
    idle_ = 0;
    if (!costs.measured(base) || ++since_plain_ >= kProbeInterval) return since_plain_ = 0, DraftChoice{};
    return best;
  }
  if (max_k > 0 && skip < 0 && ++idle_ >= kProbeInterval && probe.source >= 0) return idle_ = 0, probe;
  if (shadow >= 0) return {shadow, 1, true};
  return {};
}

void DraftControl::record(int source, int asked, int proposed, int accepted, double seconds) {
  Source& s = sources_[size_t(source)];
  if (asked > 0) {
    const double per_token = seconds / asked;
    s.seconds_per_token = s.seconds_per_token == 0 ? per_token : (1 - kEma) * s.seconds_per_token + kEma * per_token;
  }
  if (proposed == 0) return;
  s.accepts = kDecay * s.accepts + accepted;
  s.rejects = kDecay * s.rejects + (accepted < proposed ? 1 : 0);
}

}  // namespace flashfix
