#include "cli/engine_flags.h"

namespace flashfix::cli {

const char* const kEngineFlagsUsage =
    "Engine flags: --backend cpu|cuda (cpu) --threads N (0 = every core, cpu backend)\n"
    "  --no-repack (cpu: keep weights in the file's layout only, for a model that must stay paged from disk;\n"
    "  default: Q4_K matrices are packed into the GEMM layout at load, same bytes, faster to stream)\n"
    "  --ctx-size N (longest prompt + generation, 8192)\n"
    "  --max-sequences N (decoded together, 8) --kv-budget-mb MB (KV memory; default 2 x ctx-size positions)\n"
    "  --cache-dir DIR (prefix KV blocks persist there, keyed by the model file's hash)\n"
    "  --cache-dir-max-mb MB (trim DIR to this size, 8192) --no-prefix-cache (compute every prompt in full)\n"
    "  --draft none|mtp|context|auto (speculative decoding's drafts; auto: every source the model supports,\n"
    "  each while it pays) --draft-max K (most drafted tokens verified per step, 4; 0 = none)\n";

std::vector<FlagSpec> engine_flag_specs() {
  return {{"--model", true},         {"--backend", true},   {"--threads", true},   {"--ctx-size", true},          {"--max-sequences", true},
          {"--kv-budget-mb", true},  {"--cache-dir", true}, {"--cache-dir-max-mb", true}, {"--no-prefix-cache", false},
          {"--draft", true},         {"--draft-max", true},  {"--no-repack", false}};
}

void draft_options(const Args& args, EngineOptions& o) {
  try {
    o.draft = parse_draft_mode(args.get("--draft").value_or("auto"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--draft: ") + e.what());
  }
  o.draft_max = int(args.get_int("--draft-max", o.draft_max, 0, kMaxDraftTokens));
}

EngineOptions engine_options(const Args& args, int64_t default_ctx, int64_t min_ctx, int64_t max_ctx) {
  EngineOptions o;
  o.backend = args.get("--backend").value_or("cpu");
  if (o.backend != "cpu" && o.backend != "cuda") throw UsageError("--backend takes cpu or cuda, not '" + o.backend + "'");
  o.threads = int(args.get_int("--threads", 0, 0, 1024));
  o.repack_weights = !args.has("--no-repack");
  if (o.backend == "cuda" && !o.repack_weights) throw UsageError("--no-repack is a cpu backend option");
  o.n_ctx = args.get_int("--ctx-size", default_ctx, min_ctx, max_ctx);
  o.max_sequences = int(args.get_int("--max-sequences", o.max_sequences, 1, 4096));
  o.kv_budget_bytes = uint64_t(args.get_int("--kv-budget-mb", 0, 0, int64_t(1) << 30)) << 20;
  o.prefix_cache = !args.has("--no-prefix-cache");
  o.cache_dir = args.get("--cache-dir").value_or("");
  o.cache_dir_max_bytes = uint64_t(args.get_int("--cache-dir-max-mb", 8192, 1, int64_t(1) << 30)) << 20;
  if (!o.prefix_cache && !o.cache_dir.empty()) throw UsageError("--cache-dir needs the prefix cache (drop --no-prefix-cache)");
  draft_options(args, o);
  return o;
}

std::unique_ptr<Engine> open_engine(const Args& args, int64_t default_ctx) {
  const EngineOptions o = engine_options(args, default_ctx);
  try {
    return Engine::open(args.require("--model"), o);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());  // a budget below one block, a zero size: a wrong command line
  }
}

std::vector<int32_t> tokenize_prompt(const Engine& engine, const std::string& text) {
  auto tokens = engine.tokenizer().encode(text, /*parse_special=*/true, /*add_special=*/true);
  if (tokens.empty()) throw UsageError("the prompt is empty");
  return tokens;
}

}  // namespace flashfix::cli
