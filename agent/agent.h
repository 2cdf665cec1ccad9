// The agent loop: plan, write, run, fix, until the test command passes or a budget ends.
//
// Each turn: one model turn -> its calls parsed (a malformed call becomes an error observation the
// model can repair) -> each call run through tools::Registry::invoke -> the results appended as tool
// messages. The history is append-only, so the engine's prefix cache hits every turn. After a turn
// that edited files, and whenever the model ends a turn without calls, the loop runs the test command
// itself and feeds the failures back as structured records. Fixed is only ever declared on the loop's
// own final run of the test command, never on the model's say. The rules for loop detection and
// revert are in agent/README.md.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/model_backend.h"
#include "agent/tool_calls.h"
#include "tools/test_report.h"
#include "tools/tool.h"
#include "tools/workspace.h"

namespace flashfix::agent {

struct Budget {
  int max_turns = 30;             // model turns
  int64_t max_tokens = 200000;    // generated + prompt tokens computed (not the cached ones)
  double max_seconds = 1800;      // wall time, model and tools together
};

struct AgentConfig {
  std::string task{};                 // empty: "make the test command pass"
  std::string test_command{};         // the run_tests command (shell); empty: nothing can verify a fix
  Budget budget{};
  std::filesystem::path trajectory{}; // JSONL path; empty: none
  std::filesystem::path prompts_dir{}; // system prompt files; empty: default_prompts_dir()
  double test_timeout_seconds = 300;  // one run of the test command in the sandbox
};

enum class Outcome {
  Fixed,               // the loop's final run of the test command passed
  NotFixed,            // the model finished (a turn without calls) and the tests still fail, or no test command
  BudgetExhausted,     // max turns, max tokens or wall time
  LoopDetected,        // the same call with the same result again after a nudge
  InfrastructureError, // the backend failed (connection, HTTP, engine) or the run was cancelled
};
std::string_view to_string(Outcome outcome);  // "fixed", "not_fixed", "budget_exhausted", ...

struct AgentResult {
  Outcome outcome = Outcome::NotFixed;
  std::string reason;  // human-readable: why it stopped
  int turns = 0;
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
  double seconds = 0;
  tools::TestReport final_tests;  // the loop's last run of the test command (status "not_run" without one)
  std::string diff;               // workspace.diff()
  nlohmann::json to_json() const;
};

struct AgentObserver {  // all optional; called on the calling thread
  std::function<void(const StreamEvent&)> on_stream{};
  std::function<void(const ParsedCall&)> on_tool_call{};
  std::function<void(const ParsedCall&, const tools::ToolResult&)> on_tool_result{};
  std::function<void(int turn, const TurnStats&)> on_turn{};
  std::function<void(const tools::TestReport&)> on_tests{};  // each test run the loop makes itself
};

// Never throws for model behaviour, backend or workspace failures (they become the outcome); throws
// std::runtime_error only when the prompts cannot be read or the trajectory cannot be written
// (agent::TrajectoryError).
AgentResult run_agent(ModelBackend& model, tools::Workspace& workspace, const AgentConfig& config,
                      const AgentObserver& observer = {}, std::stop_token stop = {});

// The prompts/ folder of the source tree this binary was built from, unless FLASHFIX_PROMPTS_DIR is set.
std::filesystem::path default_prompts_dir();

}  // namespace flashfix::agent
