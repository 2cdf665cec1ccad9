// Running the agent from a front end: the test command once before any change (nothing to fix?),
// and the loop under a watchdog that enforces the wall-clock budget even when a backend call hangs.
#pragma once
#include <stop_token>
#include <string>

#include "agent/agent.h"
#include "tools/test_report.h"
#include "tools/workspace.h"

namespace flashfix::cli {

struct TestRun {
  bool ran = false;          // false: the sandbox could not run the command at all (infrastructure)
  std::string message;       // what run_tests said (the error, when !ran)
  tools::TestReport report;  // when ran
};

// The run_tests tool on the workspace as it is, in the sandbox, like the agent would run it.
TestRun run_tests_once(tools::Workspace& workspace, const std::string& test_command);

// An AgentResult for a run that did not need the agent: the tests passed before any change.
agent::AgentResult nothing_to_fix(const tools::TestReport& tests);

struct DeadlineRun {
  agent::AgentResult result;
  bool timed_out = false;  // the watchdog stopped the run (budget.max_seconds plus a grace period)
};
DeadlineRun run_with_deadline(agent::ModelBackend& model, tools::Workspace& workspace, const agent::AgentConfig& config,
                              const agent::AgentObserver& observer, std::stop_source stop);

}  // namespace flashfix::cli
