#include "cli/agent_options.h"

#include "cli/engine_flags.h"
#include "cli/user_config.h"

namespace flashfix::cli {
namespace fs = std::filesystem;

std::vector<FlagSpec> agent_flag_specs() {
  std::vector<FlagSpec> specs = engine_flag_specs();  // --model among them
  specs.insert(specs.end(),
               {{"--api", true},        {"--api-model", true},   {"--api-key-env", true}, {"--script", true},
                {"--max-turns", true},  {"--max-tokens", true},  {"--turn-tokens", true}, {"--timeout", true},
                {"--temperature", true}, {"--seed", true},       {"--no-constrain", false}, {"--trajectory", true},
                {"--prompts-dir", true}});
  return specs;
}

const char* const kAgentFlagsUsage =
    "model (one of; default: the model `flashfix pull` configured):\n"
    "  --model M.gguf          the embedded engine on a GGUF model\n"
    "  --api URL --api-model NAME [--api-key-env VAR]\n"
    "                          an OpenAI-compatible endpoint (key from $OPENAI_API_KEY or VAR)\n"
    "  --script F.jsonl        replay scripted model turns (or a trajectory's), for tests and demos\n"
    "engine: --threads N, --ctx-size N (default 32768), --max-sequences N, --kv-budget-mb MB,\n"
    "        --cache-dir DIR (prefix cache on disk), --cache-dir-max-mb MB, --no-prefix-cache,\n"
    "        --draft none|mtp|context|auto, --draft-max K (speculative decoding)\n"
    "        (as for `flashfix generate`), --no-constrain (no grammar on tool calls)\n"
    "sampling: --temperature T (default 0: greedy), --seed S, --turn-tokens N (per turn, default 2048)\n"
    "budget: --max-turns N (30), --max-tokens N (generated + prompt tokens, 200000), --timeout SECONDS (1800)\n"
    "log: --trajectory F.jsonl (every turn, call and result; `flashfix replay F` re-runs it),\n"
    "     --prompts-dir DIR (system prompts)\n";

AgentOptions parse_agent_options(const Args& args, bool backend_optional) {
  AgentOptions o;
  int chosen = int(args.has("--model")) + int(args.has("--api")) + int(args.has("--script"));
  if (chosen > 1) throw UsageError("choose one model backend: --model, --api or --script");
  if (args.has("--api-model") && !args.has("--api")) throw UsageError("--api-model needs --api URL");
  if (args.has("--api-key-env") && !args.has("--api")) throw UsageError("--api-key-env needs --api URL");
  BackendChoice& b = o.backend;
  if (args.has("--api")) {
    b.kind = BackendChoice::Kind::OpenAI;
    b.endpoint.base_url = *args.get("--api");
    if (b.endpoint.base_url.rfind("http://", 0) != 0 && b.endpoint.base_url.rfind("https://", 0) != 0)
      throw UsageError("--api expects an http(s) URL, got '" + b.endpoint.base_url + "'");
    b.endpoint.model = args.get("--api-model").value_or("");
    if (b.endpoint.model.empty()) throw UsageError("--api needs --api-model NAME");
    if (auto env = args.get("--api-key-env")) b.endpoint.api_key_env = *env;
  } else if (args.has("--script")) {
    b.kind = BackendChoice::Kind::Scripted;
    b.script = *args.get("--script");
  } else if (args.has("--model")) {
    b.model_path = *args.get("--model");
  } else {
    b.model_path = UserConfig::load().default_model();
    b.from_config = true;
    if (b.model_path.empty() && !backend_optional)
      throw UsageError("no model: pass --model M.gguf, --api URL --api-model NAME or --script F, or run "
                       "`flashfix pull qwen3-coder-30b-a3b` once to configure a default model");
  }

  // The agent commands keep their own --ctx-size default (32768) and range (256 to 4M).
  o.engine = engine_options(args, 32768, 256, 1 << 22);

  o.generation.max_tokens = args.get_int("--turn-tokens", 2048, 1, 1 << 20);
  o.generation.sampling.temperature = float(args.get_double("--temperature", 0));
  if (o.generation.sampling.temperature < 0) throw UsageError("--temperature must not be negative");
  o.generation.sampling.seed = uint64_t(args.get_int("--seed", 0, 0, INT64_MAX));
  o.generation.constrained = !args.has("--no-constrain");

  o.budget.max_turns = int(args.get_int("--max-turns", o.budget.max_turns, 1, 100000));
  o.budget.max_tokens = args.get_int("--max-tokens", o.budget.max_tokens, 1, INT64_MAX);
  o.budget.max_seconds = args.get_double("--timeout", o.budget.max_seconds);
  if (o.budget.max_seconds <= 0) throw UsageError("--timeout must be positive");

  o.trajectory = args.get("--trajectory").value_or("");
  o.prompts_dir = args.get("--prompts-dir").value_or("");
  if (!o.prompts_dir.empty() && !fs::is_directory(o.prompts_dir))
    throw UsageError("--prompts-dir " + o.prompts_dir.string() + " is not a folder");
  return o;
}

BackendFactory::BackendFactory(const AgentOptions& options, bool open_engine_now) : options_(options) {
  const BackendChoice& b = options_.backend;
  if (b.kind == BackendChoice::Kind::Scripted && !fs::is_regular_file(b.script))
    throw ConfigError("script " + b.script.string() + " does not exist");
  if (b.kind == BackendChoice::Kind::Engine && !b.model_path.empty()) {
    if (!fs::is_regular_file(b.model_path))
      throw ConfigError("model " + b.model_path + " does not exist" +
                        (b.from_config ? " (the default model in " + config_file().string() + "; pull it again)" : ""));
    if (open_engine_now) engine();
  }
}

Engine& BackendFactory::engine() {
  std::call_once(engine_once_, [&] {
    try {
      engine_ = Engine::open(options_.backend.model_path, options_.engine);
    } catch (const std::exception& e) {
      throw ConfigError("cannot load model " + options_.backend.model_path + ": " + e.what());
    }
  });
  return *engine_;
}

std::unique_ptr<agent::ModelBackend> BackendFactory::make() {
  const BackendChoice& b = options_.backend;
  switch (b.kind) {
    case BackendChoice::Kind::Scripted:
      return make_scripted(b.script);
    case BackendChoice::Kind::OpenAI:
      return agent::make_openai_backend(b.endpoint, options_.generation);
    case BackendChoice::Kind::Engine:
      if (b.model_path.empty()) throw ConfigError("no model backend configured for this task");
      return agent::make_engine_backend(engine(), options_.generation);
  }
  throw std::logic_error("unknown backend kind");
}

std::unique_ptr<agent::ModelBackend> BackendFactory::make_scripted(const fs::path& script) {
  try {
    return agent::make_scripted_backend(script);
  } catch (const std::exception& e) {
    throw ConfigError("cannot use script " + script.string() + ": " + e.what());
  }
}

std::string BackendFactory::describe() const {
  const BackendChoice& b = options_.backend;
  switch (b.kind) {
    case BackendChoice::Kind::Scripted: return "scripted:" + b.script.string();
    case BackendChoice::Kind::OpenAI: return "openai:" + b.endpoint.base_url + ":" + b.endpoint.model;
    case BackendChoice::Kind::Engine: return b.model_path.empty() ? "per-task scripts" : "engine:" + b.model_path;
  }
  return "";
}

}  // namespace flashfix::cli
