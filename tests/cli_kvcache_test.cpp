// The prefix cache through the real binary, one process after another: `flashfix logits --cache-dir`
// in a second process computes only what the first did not leave and still writes every position's
// logits; the agent replay reports its turns; the new flags reject bad combinations.
#include <gtest/gtest.h>

#include <fstream>

#include "golden.h"
#include "subprocess.h"
#include "scratch.h"

using namespace flashfix::test;

namespace {

std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  std::vector<float> v(size_t(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  return v;
}

TEST(LogitsCommand, ASecondProcessReusesTheCacheDirAndWritesEveryPosition) {
  Golden g = load_golden("tiny-step35-s11");
  const std::string dir = temp("logits-cache"), prompt = golden_dir() + "/prompt1.txt";
  const std::string base = "logits --model " + g.model_path + " --prompt-file " + prompt + " --threads 2 --cache-dir " + dir;
  ProcessResult first = run_flashfix_line(base + " --out " + temp("first.f32"));
  ASSERT_EQ(first.status, 0);
  EXPECT_EQ(nlohmann::json::parse(first.out)["cached_tokens"].get<int64_t>(), 0);
  ProcessResult second = run_flashfix_line(base + " --out " + temp("second.f32"));
  ASSERT_EQ(second.status, 0);
  auto j = nlohmann::json::parse(second.out);
  EXPECT_EQ(j["cached_tokens"].get<int64_t>(), int64_t(g.tokens.size() - 1) / 16 * 16);
  EXPECT_EQ(j["cached_tokens"].get<int64_t>() + j["computed_tokens"].get<int64_t>(), int64_t(g.tokens.size()));
  auto ours = read_floats(temp("second.f32"));
  ASSERT_EQ(ours.size(), g.logits.size());
  for (size_t t = 0; t < g.tokens.size(); ++t)
    EXPECT_LE(rel_l2(&ours[t * size_t(g.n_vocab)], &g.logits[t * size_t(g.n_vocab)], g.n_vocab), 1e-3) << t;
}

TEST(BenchCommand, AgentReplayReportsCachedTurns) {
  const std::string m = golden_dir() + "/tiny-qwen3moe-s11.gguf";
  ProcessResult r = run_flashfix_line("bench --model " + m + " --agent-replay --prefix-tokens 200 --turns 3 --turn-tokens 40 --gen-tokens 5 --threads 2 --json");
  ASSERT_EQ(r.status, 0);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["turns"].size(), 3u);
  EXPECT_EQ(j["turns"][0]["cached_tokens"].get<int64_t>(), 0);
  for (int t = 1; t < 3; ++t) {
    const auto& turn = j["turns"][size_t(t)];
    EXPECT_GT(turn["cached_tokens"].get<int64_t>(), 200);
    EXPECT_LT(turn["computed_tokens"].get<int64_t>(), 100);  // the tool result and its framing, not the context
    EXPECT_GT(turn["ttft_ms"].get<double>(), 0);
  }
  ProcessResult off = run_flashfix_line("bench --model " + m + " --agent-replay --prefix-tokens 200 --turns 2 --turn-tokens 40 --gen-tokens 5 --no-prefix-cache --json");
  ASSERT_EQ(off.status, 0);
  auto k = nlohmann::json::parse(off.out);
  EXPECT_EQ(k["turns"][1]["cached_tokens"].get<int64_t>(), 0);
  EXPECT_EQ(k["turns"][1]["computed_tokens"], k["turns"][1]["prompt_tokens"]);
}

TEST(EngineCommands, PrefixCacheFlagsRejectBadCombinations) {
  const std::string m = golden_dir() + "/tiny-qwen3moe-s11.gguf", p = golden_dir() + "/prompt1.txt";
  const std::string gen = "generate --model " + m + " --prompt-file " + p + " --max-tokens 4";
  EXPECT_EQ(run_flashfix_line(gen + " --no-prefix-cache --cache-dir " + temp("x")).status, 2);
  EXPECT_EQ(run_flashfix_line(gen + " --kv-budget-mb 0x").status, 2);
  EXPECT_EQ(run_flashfix_line("bench --model " + m + " --cache-dir " + temp("y")).status, 2);  // only with --agent-replay
  EXPECT_EQ(run_flashfix_line(gen + " --cache-dir /proc/no-such-dir").status, 1);              // cannot be created
  EXPECT_EQ(run_flashfix_line(gen + " --no-prefix-cache --json").status, 0);
}

}  // namespace
