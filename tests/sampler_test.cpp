#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "engine/sampler.h"

using namespace flashfix;

TEST(Sampler, GreedyIsArgmax) {
  Sampler s({.temperature = 0.f});
  std::vector<float> logits = {0.1f, 3.f, -1.f, 2.9f};
  EXPECT_EQ(s.sample(logits, {}), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  Sampler s({.temperature = 0.f, .repeat_penalty = 2.f});
  std::vector<float> logits = {4.f, 3.f, -1.f};
  std::vector<int32_t> history = {0, 0, 2};
  EXPECT_EQ(s.sample(logits, history), 1);  // 4 -> 2 falls below 3
  EXPECT_FLOAT_EQ(logits[0], 2.f);
  EXPECT_FLOAT_EQ(logits[2], -2.f);
}

TEST(Sampler, TopKOneIsGreedyAtAnyTemperature) {
  Sampler s({.temperature = 5.f, .top_k = 1, .seed = 3});
  for (int i = 0; i < 50; ++i) {
    std::vector<float> logits = {0.f, 0.5f, 0.4f};
    EXPECT_EQ(s.sample(logits, {}), 1);
  }
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  Sampler s({.temperature = 1.f, .top_k = 0, .top_p = 1.f, .min_p = 0.5f, .seed = 1});
  for (int i = 0; i < 200; ++i) {
    std::vector<float> logits = {0.f, std::log(0.4f), std::log(0.6f), -10.f};  // p(3) << 0.5 * p(0)
    int32_t t = s.sample(logits, {});
    EXPECT_TRUE(t == 0 || t == 2) << t;
  }
}

TEST(Sampler, FrequenciesFollowSoftmaxAndSeedReproduces) {
  SamplerParams p{.temperature = 1.f, .top_k = 0, .top_p = 1.f, .min_p = 0.f, .seed = 42};
  Sampler a(p), b(p);
  std::map<int32_t, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> la = {0.f, std::log(2.f), std::log(5.f)}, lb = la;
    int32_t ta = a.sample(la, {}), tb = b.sample(lb, {});
    EXPECT_EQ(ta, tb);
    count[ta]++;
  }
  EXPECT_NEAR(count[0] / double(n), 0.125, 0.015);
  EXPECT_NEAR(count[1] / double(n), 0.25, 0.015);
  EXPECT_NEAR(count[2] / double(n), 0.625, 0.015);
}

// Top-p and min-p over a large vocabulary sort only as far as the cut (in growing steps): the kept
// set must still be exactly the one a full sort gives, here ~300 tokens, well past the first step.
TEST(Sampler, TopPAndMinPKeepExactlyTheFullSortsSet) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> base(8000);
  for (float& x : base) x = g(rng);
  for (int i = 0; i < 300; ++i) base[size_t(i) * 25] = 8.f + 0.01f * float(i % 37);  // the bulk of the mass
  struct Case {
    float top_p, min_p;
  };
  for (const Case c : {Case{0.9f, 0.f}, Case{1.f, 0.9f}, Case{0.97f, 0.5f}}) {
    // The reference: every token by probability, top-p then min-p as the sampler documents them.
    std::vector<std::pair<float, int32_t>> all;
    for (int32_t i = 0; i < int32_t(base.size()); ++i) all.push_back({base[size_t(i)], i});
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    double sum = 0;
    for (const auto& a : all) sum += std::exp(double(a.first - all[0].first));
    std::set<int32_t> want;
    double acc = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      const double p = std::exp(double(all[i].first - all[0].first));
      if (c.min_p > 0.f && i > 0 && p < c.min_p) break;
      want.insert(all[i].second);
      acc += p / sum;
      if (c.top_p < 1.f && acc >= c.top_p) break;
    }
    ASSERT_GT(want.size(), 64u);
    Sampler s({.temperature = 1e6f, .top_k = 0, .top_p = c.top_p, .min_p = c.min_p, .seed = 9});  // ~uniform over the kept set
    std::set<int32_t> got;
    for (int i = 0; i < 25 * int(want.size()); ++i) {
      std::vector<float> l = base;
      const int32_t t = s.sample(l, {});
      ASSERT_TRUE(want.count(t)) << "token " << t << " is outside the kept set (top_p " << c.top_p << ", min_p " << c.min_p << ")";
      got.insert(t);
    }
    EXPECT_EQ(got, want) << "top_p " << c.top_p << ", min_p " << c.min_p;
  }
}

// Logits a corrupt model can produce are a clear error, never a sort over NaN or a pick among them.
TEST(Sampler, NonFiniteLogitsAreAnError) {
  for (float temperature : {0.f, 0.8f}) {
    Sampler s({.temperature = temperature, .top_k = 0, .top_p = 0.9f, .seed = 1});
    std::vector<float> nan_logits = {0.f, 1.f, NAN, 2.f}, inf_logits = {0.f, INFINITY, 1.f}, masked = {-INFINITY, -INFINITY};
    EXPECT_THROW(s.sample(nan_logits, {}), std::runtime_error);
    EXPECT_THROW(s.sample(inf_logits, {}), std::runtime_error);
    EXPECT_THROW(s.sample(masked, {}), std::runtime_error);
    std::vector<float> partly_masked = {-INFINITY, -3.f, -INFINITY};
    EXPECT_EQ(s.sample(partly_masked, {}), 1);
  }
}

TEST(Sampler, RejectsNonsense) {
  EXPECT_THROW(Sampler({.temperature = NAN}), std::invalid_argument);
  EXPECT_THROW(Sampler({.temperature = 1.f, .top_p = 0.f}), std::invalid_argument);
}
