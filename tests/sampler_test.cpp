#include <gtest/gtest.h>

#include <cmath>
#include <map>

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

TEST(Sampler, RejectsNonsense) {
  EXPECT_THROW(Sampler({.temperature = NAN}), std::invalid_argument);
  EXPECT_THROW(Sampler({.temperature = 1.f, .top_p = 0.f}), std::invalid_argument);
}
