// The one way run and run_tests start a command: sh -c in the sandbox, workspace = the private copy.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"
#include "tools/workspace.h"

namespace flashfix::tools {

struct ShellOutcome {
  bool ran = false;          // false: the sandbox could not be set up (nothing ran)
  std::string status;        // "exited", "timed_out", "memory_limit", ... (sandbox::Status names)
  int exit_code = -1;        // exited: the status; signaled: 128 + signal; otherwise -1
  std::string headline;      // "exit code 1 (0.4 s)", "timed out after 120 s; ...", ...
  std::string stdout_text, stderr_text;  // the workspace's absolute path replaced by "." so paths read relative
  nlohmann::json data;       // {"status", "exit_code", "wall_ms"}
};

// merge_stderr: stderr joins stdout in one stream, in the order written (what test runners need).
ShellOutcome run_in_sandbox(const Workspace& ws, sandbox::Policy policy, const std::string& command, bool merge_stderr);

}  // namespace flashfix::tools
