// The draft controller drafts as many tokens as pay for their verify pass, none when drafting does
// not pay (probing now and then), and keeps its numbers measured rather than assumed.
#include <gtest/gtest.h>

#include "engine/draft_control.h"

namespace flashfix {
namespace {

// Steps of 1..8 tokens measured at `per_token` of a one-token step each extra token.
StepCosts linear_costs(double per_token) {
  StepCosts c;
  for (int n = 1; n <= 8; ++n) c.observe(n, 0.010 * (1 + per_token * (n - 1)));
  return c;
}

// Feeds `passes` verify passes of k drafts, each accepting its first `accepted`.
void teach(DraftControl& d, int passes, int k, int accepted) {
  for (int i = 0; i < passes; ++i) d.record(0, k, k, accepted, 1e-7);
}

TEST(DraftControl, DraftsMoreTokensTheCheaperAndLikelierTheyAre) {
  const StepCosts cheap = linear_costs(0.05);
  DraftControl always_right(1, 4, false);
  teach(always_right, 40, 4, 4);
  int drafted = 0, plain = 0;
  for (int step = 0; step < 64; ++step) {
    const DraftChoice c = always_right.choose(cheap, 1, 100);
    if (c.source == 0 && !c.shadow) EXPECT_EQ(c.k, 4), ++drafted;
    else ++plain;
  }
  EXPECT_EQ(plain, 2);  // one plain step in 32 keeps the base cost measured
  // Drafts never exceed the room the request has left.
  EXPECT_EQ(always_right.choose(cheap, 1, 2).k, 2);
  EXPECT_EQ(always_right.choose(cheap, 1, 0).source, -1);
}

TEST(DraftControl, StopsWhenVerifyingCostsMoreThanItYields) {
  // A verify pass of k+1 tokens costs k+1 steps (compute-bound): no acceptance rate below 1 pays.
  const StepCosts linear = linear_costs(1.0);
  DraftControl d(1, 4, false);
  for (int i = 0; i < 40; ++i) d.record(0, 2, 2, 1, 0.002);  // half accepted; drafting a token: a fifth of a step
  int drafted = 0, probes = 0;
  for (int step = 0; step < 64; ++step) {
    const DraftChoice c = d.choose(linear, 1, 100);
    if (c.source < 0 || c.shadow) continue;
    ++drafted;
    if (c.k == 1) ++probes;
  }
  EXPECT_EQ(drafted, probes);  // only probes
  EXPECT_EQ(probes, 64 / DraftControl::kProbeInterval);
}

TEST(DraftControl, CheapSourcesAreShadowedWhileOffAndTurnOnWhenRight) {
  const StepCosts costs = linear_costs(0.4);
  DraftControl d(1, 4, false);
  teach(d, 40, 1, 0);  // always wrong: off
  DraftChoice c = d.choose(costs, 1, 100);
  ASSERT_EQ(c.source, 0);
  EXPECT_TRUE(c.shadow);  // drafting takes 1e-7 s against a 10 ms step: worth a free look
  EXPECT_EQ(c.k, 1);
  // The shadowed guesses turn out right: drafting comes back without waiting for a probe.
  for (int i = 0; i < 40; ++i) d.record(0, 1, 1, 1, 1e-7);
  c = d.choose(costs, 1, 100);
  EXPECT_FALSE(c.shadow);
  EXPECT_GE(c.k, 2);
}

TEST(DraftControl, ShadowedSourcesAreNotProbed) {
  // Its shadowed guesses already tell how often a cheap source is right, and the engine has measured
  // a pass one token longer: probing it would pay for a verify pass that is known not to pay.
  const StepCosts costs = linear_costs(0.6);
  DraftControl d(1, 4, false);
  teach(d, 40, 1, 0);
  for (int step = 0; step < 96; ++step) {
    const DraftChoice c = d.choose(costs, 1, 100);
    EXPECT_EQ(c.source, 0);
    EXPECT_TRUE(c.shadow);
  }
  // Until that pass was measured it is probed like any other source.
  StepCosts base_only;
  base_only.observe(1, 0.010);
  int probes = 0;
  for (int step = 0; step < 64; ++step) {
    const DraftChoice c = d.choose(base_only, 1, 100);
    probes += c.source == 0 && !c.shadow;
  }
  EXPECT_EQ(probes, 64 / DraftControl::kProbeInterval);
}

TEST(DraftControl, LuckyStreaksOfALosingSourceDoNotTurnDraftingOn) {
  // One token costs 1.62 steps to verify and draft: drafting pays from an acceptance of about 0.67. A source
  // right half the time (alternating, then a streak of eight) never gets there; its point estimate
  // does (0.69 after the streak: a gain of 1.04), its lower bound (0.59) does not.
  const StepCosts costs = linear_costs(0.6);
  DraftControl d(1, 1, false);
  for (int i = 0; i < 40; ++i) d.record(0, 1, 1, i % 2, 0.0002);  // 2% of a step: not shadowed
  for (int i = 0; i < 8; ++i) d.record(0, 1, 1, 1, 0.0002);
  int drafted = 0;
  for (int step = 0; step < 31; ++step) drafted += d.choose(costs, 1, 100).source == 0;
  EXPECT_EQ(drafted, 0);
  // A source that is right 90% of the time drafts.
  DraftControl good(1, 1, false);
  for (int i = 0; i < 40; ++i) good.record(0, 1, 1, i % 10 != 0, 0.0002);
  EXPECT_EQ(good.choose(costs, 1, 100).source, 0);
}

TEST(DraftControl, ExpensiveDraftingCountsAgainstItsGain) {
  const StepCosts costs = linear_costs(0.05);
  DraftControl d(1, 4, false);
  for (int i = 0; i < 40; ++i) d.record(0, 4, 4, 2, 0.040);  // drafting a token costs a step: never pays at 50%
  for (int step = 0; step < 20; ++step) EXPECT_EQ(d.choose(costs, 1, 100).source, -1);
}

TEST(DraftControl, ForcedModeAlwaysDraftsTheMost) {
  DraftControl d(2, 3, true);
  const StepCosts none;
  EXPECT_EQ(d.choose(none, 1, 100).k, 3);
  EXPECT_EQ(d.choose(none, 1, 100).source, 0);
  EXPECT_EQ(d.choose(none, 1, 100, 0).source, 1);  // the first had nothing: the next source
  EXPECT_EQ(d.choose(none, 1, 100, 1).source, -1);
  EXPECT_EQ(d.choose(none, 1, 1).k, 1);
}

TEST(StepCosts, InterpolatesAndExtrapolatesUnmeasuredCounts) {
  StepCosts c;
  EXPECT_EQ(c.seconds(3), 0);
  c.observe(1, 0.010);
  c.observe(5, 0.030);
  EXPECT_NEAR(c.ratio(3, 1), 2.0, 1e-12);                // halfway between 1 and 5
  EXPECT_NEAR(c.ratio(6, 5), (0.030 * (1 + 0.2 / 5)) / 0.030, 1e-12);  // past the last: the prior slope
  c.observe(1, 0.020);  // an EMA, not the last sample
  EXPECT_GT(c.seconds(1), 0.010);
  EXPECT_LT(c.seconds(1), 0.020);
}

TEST(StepCosts, WeightBytesAreTheFloorOfAMeasuredRatio) {
  StepCosts c;
  c.observe(1, 0.010, 100e6);
  c.observe(3, 0.012, 250e6);  // disturbed: the one-token time was measured under load
  EXPECT_NEAR(c.ratio(3, 1), 2.5, 1e-12);
  c.observe(5, 0.040, 300e6);  // compute-bound: time above bytes counts as measured
  EXPECT_NEAR(c.ratio(5, 1), 4.0, 1e-12);
  EXPECT_NEAR(c.ratio(2, 1), 1.1, 1e-12);  // no bytes for 2 tokens: the interpolated time
  c.observe(4, 0.020);                     // a backend that counts no bytes: time alone
  EXPECT_NEAR(c.ratio(4, 1), 2.0, 1e-12);
}

}  // namespace
}  // namespace flashfix
