// The flags every agent front end shares (fix, ci, batch, replay), in one place: which model
// backend (an embedded GGUF model, an OpenAI-compatible endpoint, or a scripted replay), how the
// engine runs, sampling, the budget and the trajectory log. Without a backend flag the default model
// from the user config (set by `flashfix pull`) is used.
#pragma once
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/model_backend.h"
#include "cli/args.h"
#include "engine/engine.h"

namespace flashfix::cli {

// A configuration the user must fix (model file missing or unloadable, script unreadable): exit 2.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BackendChoice {
  enum class Kind { Engine, OpenAI, Scripted } kind = Kind::Engine;
  std::string model_path;           // Engine
  agent::OpenAIEndpoint endpoint;   // OpenAI
  std::filesystem::path script;     // Scripted
  bool from_config = false;         // Engine: the model came from the user config, not --model
};

struct AgentOptions {
  BackendChoice backend;
  EngineOptions engine;
  agent::GenerationSettings generation;
  agent::Budget budget;
  std::filesystem::path trajectory;   // empty: no log
  std::filesystem::path prompts_dir;  // empty: the loop's default
};

std::vector<FlagSpec> agent_flag_specs();
extern const char* const kAgentFlagsUsage;  // the help text for agent_flag_specs()

// Validates the flags (one backend at most; --api needs --api-model; numbers in range). With no
// backend flag it takes the configured default model, or throws UsageError saying how to get one;
// with backend_optional (batch, where every task may bring its own script) no model is no error.
AgentOptions parse_agent_options(const Args& args, bool backend_optional = false);

// Opens the engine once (for the embedded backend) and hands out one backend per agent run, all
// sharing that engine; OpenAI and scripted backends are cheap and made per run.
class BackendFactory {
 public:
  // Throws ConfigError when the model file or script cannot be used.
  explicit BackendFactory(const AgentOptions& options, bool open_engine_now = true);
  std::unique_ptr<agent::ModelBackend> make();                                        // the configured backend
  std::unique_ptr<agent::ModelBackend> make_scripted(const std::filesystem::path& s);  // a per-task script
  std::string describe() const;

 private:
  Engine& engine();
  AgentOptions options_;
  std::once_flag engine_once_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace flashfix::cli
