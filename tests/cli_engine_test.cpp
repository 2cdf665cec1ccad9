// The model-running commands end to end through the real binary: logits and generate against the
// golden references, and usage errors.
#include <gtest/gtest.h>

#include <fstream>

#include "golden.h"
#include "subprocess.h"

using namespace flashfix::test;

namespace {

std::string tmp_path(const std::string& name) { return ::testing::TempDir() + "/" + name; }

TEST(LogitsCommand, WritesEveryPositionAndPrintsTokens) {
  Golden g = load_golden("tiny-step35-s11");
  std::string out = tmp_path("step35.f32");
  ProcessResult r = run_flashfix_line("logits --model " + g.model_path + " --prompt-file " + golden_dir() + "/prompt1.txt --out " + out + " --threads 2");
  ASSERT_EQ(r.status, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), g.tokens);
  EXPECT_EQ(j["n_vocab"].get<int64_t>(), g.n_vocab);
  std::ifstream f(out, std::ios::binary | std::ios::ate);
  ASSERT_EQ(size_t(f.tellg()), g.logits.size() * sizeof(float));
  f.seekg(0);
  std::vector<float> ours(g.logits.size());
  f.read(reinterpret_cast<char*>(ours.data()), std::streamsize(ours.size() * sizeof(float)));
  for (size_t t = 0; t < g.tokens.size(); ++t)
    EXPECT_LE(rel_l2(&ours[t * size_t(g.n_vocab)], &g.logits[t * size_t(g.n_vocab)], g.n_vocab), 1e-3) << t;
}

TEST(GenerateCommand, GreedyJsonMatchesReference) {
  for (const char* name : {"tiny-qwen3moe-s11", "tiny-step35-s11"}) {
    Golden g = load_golden(name);
    ProcessResult r = run_flashfix_line("generate --model " + g.model_path + " --prompt-file " + golden_dir() +
                                        "/prompt1.txt --max-tokens 16 --temperature 0 --json");
    ASSERT_EQ(r.status, 0) << name;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), g.greedy) << name;
    EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
    EXPECT_GT(j["prefill_tok_s"].get<double>(), 0);
    EXPECT_TRUE(j["text"].is_string());
  }
}

TEST(GenerateCommand, SeededSamplingIsReproducible) {
  std::string args = "generate --model " + golden_dir() + "/tiny-qwen3moe-s11.gguf --prompt-file " + golden_dir() +
                     "/prompt1.txt --max-tokens 12 --temperature 1.0 --seed 7 --json";
  ProcessResult a = run_flashfix_line(args), b = run_flashfix_line(args);
  ASSERT_EQ(a.status, 0);
  EXPECT_EQ(nlohmann::json::parse(a.out)["tokens"], nlohmann::json::parse(b.out)["tokens"]);
}

TEST(GenerateCommand, DraftFlagsKeepTheOutputAndReportSpeculation) {
  Golden g = load_golden("tiny-qwen3moe-s11");
  const std::string base = "generate --model " + g.model_path + " --prompt-file " + golden_dir() +
                           "/prompt1.txt --max-tokens 120 --temperature 0 --threads 2 --json";
  ProcessResult plain = run_flashfix_line(base + " --draft none");
  ProcessResult spec = run_flashfix_line(base + " --draft context --draft-max 3");
  ASSERT_EQ(plain.status, 0);
  ASSERT_EQ(spec.status, 0) << spec.err;
  auto p = nlohmann::json::parse(plain.out), s = nlohmann::json::parse(spec.out);
  EXPECT_EQ(s["tokens"], p["tokens"]);
  EXPECT_TRUE(p["drafts"].empty());
  EXPECT_EQ(p["sampling_passes"].get<int64_t>(), 120);
  ASSERT_EQ(s["drafts"].size(), 1u);
  const auto& d = s["drafts"][0];
  EXPECT_EQ(d["source"], "context");
  EXPECT_LE(d["accepted"].get<int64_t>(), d["drafted"].get<int64_t>());
  // Each pass yields one token plus the drafts it accepted.
  EXPECT_EQ(s["sampling_passes"].get<int64_t>() + d["accepted"].get<int64_t>(), 120);
  EXPECT_DOUBLE_EQ(s["tokens_per_pass"].get<double>(), 120.0 / s["sampling_passes"].get<double>());

  const std::string m = g.model_path, prompt = golden_dir() + "/prompt1.txt";
  ProcessResult mtp = run_flashfix_line("generate --model " + m + " --prompt-file " + prompt + " --max-tokens 4 --draft mtp");
  EXPECT_EQ(mtp.status, 2);
  EXPECT_NE(mtp.err.find("no MTP"), std::string::npos) << mtp.err;
  EXPECT_EQ(run_flashfix_line("generate --model " + m + " --prompt-file " + prompt + " --max-tokens 4 --draft lookahead").status, 2);
  EXPECT_EQ(run_flashfix_line("generate --model " + m + " --prompt-file " + prompt + " --max-tokens 4 --draft-max 17").status, 2);
}

TEST(EngineCommands, BadInputIsAClearError) {
  const std::string m = golden_dir() + "/tiny-qwen3moe-s11.gguf", p = golden_dir() + "/prompt1.txt";
  EXPECT_EQ(run_flashfix_line("logits --model " + m + " --prompt-file " + p).status, 2);                       // no --out
  EXPECT_EQ(run_flashfix_line("generate --model " + m + " --prompt-file " + p + " --max-tokens x").status, 2);  // not a number
  EXPECT_EQ(run_flashfix_line("generate --model " + m + " --prompt-file " + p + " --max-tokens 4 --top-p 2").status, 2);
  EXPECT_EQ(run_flashfix_line("generate --model " + m + " --prompt-file /nonexistent --max-tokens 4").status, 1);
  EXPECT_EQ(run_flashfix_line("info --model " + p).status, 1);  // not a GGUF file
  EXPECT_EQ(run_flashfix_line("info --model " + m + " --bogus").status, 2);
  EXPECT_EQ(run_flashfix_line("no-such-command").status, 2);
}

}  // namespace
