#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace flashfix {

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
  if (!std::isfinite(p.temperature) || p.top_p <= 0.f || p.repeat_penalty <= 0.f || p.repeat_last_n < 0)
    throw std::invalid_argument("sampler: temperature must be finite, top_p and repeat_penalty positive");
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  const int32_t n = int32_t(logits.size());
  if (p_.repeat_penalty != 1.f) {
    // Penalise each distinct recent token once: shrink positive logits, push negative ones further.
    const size_t from = history.size() > size_t(p_.repeat_last_n) ? history.size() - size_t(p_.repeat_last_n) : 0;
    recent_.assign(history.begin() + long(from), history.end());
    std::sort(recent_.begin(), recent_.end());
    recent_.erase(std::unique(recent_.begin(), recent_.end()), recent_.end());
    for (int32_t t : recent_)
      if (t >= 0 && t < n) logits[size_t(t)] = logits[size_t(t)] > 0 ? logits[size_t(t)] / p_.repeat_penalty : logits[size_t(t)] * p_.repeat_penalty;
  }
  // NaN or +inf logits (corrupt weights, an overflow) would make every choice below meaningless, and
  // NaN breaks the sort's ordering; -inf is a masked token. At least one token must stay finite.
  int32_t best = -1;
  float best_logit = -INFINITY;
  bool bad = false;
  for (int32_t i = 0; i < n; ++i) {  // branch-free but for a new maximum, which is rare
    const float l = logits[size_t(i)];
    bad |= std::isnan(l) | (l == INFINITY);
    if (l > best_logit) best_logit = l, best = i;
  }
  if (bad)
    for (int32_t i = 0; i < n; ++i)
      if (const float l = logits[size_t(i)]; std::isnan(l) || l == INFINITY)
        throw std::runtime_error("sampler: the model's logit for token " + std::to_string(i) + " is " + (std::isnan(l) ? "NaN" : "+inf") +
                                 " (corrupt weights or a numeric overflow)");
  if (best < 0) throw std::runtime_error("sampler: every token's logit is -inf (all masked)");
  if (p_.temperature <= 0.f) return best;

  // Candidates are put in order (highest logit first, ties by id) only as far as a cut needs: top-k
  // takes a partial sort of k; top-p and min-p extend the sorted prefix in growing steps until the cut
  // is found, which on a 152k vocabulary is usually within the first few hundred. A full sort of the
  // vocabulary cost ~20 ms per token, more than a decode step of a 3B-active model.
  cand_.resize(size_t(n));
  for (int32_t i = 0; i < n; ++i) cand_[size_t(i)] = {logits[size_t(i)], i};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = cand_.size(), sorted = 0;
  auto sort_through = [&](size_t i) {  // cand_[0..i] in order
    if (i < sorted) return;
    const size_t upto = std::min(keep, std::max(i + 1, 4 * sorted + 64));
    // nth_element then sort: linear in the unsorted rest plus the new step's sort, where a heap-based
    // partial_sort of a large step costs several times more.
    std::nth_element(cand_.begin() + long(sorted), cand_.begin() + long(upto - 1), cand_.begin() + long(keep), by_logit);
    std::sort(cand_.begin() + long(sorted), cand_.begin() + long(upto), by_logit);
    sorted = upto;
  };
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) {
    keep = size_t(p_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + long(keep), cand_.end(), by_logit);
    sorted = keep;
  }

  // Probabilities at temperature 1 decide the top-p/min-p cut; the temperature then reshapes what is kept.
  const float mx = best_logit;  // the largest logit is in the kept set, whatever top-k keeps
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += std::exp(double(cand_[i].first - mx));
  size_t cut = keep;
  if (p_.top_p < 1.f || p_.min_p > 0.f) {
    double acc = 0;
    for (size_t i = 0; i < keep; ++i) {
      sort_through(i);
      const double prob = std::exp(double(cand_[i].first - mx));  // the first is the max: 1
      if (p_.min_p > 0.f && i > 0 && prob < p_.min_p) {
        cut = i;
        break;
      }
      acc += prob / sum;
      if (p_.top_p < 1.f && acc >= p_.top_p) {
        cut = i + 1;
        break;
      }
    }
  }

  weight_.resize(cut);
  double total = 0;
  for (size_t i = 0; i < cut; ++i) total += (weight_[i] = std::exp(double(cand_[i].first - mx) / p_.temperature));
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (size_t i = 0; i < cut; ++i) {
    if (r < weight_[i]) return cand_[i].second;
    r -= weight_[i];
  }
  return cand_[cut - 1].second;
}

}  // namespace flashfix
