// flashfix bench through the real binary: the JSON it prints adds up (bytes per token from the
// model's active weights, GB/s = bytes x tok/s), and bad flag combinations are usage errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "golden.h"
#include "subprocess.h"

using namespace flashfix;
using namespace flashfix::test;

namespace {

TEST(BenchCommand, JsonReportIsConsistent) {
  const std::string path = golden_dir() + "/tiny-qwen3moe-s11-Q4_K_M.gguf";
  ProcessResult r = run_flashfix_line("bench --model " + path + " --prompt-tokens 16 --gen-tokens 8 --threads 2 --json");
  ASSERT_EQ(r.status, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt_tokens"].get<int64_t>(), 16);
  EXPECT_EQ(j["gen_tokens"].get<int64_t>(), 8);
  EXPECT_EQ(j["threads"].get<int>(), 2);
  EXPECT_GT(j["prefill_tok_s"].get<double>(), 0);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
  auto model = Model::load(path);
  EXPECT_EQ(j["decode_weight_bytes_per_token"].get<double>(), double(model->parameter_counts().active_bytes));
  // KV read per step: 3 layers x positions 16..23 (mean 20.5 keys) x 2 kv heads x (64 + 64) dims x 4 bytes.
  const auto& c = model->config();
  double kv = 0;
  for (int p = 16; p < 24; ++p)
    for (int il = 0; il < c.n_layer; ++il) kv += double(p + 1) * c.layers[size_t(il)].n_head_kv * (c.head_dim + c.v_head_dim) * 4.0;
  EXPECT_DOUBLE_EQ(j["decode_kv_bytes_per_token"].get<double>(), kv / 8);
  const double bytes = j["decode_weight_bytes_per_token"].get<double>() + j["decode_kv_bytes_per_token"].get<double>();
  EXPECT_NEAR(j["decode_gb_s"].get<double>(), bytes * j["decode_tok_s"].get<double>() / 1e9, 1e-9);
  EXPECT_GE(j["peak_rss_bytes"].get<double>(), j["weight_bytes"].get<double>());
}

TEST(BenchCommand, SpecOracleReportsEveryCellConsistently) {
  const std::string path = golden_dir() + "/tiny-step35-s11.gguf";
  ProcessResult r = run_flashfix_line("bench --model " + path +
                                      " --spec-oracle --prompt-tokens 16 --gen-tokens 24 --draft-max 2 --repeats 1 --threads 2 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["cells"].size(), 8u);  // 4 acceptance rates x k = 1, 2
  EXPECT_GT(j["plain_tok_s"].get<double>(), 0);
  EXPECT_GT(j["plain_step_bytes"].get<double>(), 0);
  for (const auto& c : j["cells"]) {
    const int k = c["k"].get<int>();
    const double tpp = c["tokens_per_pass"].get<double>();
    EXPECT_GE(tpp, 1.0);
    EXPECT_LE(tpp, k + 1.0);
    if (c["acceptance"].get<double>() == 1.0) {
      EXPECT_GT(tpp, 1.0 + k * 0.8);  // every draft accepted (bar the last passes)
    }
    // A pass of k+1 tokens reads at least one step's weights and at most k+1 steps' worth.
    EXPECT_GE(c["pass_bytes_over_step"].get<double>(), 0.99);
    EXPECT_LE(c["pass_bytes_over_step"].get<double>(), k + 1.01);
    EXPECT_NEAR(c["predicted_speedup"].get<double>(), tpp / c["pass_bytes_over_step"].get<double>(), 1e-9);
    EXPECT_NEAR(c["ratio"].get<double>(), c["speedup"].get<double>() / c["predicted_speedup"].get<double>(), 1e-9);
  }
}

TEST(BenchCommand, UsageErrors) {
  EXPECT_EQ(run_flashfix_line("bench").status, 2);  // neither --model nor --membw
  EXPECT_EQ(run_flashfix_line("bench --membw --model x.gguf").status, 2);
  EXPECT_EQ(run_flashfix_line("bench --model x.gguf --gen-tokens 0").status, 2);
  EXPECT_EQ(run_flashfix_line("bench --kernels --membw").status, 2);
  EXPECT_EQ(run_flashfix_line("bench --kernels --threads 2").status, 2);
  EXPECT_NE(run_flashfix_line("bench --model /nonexistent.gguf").status, 0);
  EXPECT_EQ(run_flashfix_line("bench --model x.gguf --draft-max 2").status, 2);  // plain bench runs no drafts
  EXPECT_EQ(run_flashfix_line("bench --model x.gguf --spec-oracle --agent-replay").status, 2);
  EXPECT_EQ(run_flashfix_line("bench --model x.gguf --spec-oracle --draft context").status, 2);
  EXPECT_EQ(run_flashfix_line("bench --membw --no-repack").status, 2);  // weights' layout, and no model here
  EXPECT_EQ(run_flashfix_line("bench --model x.gguf --backend cuda --no-repack").status, 2);
  EXPECT_EQ(run_flashfix_line("generate --model x.gguf --prompt-file " FLASHFIX_SHARED_DIR "/golden/prompt1.txt --max-tokens 1 "
                              "--backend cuda --no-repack").status, 2);  // every engine front end
}

}  // namespace
