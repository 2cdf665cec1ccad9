// flashfix replay TRAJ.jsonl [--repo DIR]: re-runs a recorded trajectory with the scripted backend
// (its model turns replayed verbatim, the tools run for real), to reproduce or demo a run.
#include <cstdio>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/agent_options.h"
#include "cli/agent_run.h"
#include "cli/command.h"
#include "cli/interrupt.h"
#include "cli/run_outputs.h"

namespace flashfix::cli {
namespace {
namespace fs = std::filesystem;

const char* kUsage =
    "usage: flashfix replay TRAJ.jsonl [--repo DIR] [--test \"CMD\"] [--patch-out F] [--report F]\n"
    "                       [--trajectory NEW.jsonl] [--max-turns N] [--timeout SECONDS]\n"
    "Replays the model turns of a trajectory (written by --trajectory) against the repository (default:\n"
    "the current folder) with the real tools, and reports the outcome like `flashfix ci` (same exit\n"
    "status). The task and test command come from the trajectory's start line unless given. The\n"
    "repository is not changed; --patch-out writes the resulting diff.\n";

int run_replay(const std::vector<std::string>& argv) {
  Args args(argv, {{"--repo", true}, {"--test", true}, {"--patch-out", true}, {"--report", true}, {"--trajectory", true},
                   {"--max-turns", true}, {"--timeout", true}});
  if (args.help()) return std::fputs(kUsage, stdout), 0;
  if (args.positional().size() != 1) throw UsageError("expected one trajectory file");
  fs::path trajectory = args.positional()[0];

  // The start line says what the run was asked to do.
  std::ifstream in(trajectory);
  if (!in) {
    std::fprintf(stderr, "flashfix replay: configuration error: cannot read %s\n", trajectory.c_str());
    return kUsageError;
  }
  std::string first;
  std::getline(in, first);
  nlohmann::json start = nlohmann::json::parse(first, nullptr, /*allow_exceptions=*/false);
  if (!start.is_object() || start.value("type", "") != "start") {
    std::fprintf(stderr, "flashfix replay: configuration error: %s does not start with a trajectory start line\n",
                 trajectory.c_str());
    return kUsageError;
  }
  RunInfo info;
  info.repo = args.get("--repo").value_or(".");
  info.task = start.value("task", "");
  info.test_command = args.get("--test").value_or(start.value("test_command", ""));
  info.backend = "scripted:" + trajectory.string();

  agent::Budget budget;
  budget.max_turns = int(args.get_int("--max-turns", budget.max_turns, 1, 100000));
  budget.max_seconds = args.get_double("--timeout", budget.max_seconds);
  if (budget.max_seconds <= 0) throw UsageError("--timeout must be positive");

  std::unique_ptr<agent::ModelBackend> backend;
  std::optional<tools::Workspace> workspace;
  try {
    backend = agent::make_scripted_backend(trajectory);
    workspace.emplace(tools::Workspace::create(info.repo));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashfix replay: configuration error: %s\n", e.what());
    return kUsageError;
  }
  std::stop_source stop;
  InterruptGuard interrupt(stop);
  agent::AgentConfig config{info.task, info.test_command, budget, args.get("--trajectory").value_or(""), {}};
  DeadlineRun run = run_with_deadline(*backend, *workspace, config, plain_log_observer(""), stop);
  int status = run.timed_out || interrupt.interrupted() ? kExitInfrastructure : exit_status(run.result, budget);
  if (auto p = args.get("--patch-out")) write_file(*p, run.result.diff);
  if (auto p = args.get("--report")) write_file(*p, json_text(run_report(run.result, info, status), 2) + "\n");
  std::fputs(run.result.diff.c_str(), stdout);
  std::fprintf(stderr, "flashfix replay: %s: %s (%d turns) -> exit %d\n", std::string(agent::to_string(run.result.outcome)).c_str(),
               run.result.reason.c_str(), run.result.turns, status);
  return status;
}

const CommandRegistration reg{"replay", "re-run a trajectory log with the scripted backend and real tools", &run_replay};

}  // namespace
}  // namespace flashfix::cli
