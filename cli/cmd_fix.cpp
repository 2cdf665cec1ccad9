// flashfix fix: the interactive fixer. Streams the model's output, each tool call and its result
// and a progress line per turn, shows the final diff and asks before applying it to the user's
// working tree (which the agent never touches while it works).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/agent_options.h"
#include "cli/agent_run.h"
#include "cli/command.h"
#include "cli/interrupt.h"
#include "cli/run_outputs.h"
#include "cli/terminal_view.h"

namespace flashfix::cli {
namespace {

const std::string kUsage = std::string(
    "usage: flashfix fix [--repo DIR] [--test \"CMD\"] [--model M.gguf | --api URL --api-model NAME | --script F]\n"
    "                    [--yes] [--patch-out F] \"task\"\n"
    "Works on a private copy of the repository (default: the current folder) until the task is done\n"
    "and CMD passes, showing the model's output, its tool calls and their results as they happen.\n"
    "Then it shows the diff and asks before applying it to your working tree; your own uncommitted\n"
    "changes stay as they are. --yes applies a fix without asking (only when the tests pass); without\n"
    "a terminal to ask on and without --yes nothing is applied. --patch-out F also writes the diff.\n"
    "exit status: as `flashfix ci` (0 fixed, 1 not fixed, 2 usage/configuration, 3 infrastructure)\n\n") +
    kAgentFlagsUsage;

bool confirm(const std::string& question) {
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

int run_fix(const std::vector<std::string>& argv) {
  auto specs = agent_flag_specs();
  for (const char* f : {"--repo", "--test", "--patch-out"}) specs.push_back({f, true});
  specs.push_back({"--yes", false});
  Args args(argv, specs);
  if (args.help()) return std::fputs(kUsage.c_str(), stdout), 0;
  if (args.positional().size() != 1) throw UsageError("expected the task, quoted: flashfix fix \"make the parser accept tabs\"");
  RunInfo info;
  info.task = args.positional()[0];
  info.test_command = args.get("--test").value_or("");
  info.repo = args.get("--repo").value_or(".");
  AgentOptions options = parse_agent_options(args);

  std::unique_ptr<BackendFactory> factory;
  std::optional<tools::Workspace> workspace;
  std::unique_ptr<agent::ModelBackend> backend;
  try {
    factory = std::make_unique<BackendFactory>(options);
    workspace.emplace(tools::Workspace::create(info.repo));
    backend = factory->make();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashfix fix: configuration error: %s\n", e.what());
    return kUsageError;
  }
  info.backend = factory->describe();
  bool tty = isatty(STDOUT_FILENO) == 1;
  std::fprintf(stderr, "flashfix fix: %s on %s (working copy %s)\n", info.backend.c_str(), info.repo.c_str(),
               workspace->root().c_str());

  std::stop_source stop;
  InterruptGuard interrupt(stop);
  TerminalView view(tty, options.budget.max_turns);
  agent::AgentConfig config{info.task, info.test_command, options.budget, options.trajectory, options.prompts_dir};
  DeadlineRun run = run_with_deadline(*backend, *workspace, config, view.observer(), stop);
  const agent::AgentResult& r = run.result;
  int status = run.timed_out || interrupt.interrupted() ? kExitInfrastructure : exit_status(r, options.budget);

  std::printf("\n%s: %s\n%d turns, %.1f s, %lld prompt tokens (%lld cached), %lld generated\n",
              std::string(agent::to_string(r.outcome)).c_str(), r.reason.c_str(), r.turns, r.seconds, (long long)r.prompt_tokens,
              (long long)r.cached_tokens, (long long)r.generated_tokens);
  if (!info.test_command.empty()) std::printf("tests: %s\n", r.final_tests.summary().c_str());
  if (auto p = args.get("--patch-out")) write_file(*p, r.diff);
  if (r.diff.empty()) {
    std::printf("no changes.\n");
    return status;
  }
  std::printf("\n");
  view.print_diff(r.diff);
  std::fflush(stdout);

  bool fixed = status == kExitFixed;
  bool apply = false;
  if (args.has("--yes")) {
    apply = fixed;
    if (!fixed) std::fprintf(stderr, "not applied: --yes applies only a fix whose tests pass\n");
  } else if (isatty(STDIN_FILENO) == 1) {
    apply = confirm(std::string(fixed ? "" : "The tests do not pass yet. ") + "Apply this change to " + info.repo + "?");
    if (!apply) std::fprintf(stderr, "not applied.\n");
  } else {
    std::fprintf(stderr, "not applied: no terminal to confirm on; run again with --yes, or save it with --patch-out F and `git apply F`\n");
  }
  if (apply) {
    try {
      workspace->apply_to_user_tree();
      std::fprintf(stderr, "applied to %s: %zu file(s) changed\n", info.repo.c_str(), workspace->changed_files().size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flashfix fix: not applied: %s\n", e.what());
      return kExitNotFixed;
    }
  }
  return status;
}

const CommandRegistration reg{"fix", "fix a repository interactively: streamed agent run, diff, confirm, apply", &run_fix};

}  // namespace
}  // namespace flashfix::cli
