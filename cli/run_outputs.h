// What the agent front ends share after (and while) a run: the exit status of ci,
// fix and replay, the JSON report, writing output files, and a plain log of the run on stderr.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "engine/json_text.h"  // json_text, which the run outputs are written with

namespace flashfix::cli {

// Exit statuses of ci (and fix, replay): fixed and tests pass, not fixed, usage or configuration
// error (kUsageError), infrastructure error or timeout.
constexpr int kExitFixed = 0, kExitNotFixed = 1, kExitInfrastructure = 3;

// The wall-clock budget running out counts as a timeout (3), the other budgets as not fixed (1).
int exit_status(const agent::AgentResult& result, const agent::Budget& budget);

struct RunInfo {
  std::string repo, task, test_command, backend;
};
// AgentResult::to_json() plus what the run was asked to do, the test records and the exit status.
nlohmann::json run_report(const agent::AgentResult& result, const RunInfo& info, int exit_status);

void write_file(const std::filesystem::path& path, std::string_view content);  // throws naming the path

// Collapses whitespace runs and cuts to max characters with an ellipsis, for one-line logs.
std::string one_line(std::string_view text, size_t max);

// An observer for non-interactive runs: a line per turn (tokens, speed) and per tool call and result.
agent::AgentObserver plain_log_observer(std::string prefix);

}  // namespace flashfix::cli
