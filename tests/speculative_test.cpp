// Speculative decoding is lossless: with drafts from the context or replayed (correct, corrupted or
// wrong), greedy and seeded sampling give exactly plain decoding's tokens; the sampled distribution
// follows the model's; rejected drafts leave no trace in the KV cache or the prefix cache.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <thread>

#include "engine/engine.h"
#include "tests/golden.h"
#include "tests/greedy_request.h"

namespace flashfix {
namespace {

using test::greedy_request;

EngineOptions options(DraftMode mode, int draft_max = 4, bool always = true) {
  EngineOptions o;
  o.threads = 2, o.n_ctx = 512, o.draft = mode, o.draft_max = draft_max, o.draft_always = always;
  return o;
}

// The prompt twice: what follows the first copy is a good guess for what follows the second.
std::vector<int32_t> repetitive(const std::vector<int32_t>& prompt) {
  std::vector<int32_t> p = prompt;
  p.insert(p.end(), prompt.begin() + 1, prompt.end());  // without the second BOS
  return p;
}

Request replaying(Request r, std::vector<int32_t> continuation, double accuracy, int32_t n_vocab) {
  const int64_t n = int64_t(r.prompt.size());
  r.draft_source = [=] { return make_replay_draft(continuation, n, accuracy, n_vocab, 7); };
  return r;
}

const DraftStats& only_source(const Result& r) {
  EXPECT_EQ(r.drafts.size(), 1u);
  return r.drafts.at(0);
}

TEST(Speculative, GreedyWithContextDraftsIsPlainGreedy) {
  for (const char* name : {"tiny-qwen3moe-s11", "tiny-step35-s11", "tiny-step35-s11-Q6_K"}) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    auto plain = Engine::open(g.model_path, options(DraftMode::None));
    auto spec = Engine::open(g.model_path, options(DraftMode::Context));
    Result r = spec->generate(greedy_request(g.tokens, int64_t(g.greedy.size())));
    if (!g.quantized()) {
      EXPECT_EQ(r.tokens, g.greedy);
    }
    EXPECT_EQ(r.tokens, plain->generate(greedy_request(g.tokens, int64_t(g.greedy.size()))).tokens);

    // Long (step35's window of 16 slides far) and repetitive: the prompt, the model's own continuation
    // of it and the prompt again, so the continuation is likely to be repeated and drafts accepted.
    std::vector<int32_t> prompt = g.tokens;
    const auto first = plain->generate(greedy_request(g.tokens, 100)).tokens;
    prompt.insert(prompt.end(), first.begin(), first.end());
    prompt.insert(prompt.end(), g.tokens.begin() + 1, g.tokens.end());
    Result want = plain->generate(greedy_request(prompt, 200));
    Result got = spec->generate(greedy_request(prompt, 200));
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_TRUE(want.drafts.empty());
    const DraftStats& d = only_source(got);
    EXPECT_EQ(d.source, "context");
    EXPECT_GT(d.drafted, 0);
    // The random-weight qwen3moe repeats itself; the step35 ones barely do (replayed drafts cover
    // accepted runs across step35's window below).
    if (std::string(name) == "tiny-qwen3moe-s11") {
      EXPECT_GT(d.accepted, 20) << d.drafted << " drafted";
      EXPECT_LT(got.sampling_passes, want.sampling_passes);
    }
  }
}

TEST(Speculative, ReplayedDraftsAtAnyAccuracyGivePlainGreedy) {
  auto g = test::load_golden("tiny-step35-s11");
  auto plain = Engine::open(g.model_path, options(DraftMode::None));
  const int V = int(g.n_vocab);
  Result want = plain->generate(greedy_request(g.tokens, 120));
  for (int k : {1, 3, 4}) {
    auto spec = Engine::open(g.model_path, options(DraftMode::None, k));
    for (double accuracy : {1.0, 0.75, 0.25, 0.0}) {
      SCOPED_TRACE(testing::Message() << "k " << k << " accuracy " << accuracy);
      Result got = spec->generate(replaying(greedy_request(g.tokens, 120), want.tokens, accuracy, V));
      EXPECT_EQ(got.tokens, want.tokens);
      const DraftStats& d = only_source(got);
      EXPECT_EQ(d.source, "oracle");
      if (accuracy == 1.0) {
        EXPECT_EQ(d.accepted, d.drafted);
      }
      if (accuracy == 0.0) {
        EXPECT_EQ(d.accepted, 0);
      }
      // Every pass yields its accepted drafts plus one token (an end token is not in tokens).
      EXPECT_EQ(int64_t(got.tokens.size()) + (got.finish == FinishReason::Stop), got.sampling_passes + d.accepted);
    }
  }
  // Short requests: drafts never run past max_tokens (admission reserved no room for them).
  auto spec = Engine::open(g.model_path, options(DraftMode::None, 4));
  for (int64_t n : {1, 2, 3, 5}) {
    Result got = spec->generate(replaying(greedy_request(g.tokens, n), want.tokens, 1.0, V));
    EXPECT_EQ(got.tokens, std::vector<int32_t>(want.tokens.begin(), want.tokens.begin() + n));
  }
}

TEST(Speculative, StopTokensAndCallbacksSeeTheAcceptedRunInOrder) {
  auto g = test::load_golden("tiny-qwen3moe-s11");
  auto plain = Engine::open(g.model_path, options(DraftMode::None));
  auto spec = Engine::open(g.model_path, options(DraftMode::None, 4));
  Result want = plain->generate(greedy_request(g.tokens, 24));
  // A stop token inside an accepted run of drafts ends the request there.
  Request r = replaying(greedy_request(g.tokens, 24), want.tokens, 1.0, int32_t(g.n_vocab));
  r.stop_tokens = {want.tokens[6]};
  std::vector<int32_t> seen;
  r.on_token = [&](int32_t t) { seen.push_back(t); return true; };
  Result got = spec->generate(r);
  const auto first_stop = std::ranges::find(want.tokens, want.tokens[6]) - want.tokens.begin();
  EXPECT_EQ(got.finish, FinishReason::Stop);
  EXPECT_EQ(got.tokens, std::vector<int32_t>(want.tokens.begin(), want.tokens.begin() + first_stop));
  EXPECT_EQ(seen, std::vector<int32_t>(want.tokens.begin(), want.tokens.begin() + first_stop + 1));

  // A constraint is asked once per token, in order, after on_token of the token before, as without drafts.
  auto trace = [&](Engine& e, bool drafts) {
    Request c = greedy_request(g.tokens, 20);
    if (drafts) c = replaying(c, want.tokens, 0.5, int32_t(g.n_vocab));
    auto log = std::make_shared<std::vector<int32_t>>();
    c.constrain = [log](std::span<float> logits) {
      // Forbids repeating the token accepted last: the mask depends on what on_token saw.
      if (!log->empty()) logits[size_t(log->back())] = -INFINITY;
      log->push_back(-1);
    };
    c.on_token = [log](int32_t t) { log->back() = t; return true; };
    Result res = e.generate(c);
    return std::make_pair(res.tokens, *log);
  };
  EXPECT_EQ(trace(*spec, true), trace(*plain, false));

  // Cancelling from on_token mid-run stops at that token.
  Request cancel = replaying(greedy_request(g.tokens, 24), want.tokens, 1.0, int32_t(g.n_vocab));
  int calls = 0;
  cancel.on_token = [&](int32_t) { return ++calls < 5; };
  Result cancelled = spec->generate(cancel);
  EXPECT_EQ(cancelled.finish, FinishReason::Cancelled);
  EXPECT_EQ(cancelled.tokens, std::vector<int32_t>(want.tokens.begin(), want.tokens.begin() + 4));
}

TEST(Speculative, SeededSamplingGivesPlainDecodingsTokens) {
  auto g = test::load_golden("tiny-step35-s11");
  auto plain = Engine::open(g.model_path, options(DraftMode::None));
  auto spec = Engine::open(g.model_path, options(DraftMode::Context, 3));
  const auto prompt = repetitive(g.tokens);
  int64_t replay_accepted = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    Request r = greedy_request(prompt, 40);
    r.sampling = {.temperature = 0.7f, .top_k = 20, .top_p = 0.9f, .min_p = 0.02f, .repeat_penalty = 1.1f, .seed = seed};
    Result want = plain->generate(r);
    Result got = spec->generate(r);
    EXPECT_EQ(got.tokens, want.tokens) << "seed " << seed;
    // This seed's own output replayed (a quarter corrupted) is mostly accepted; against another
    // seed's samples it is mostly rejected. Both are lossless.
    Request same = replaying(r, want.tokens, 0.75, int32_t(g.n_vocab));
    Result replayed = spec->generate(same);
    EXPECT_EQ(replayed.tokens, want.tokens);
    replay_accepted += only_source(replayed).accepted;
    Request other = replaying(r, want.tokens, 1.0, int32_t(g.n_vocab));
    other.sampling.seed = seed + 100;
    Request other_plain = other;
    other_plain.draft_source = nullptr;
    EXPECT_EQ(spec->generate(other).tokens, plain->generate(other_plain).tokens);
  }
  EXPECT_GT(replay_accepted, 12 * 40 / 2);
}

// The speculative-sampling rule for a deterministic draft: accept it with probability p(draft),
// otherwise a token from p without it. Over many seeds, the second token (the first one a draft is
// verified for) must follow the model's softmax given the first (chi-square at the 1e-3 level; the
// seeds are fixed, so the outcome is too), and the draft must be accepted at rate p(draft).
TEST(Speculative, SampledTokensFollowTheModelsDistribution) {
  auto g = test::load_golden("tiny-qwen3moe-s11");
  auto spec = Engine::open(g.model_path, options(DraftMode::None, 1));
  const float temperature = 0.6f;
  const int64_t V = g.n_vocab;
  auto softmax_of_last = [&](const std::vector<int32_t>& prompt) {
    const LogitsResult lr = spec->prompt_logits(prompt);
    const float* last = &lr.logits[(prompt.size() - 1) * size_t(V)];
    std::vector<double> p(static_cast<size_t>(V));
    const float mx = *std::max_element(last, last + V);
    double z = 0;
    for (int64_t i = 0; i < V; ++i) z += (p[size_t(i)] = std::exp(double(last[i] - mx) / temperature));
    for (double& v : p) v /= z;
    return p;
  };
  const std::vector<double> p0 = softmax_of_last(g.tokens);
  const int32_t first = int32_t(std::max_element(p0.begin(), p0.end()) - p0.begin());
  std::vector<int32_t> after_first = g.tokens;
  after_first.push_back(first);
  const std::vector<double> p = softmax_of_last(after_first);
  const int32_t draft = int32_t(std::max_element(p.begin(), p.end()) - p.begin());
  ASSERT_GT(p0[size_t(first)], 0.2);
  ASSERT_GT(p[size_t(draft)], 0.1);
  ASSERT_LT(p[size_t(draft)], 0.9);  // both branches of the rule are exercised

  std::map<int32_t, int> count;
  int n = 0, accepted = 0;
  for (int seed = 0; seed < 2000; ++seed) {
    Request r = greedy_request(g.tokens, 3);  // the draft is verified with the third token's row
    r.sampling = {.temperature = temperature, .top_k = 0, .top_p = 1.f, .min_p = 0.f, .seed = uint64_t(seed)};
    r.draft_source = [&] { return make_replay_draft({first, draft}, int64_t(g.tokens.size()), 1.0, int32_t(V), 0); };
    Result res = spec->generate(r);
    if (res.tokens.size() < 2 || res.tokens[0] != first) continue;  // the draft is for this first token
    ++n, ++count[res.tokens[1]];
    accepted += int(only_source(res).accepted);
  }
  ASSERT_GT(n, 300);
  double chi = 0, rest_p = 0;
  int rest_n = 0, cells = 0;
  for (int32_t t = 0; t < int32_t(V); ++t) {
    const double e = n * p[size_t(t)];
    const int o = count.count(t) ? count[t] : 0;
    if (e >= 5) chi += (o - e) * (o - e) / e, ++cells;
    else rest_p += p[size_t(t)], rest_n += o;
  }
  if (n * rest_p >= 5) chi += (rest_n - n * rest_p) * (rest_n - n * rest_p) / (n * rest_p), ++cells;
  ASSERT_GE(cells, 3);
  // Wilson-Hilferty: the 0.999 quantile of chi-square with cells - 1 degrees of freedom.
  const double df = cells - 1, zq = 3.09;
  const double crit = df * std::pow(1 - 2 / (9 * df) + zq * std::sqrt(2 / (9 * df)), 3);
  EXPECT_LT(chi, crit) << cells << " cells, " << n << " samples";
  const double pd = p[size_t(draft)];
  EXPECT_NEAR(double(accepted) / n, pd, 4 * std::sqrt(pd * (1 - pd) / n));
}

TEST(Speculative, RejectedDraftsLeaveNoTraceInTheCache) {
  for (const char* name : {"tiny-step35-s11", "tiny-qwen3moe-s11"}) {
    SCOPED_TRACE(name);
    auto g = test::load_golden(name);
    auto plain = Engine::open(g.model_path, options(DraftMode::None));
    Result want = plain->generate(greedy_request(g.tokens, 50));
    auto spec = Engine::open(g.model_path, options(DraftMode::None, 4));
    // Half the drafts wrong: most passes write rejected rows past the accepted end.
    Result got = spec->generate(replaying(greedy_request(g.tokens, 50), want.tokens, 0.5, int32_t(g.n_vocab)));
    ASSERT_EQ(got.tokens, want.tokens);
    ASSERT_GT(only_source(got).drafted, only_source(got).accepted + 10);

    // Everything the request computed is now cached: its logits come from the stored hidden states
    // and KV and must be bit for bit those of a fresh computation.
    std::vector<int32_t> full = g.tokens;
    full.insert(full.end(), want.tokens.begin(), want.tokens.end());
    LogitsResult cached = spec->prompt_logits(full);
    EXPECT_EQ(cached.cached_tokens, int64_t(full.size()) - 1);  // all but the last: it was never fed
    EngineOptions no_cache = options(DraftMode::None);
    no_cache.prefix_cache = false;
    auto fresh_engine = Engine::open(g.model_path, no_cache);
    LogitsResult fresh = fresh_engine->prompt_logits(full);
    EXPECT_EQ(cached.logits, fresh.logits);
    // A continuation computed on top of the speculatively written cache is the plain one.
    full.insert(full.end(), {4098, 198, 4097});
    EXPECT_EQ(spec->generate(greedy_request(full, 20)).tokens, plain->generate(greedy_request(full, 20)).tokens);
  }
}

TEST(Speculative, ConcurrentRequestsGiveSequentialPlainTokens) {
  auto g = test::load_golden("tiny-step35-s11");
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> p = repetitive(g.tokens);
    p.resize(p.size() - size_t(7 * i));  // different lengths, a shared prefix
    prompts.push_back(p);
  }
  auto plain = Engine::open(g.model_path, options(DraftMode::None));
  std::vector<std::vector<int32_t>> want;
  for (const auto& p : prompts) want.push_back(plain->generate(greedy_request(p, 80)).tokens);
  for (bool always : {true, false}) {
    auto spec = Engine::open(g.model_path, options(DraftMode::Auto, 4, always));
    std::vector<Result> got(prompts.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < prompts.size(); ++i)
      threads.emplace_back([&, i] { got[i] = spec->generate(greedy_request(prompts[i], 80)); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(got[i].tokens, want[i]) << i;
  }
}

TEST(Speculative, ContextDraftsProposeWhatFollowedTheLongestRecentMatch) {
  auto model = Model::load(test::golden_dir() + "/tiny-qwen3moe-s11.gguf");
  auto backend = make_cpu_backend(*model, 1);
  auto store = backend->new_kv_store(1, 0);
  auto src = make_context_draft({*backend, *store, 64});
  EXPECT_EQ(src->name(), "context");
  auto propose = [&](const std::vector<int32_t>& t, int k) {
    std::vector<int32_t> out = {-1};  // appends after what is there (the engine's run starts with its token)
    src->propose({t, int64_t(t.size()) - 1, nullptr, store.get()}, k, out);
    return std::vector<int32_t>(out.begin() + 1, out.end());
  };
  // (1 2 3) last occurred at the start: its 3-gram beats the later 2-gram (2 3) -> 4.
  std::vector<int32_t> t = {1, 2, 3, 9, 8, 7, 2, 3, 4, 1, 2, 3};
  EXPECT_EQ(propose(t, 3), (std::vector<int32_t>{9, 8, 7}));
  EXPECT_EQ(propose(t, 1), (std::vector<int32_t>{9}));
  // The index grows with the sequence: now (3 9) is the latest match of the last 2 tokens.
  t.insert(t.end(), {9, 8, 6, 5, 3, 9});
  EXPECT_EQ(propose(t, 2), (std::vector<int32_t>{8, 6}));
  // A draft stops at the end of what is known; a token never seen before proposes nothing.
  t.push_back(8);
  EXPECT_EQ(propose(t, 8), (std::vector<int32_t>{6, 5, 3, 9, 8}));
  t.push_back(42);
  EXPECT_TRUE(propose(t, 4).empty());
}

// The byte model's input: a one-token step reads exactly the model's active weights (its experts are
// top-k of all), a verify pass of several tokens the union of the experts they selected.
TEST(Speculative, BackendCountsTheWeightBytesOfTheSelectedExperts) {
  for (const char* name : {"tiny-qwen3moe-s11", "tiny-step35-s11"}) {
    SCOPED_TRACE(name);
    auto model = Model::load(test::golden_dir() + "/" + name + ".gguf");
    auto backend = make_cpu_backend(*model, 1);
    auto seq = backend->new_sequence(64);
    std::vector<float> logits(static_cast<size_t>(model->config().n_vocab));
    const uint64_t active = model->parameter_counts().active_bytes;
    const int32_t one[] = {42};
    uint64_t before = backend->weight_bytes_read();
    backend->forward(*seq, one, Logits::Last, logits.data());
    EXPECT_EQ(backend->weight_bytes_read() - before, active);
    const int32_t four[] = {7, 300, 1999, 4000};
    before = backend->weight_bytes_read();
    backend->forward(*seq, four, Logits::Last, logits.data());
    const uint64_t pass = backend->weight_bytes_read() - before;
    EXPECT_GT(pass, active);      // more experts than one token's
    EXPECT_LT(pass, 4 * active);  // but the dense weights once
  }
}

TEST(Speculative, BadDraftSettingsFailClearly) {
  auto g = test::load_golden("tiny-step35-s11");
  EXPECT_NO_THROW(Engine::open(g.model_path, options(DraftMode::Mtp)));  // step35 has MTP heads
  auto q = test::load_golden("tiny-qwen3moe-s11");
  try {
    Engine::open(q.model_path, options(DraftMode::Mtp));
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no MTP"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Engine::open(g.model_path, options(DraftMode::Context, kMaxDraftTokens + 1)), std::invalid_argument);
  EXPECT_THROW(parse_draft_mode("ngram"), std::invalid_argument);
  EXPECT_EQ(parse_draft_mode("auto"), DraftMode::Auto);
}

}  // namespace
}  // namespace flashfix
