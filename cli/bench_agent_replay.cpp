#include "cli/bench_agent_replay.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/draft_report.h"
#include "cli/engine_flags.h"

namespace flashfix::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Deterministic filler that reads like an agent's context (paths, signatures, log lines), so the
// tokenizer sees ordinary text; exactly n tokens of it, without specials.
std::vector<int32_t> filler_tokens(const Tokenizer& tok, int64_t n, uint64_t seed) {
  static const char* const kWords[] = {"src/", "engine/", "def ", "return ", "error: ", "fn ", "struct ", "test_",
                                       "assert ", "import ", "line ", "warning: ", "class ", "self.", "const ", "//"};
  std::mt19937_64 rng(seed);
  std::vector<int32_t> out;
  while (int64_t(out.size()) < n) {
    std::string line;
    for (int w = 0; w < 8; ++w) line += std::string(kWords[rng() % 16]) + std::to_string(rng() % 1000) + (w % 3 == 2 ? "(" : " ");
    line += "\n";
    auto t = tok.encode(line, /*parse_special=*/false, /*add_special=*/false);
    out.insert(out.end(), t.begin(), t.end());
  }
  out.resize(size_t(n));
  return out;
}

void append(std::vector<int32_t>& to, const std::vector<int32_t>& more) { to.insert(to.end(), more.begin(), more.end()); }

}  // namespace

const char* const kAgentReplayUsage =
    "       flashfix bench --model M.gguf --agent-replay [--prefix-tokens N (4000)] [--turns N (10)]\n"
    "         [--turn-tokens N (300)] [--gen-tokens N (100)] [engine flags] [--json]\n"
    "--agent-replay: a conversation of a prefix (system, tools, repository map) and turns that each add\n"
    "a tool result and generate a greedy reply, the whole context sent every turn as an agent does.\n"
    "Reports per turn prompt/cached/computed tokens, time to first token, prefill and decode time.\n"
    "Compare with --no-prefix-cache; run twice with --cache-dir DIR for a second process's first turn.\n";

std::vector<FlagSpec> agent_replay_flag_specs() {
  auto specs = engine_flag_specs();
  specs.insert(specs.end(), {{"--agent-replay", false}, {"--prefix-tokens", true}, {"--turns", true}, {"--turn-tokens", true}});
  return specs;
}

int run_agent_replay(const Args& args, bool json) {
  const int64_t prefix_n = args.get_int("--prefix-tokens", 4000, 1, 1 << 22);
  const int64_t turns = args.get_int("--turns", 10, 1, 10000);
  const int64_t turn_n = args.get_int("--turn-tokens", 300, 1, 1 << 22);
  const int64_t gen_n = args.get_int("--gen-tokens", 100, 0, 1 << 22);
  // The context grows to the prefix plus every turn; the role markers' length depends on the vocabulary
  // (a byte-level one spells them out), so the default --ctx-size leaves generous room for them.
  auto engine = open_engine(args, prefix_n + turns * (turn_n + gen_n + 128) + 256);
  const Tokenizer& tok = engine->tokenizer();
  auto special = [&](const char* text) { return tok.encode(text, /*parse_special=*/true, /*add_special=*/false); };

  std::vector<int32_t> context = tok.encode("", true, true);  // BOS when the model wants one
  append(context, special("<|im_start|>system\n"));
  append(context, filler_tokens(tok, prefix_n, 1));
  append(context, special("<|im_end|>\n"));

  nlohmann::json report_turns = nlohmann::json::array();
  int64_t total_computed = 0;
  const auto t0 = Clock::now();
  for (int64_t turn = 1; turn <= turns; ++turn) {
    append(context, special("<|im_start|>user\n<tool_response>\n"));
    append(context, filler_tokens(tok, turn_n, uint64_t(turn) + 1000));
    append(context, special("\n</tool_response><|im_end|>\n<|im_start|>assistant\n"));
    Request r;
    r.prompt = context;
    r.max_tokens = gen_n;
    r.sampling.temperature = 0;
    const auto ts = Clock::now();
    Result res = engine->generate(r);
    const double turn_ms = std::chrono::duration<double, std::milli>(Clock::now() - ts).count();
    total_computed += res.computed_tokens;
    append(context, res.tokens);  // the reply, then the turn's end
    append(context, special("<|im_end|>\n"));
    report_turns.push_back({{"turn", turn}, {"prompt_tokens", res.prompt_tokens}, {"cached_tokens", res.cached_tokens},
                            {"computed_tokens", res.computed_tokens}, {"ttft_ms", res.ttft_ms}, {"prefill_ms", res.prefill_ms},
                            {"decode_ms", res.decode_ms}, {"generated_tokens", res.tokens.size()}, {"turn_ms", turn_ms},
                            {"speculation", draft_report(res)}});
    if (!json)
      std::printf("turn %2lld: prompt %6lld  cached %6lld  computed %5lld  ttft %9.1f ms  generated %3zu in %8.1f ms\n",
                  (long long)turn, (long long)res.prompt_tokens, (long long)res.cached_tokens, (long long)res.computed_tokens,
                  res.ttft_ms, res.tokens.size(), res.decode_ms);
  }
  const double total_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  const EngineOptions& o = engine->options();
  if (json) {
    nlohmann::json j{{"model", args.require("--model")}, {"threads", o.threads}, {"prefix_cache", o.prefix_cache},
                     {"cache_dir", o.cache_dir},         {"prefix_tokens", prefix_n}, {"turn_tokens", turn_n},
                     {"gen_tokens", gen_n},              {"turns", report_turns},   {"total_prefill_tokens", total_computed},
                     {"total_ms", total_ms}};
    std::puts(j.dump().c_str());
  } else {
    std::printf("total: %lld prompt tokens computed, %.1f s end to end (prefix cache %s%s%s)\n", (long long)total_computed,
                total_ms / 1000, o.prefix_cache ? "on" : "off", o.cache_dir.empty() ? "" : ", cache dir ", o.cache_dir.c_str());
  }
  return 0;
}

}  // namespace flashfix::cli
