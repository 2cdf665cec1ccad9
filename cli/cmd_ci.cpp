// flashfix ci: the non-interactive fixer for CI pipelines. Runs the test command; when it fails,
// lets the agent fix it in a private copy, then writes the patch, a JSON report and JUnit XML, and
// optionally commits the fix on a new branch. Exit: 0 fixed (or nothing to fix), 1 not fixed,
// 2 usage or configuration error, 3 infrastructure error or timeout.
#include <cstdio>
#include <optional>

#include "cli/agent_options.h"
#include "cli/agent_run.h"
#include "cli/command.h"
#include "cli/interrupt.h"
#include "cli/junit_xml.h"
#include "cli/run_outputs.h"

namespace flashfix::cli {
namespace {
namespace fs = std::filesystem;

const std::string kUsage = std::string(
    "usage: flashfix ci [--repo DIR] --test \"CMD\" [--model M.gguf | --api URL --api-model NAME | --script F]\n"
    "                   [--max-turns N] [--timeout SECONDS] [--patch-out F] [--report F] [--junit F]\n"
    "                   [--commit-branch NAME] [\"task\"]\n"
    "Fixes the repository (default: the current folder) until CMD passes, without asking. The task\n"
    "defaults to making the test command pass. The user's working tree is never changed: the fix is\n"
    "written as a patch (--patch-out), and --commit-branch NAME commits it on a new branch.\n"
    "  --report F   JSON: outcome, reason, turns, tokens, seconds, test records, the diff\n"
    "  --junit F    JUnit XML: the fix as one testcase, each failing test record as another\n"
    "exit status: 0 fixed and tests pass (or they passed already), 1 not fixed, 2 usage or\n"
    "configuration error, 3 infrastructure error or timeout\n\n") + kAgentFlagsUsage;

struct Outputs {
  std::optional<fs::path> patch, report, junit;
};

int finish(const agent::AgentResult& result, const RunInfo& info, int status, const Outputs& out, const nlohmann::json& extra) {
  try {
    if (out.patch) write_file(*out.patch, result.diff);
    if (out.report) {
      nlohmann::json j = run_report(result, info, status);
      j.update(extra);
      write_file(*out.report, json_text(j, 2) + "\n");
    }
    if (out.junit) write_file(*out.junit, junit_xml(result, {info.test_command, info.task}));
  } catch (const std::exception& e) {
    // A pipeline that asked for these files cannot use the run without them.
    std::fprintf(stderr, "flashfix ci: cannot write the outputs: %s\n", e.what());
    status = kExitInfrastructure;
  }
  std::fprintf(stderr, "flashfix ci: %s: %s (%d turns, %.1f s) -> exit %d\n", std::string(agent::to_string(result.outcome)).c_str(),
               result.reason.c_str(), result.turns, result.seconds, status);
  return status;
}

int run_ci(const std::vector<std::string>& argv) {
  auto specs = agent_flag_specs();
  for (const char* f : {"--repo", "--test", "--patch-out", "--report", "--junit", "--commit-branch"}) specs.push_back({f, true});
  Args args(argv, specs);
  if (args.help()) return std::fputs(kUsage.c_str(), stdout), 0;
  if (args.positional().size() > 1) throw UsageError("expected at most one task (quote it)");
  RunInfo info;
  info.task = args.positional().empty() ? "" : args.positional()[0];
  info.test_command = args.require("--test");
  if (info.test_command.empty()) throw UsageError("--test needs a command");
  info.repo = args.get("--repo").value_or(".");
  std::string branch = args.get("--commit-branch").value_or("");
  if (args.has("--commit-branch") && branch.empty()) throw UsageError("--commit-branch needs a name");
  Outputs out;
  if (auto p = args.get("--patch-out")) out.patch = *p;
  if (auto p = args.get("--report")) out.report = *p;
  if (auto p = args.get("--junit")) out.junit = *p;
  AgentOptions options = parse_agent_options(args);

  std::unique_ptr<BackendFactory> factory;
  std::optional<tools::Workspace> workspace;
  try {
    factory = std::make_unique<BackendFactory>(options, /*open_engine_now=*/false);
    workspace.emplace(tools::Workspace::create(info.repo));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashfix ci: configuration error: %s\n", e.what());
    return kUsageError;
  }
  info.backend = factory->describe();

  std::stop_source stop;
  InterruptGuard interrupt(stop);
  std::fprintf(stderr, "flashfix ci: running the tests: %s\n", info.test_command.c_str());
  TestRun before = run_tests_once(*workspace, info.test_command);
  if (!before.ran) {
    std::fprintf(stderr, "flashfix ci: cannot run the test command: %s\n", before.message.c_str());
    agent::AgentResult failed;
    failed.outcome = agent::Outcome::InfrastructureError;
    failed.reason = "cannot run the test command: " + before.message;
    return finish(failed, info, kExitInfrastructure, out, {});
  }
  nlohmann::json extra = {{"tests_before", before.report.to_json()}};
  if (before.report.passed) return finish(nothing_to_fix(before.report), info, kExitFixed, out, extra);
  std::fprintf(stderr, "flashfix ci: %d failing; fixing with %s\n", before.report.n_failed, info.backend.c_str());

  std::unique_ptr<agent::ModelBackend> backend;
  try {
    backend = factory->make();
  } catch (const std::exception& e) {  // a model that does not load, a script that does not parse
    std::fprintf(stderr, "flashfix ci: configuration error: %s\n", e.what());
    return kUsageError;
  }
  agent::AgentConfig config{info.task, info.test_command, options.budget, options.trajectory, options.prompts_dir};
  DeadlineRun run = run_with_deadline(*backend, *workspace, config, plain_log_observer(""), stop);
  int status = run.timed_out ? kExitInfrastructure : exit_status(run.result, options.budget);
  if (run.timed_out) run.result.reason = "timed out after " + std::to_string(int(options.budget.max_seconds)) + " s: " + run.result.reason;
  if (interrupt.interrupted()) status = kExitInfrastructure, run.result.reason = "interrupted: " + run.result.reason;

  if (status == kExitFixed && !branch.empty() && !run.result.diff.empty()) {
    try {
      std::string message = "flashfix: " + (info.task.empty() ? "make `" + info.test_command + "` pass" : info.task);
      std::string id = workspace->commit_branch(branch, message);
      extra["commit"] = {{"branch", branch}, {"id", id}};
      std::fprintf(stderr, "flashfix ci: committed %s on branch %s\n", id.c_str(), branch.c_str());
    } catch (const std::exception& e) {
      // The fix is good; only recording it failed. The patch and reports still carry it.
      std::fprintf(stderr, "flashfix ci: cannot commit on branch %s: %s\n", branch.c_str(), e.what());
      extra["commit"] = {{"branch", branch}, {"error", e.what()}};
      status = kExitInfrastructure;
    }
  }
  std::fputs(run.result.diff.c_str(), stdout);
  return finish(run.result, info, status, out, extra);
}

const CommandRegistration reg{"ci", "fix failing tests non-interactively (CI): patch, JSON report, JUnit, exit codes", &run_ci};

}  // namespace
}  // namespace flashfix::cli
