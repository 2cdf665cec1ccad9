// The Engine API on the golden models: greedy requests give the reference continuation, a prompt
// that extends an earlier request reuses its KV and still gives the from-scratch result, and bad
// requests fail before any work.
#include <gtest/gtest.h>

#include <stop_token>
#include <thread>

#include "engine/engine.h"
#include "tests/golden.h"
#include "tests/greedy_request.h"

namespace flashfix {
namespace {

using test::greedy_request;

TEST(Engine, GreedyMatchesTheReferenceContinuation) {
  for (const char* name : {"tiny-qwen3moe-s11", "tiny-step35-s11"}) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    auto engine = Engine::open(g.model_path, EngineOptions{.threads = 2, .n_ctx = 256});
    Result r = engine->generate(greedy_request(g.tokens, int64_t(g.greedy.size())));
    EXPECT_EQ(r.tokens, g.greedy);
    EXPECT_EQ(r.finish, FinishReason::Length);
    EXPECT_EQ(r.prompt_tokens, int64_t(g.tokens.size()));
    EXPECT_EQ(r.cached_tokens, 0);
  }
}

TEST(Engine, ExtendingAnEarlierRequestReusesItsKvAndMatchesFromScratch) {
  auto g = test::load_golden("tiny-step35-s11");  // sliding window 16: the reused prefix is past the window
  auto engine = Engine::open(g.model_path, EngineOptions{.threads = 2, .n_ctx = 256});
  Result first = engine->generate(greedy_request(g.tokens, 8));
  ASSERT_EQ(first.tokens.size(), 8u);

  std::vector<int32_t> turn2 = g.tokens;
  turn2.insert(turn2.end(), first.tokens.begin(), first.tokens.end());
  turn2.insert(turn2.end(), {4098, 198, 4097});  // <|im_end|>\n<|im_start|>: the next turn's framing
  Result reused = engine->generate(greedy_request(turn2, 6));
  EXPECT_EQ(reused.cached_tokens, int64_t(g.tokens.size() + 7));  // the last generated token was never fed
  EXPECT_EQ(reused.computed_tokens, 4);

  auto fresh_engine = Engine::open(g.model_path, EngineOptions{.threads = 2, .n_ctx = 256, .prefix_cache = false});
  Result fresh = fresh_engine->generate(greedy_request(turn2, 6));
  EXPECT_EQ(fresh.cached_tokens, 0);
  EXPECT_EQ(reused.tokens, fresh.tokens);
}

TEST(Engine, CallbacksSeeEveryTokenAndCanCancel) {
  auto g = test::load_golden("tiny-qwen3moe-s11");
  auto engine = Engine::open(g.model_path, EngineOptions{.threads = 1, .n_ctx = 256});
  Request r = greedy_request(g.tokens, 16);
  std::vector<int32_t> seen;
  r.on_token = [&](int32_t t) { seen.push_back(t); return seen.size() < 3; };
  Result res = engine->generate(r);
  EXPECT_EQ(res.finish, FinishReason::Cancelled);
  EXPECT_EQ(seen, std::vector<int32_t>(g.greedy.begin(), g.greedy.begin() + 3));
  EXPECT_EQ(res.tokens.size(), 2u);

  // A constraint that forbids the greedy token changes the choice; a stop token ends the request.
  Request c = greedy_request(g.tokens, 4);
  c.constrain = [&](std::span<float> logits) { logits[size_t(g.greedy[0])] = -INFINITY; };
  EXPECT_NE(engine->generate(c).tokens.at(0), g.greedy[0]);
  Request s = greedy_request(g.tokens, 16);
  s.stop_tokens = {g.greedy[1]};
  Result stopped = engine->generate(s);
  EXPECT_EQ(stopped.finish, FinishReason::Stop);
  EXPECT_EQ(stopped.stop_token, g.greedy[1]);
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>{g.greedy[0]});

  // A forced end-of-generation token ends the request, unless it asks to run past them (benchmarks);
  // its own stop tokens still end it then.
  const int32_t eog = 4098;  // <|im_end|>
  Request forced = greedy_request(g.tokens, 5);
  forced.constrain = [&](std::span<float> logits) {
    for (size_t i = 0; i < logits.size(); ++i)
      if (int32_t(i) != eog) logits[i] = -INFINITY;
  };
  Result ended = engine->generate(forced);
  EXPECT_EQ(ended.finish, FinishReason::Stop);
  EXPECT_TRUE(ended.tokens.empty());
  forced.ignore_eog = true;
  Result past = engine->generate(forced);
  EXPECT_EQ(past.finish, FinishReason::Length);
  EXPECT_EQ(past.tokens, std::vector<int32_t>(5, eog));
  forced.stop_tokens = {eog};
  EXPECT_EQ(engine->generate(forced).finish, FinishReason::Stop);

  std::stop_source src;
  src.request_stop();
  Request pre = greedy_request(g.tokens, 4);
  pre.stop = src.get_token();
  EXPECT_EQ(engine->generate(pre).finish, FinishReason::Cancelled);
}

TEST(Engine, BadRequestsFailBeforeWork) {
  auto g = test::load_golden("tiny-qwen3moe-s11");
  auto engine = Engine::open(g.model_path, EngineOptions{.threads = 1, .n_ctx = 80});
  EXPECT_THROW(engine->generate(greedy_request({}, 4)), std::invalid_argument);
  EXPECT_THROW(engine->generate(greedy_request({1, 2, int32_t(g.n_vocab)}, 4)), std::invalid_argument);
  EXPECT_THROW(engine->generate(greedy_request(g.tokens, 10)), std::length_error);  // 71 + 10 > 80
  EXPECT_THROW(Engine::open(g.model_path + ".missing", {}), std::runtime_error);
  // The engine is still usable afterwards.
  EXPECT_EQ(engine->generate(greedy_request(g.tokens, 2)).tokens.size(), 2u);
}

}  // namespace
}  // namespace flashfix
