#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

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
    std::vector<int32_t> recent(history.begin() + long(from), history.end());
    std::sort(recent.begin(), recent.end());
    recent.erase(std::unique(recent.begin(), recent.end()), recent.end());
    for (int32_t t : recent)
      if (t >= 0 && t < n) logits[size_t(t)] = logits[size_t(t)] > 0 ? logits[size_t(t)] / p_.repeat_penalty : logits[size_t(t)] * p_.repeat_penalty;
  }
  if (p_.temperature <= 0.f) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());

  cand_.clear();
  for (int32_t i = 0; i < n; ++i) cand_.push_back({logits[size_t(i)], i});
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = cand_.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) keep = size_t(p_.top_k);
  std::partial_sort(cand_.begin(), cand_.begin() + long(keep), cand_.end(), by_logit);
  cand_.resize(keep);

  // Probabilities at temperature 1 decide the top-p/min-p cut; the temperature then reshapes what is kept.
  const float mx = cand_[0].first;
  std::vector<double> prob(cand_.size());
  double sum = 0;
  for (size_t i = 0; i < cand_.size(); ++i) sum += (prob[i] = std::exp(double(cand_[i].first - mx)));
  size_t cut = cand_.size();
  if (p_.top_p < 1.f) {
    double acc = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      acc += prob[i] / sum;
      if (acc >= p_.top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0.f)
    for (size_t i = 1; i < cut; ++i)
      if (prob[i] < p_.min_p * prob[0]) {
        cut = i;
        break;
      }
  cand_.resize(cut);

  std::vector<double> w(cand_.size());
  double total = 0;
  for (size_t i = 0; i < cand_.size(); ++i) total += (w[i] = std::exp(double(cand_[i].first - mx) / p_.temperature));
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (size_t i = 0; i < cand_.size(); ++i) {
    if (r < w[i]) return cand_[i].second;
    r -= w[i];
  }
  return cand_.back().second;
}

}  // namespace flashfix
