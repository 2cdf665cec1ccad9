// flashfix batch TASKS.jsonl --jobs N --out RESULTS.jsonl [--shard i/N]: many fix tasks at once on
// one shared backend (one engine serves every worker through its scheduler). Resumable: tasks
// whose id already has a result are skipped; a result line is appended as each task finishes.
#include <atomic>
#include <cstdio>
#include <thread>

#include "cli/agent_options.h"
#include "cli/agent_run.h"
#include "cli/batch_tasks.h"
#include "cli/command.h"
#include "cli/interrupt.h"
#include "cli/progress_bar.h"
#include "cli/run_outputs.h"

namespace flashfix::cli {
namespace {
namespace fs = std::filesystem;

const std::string kUsage = std::string(
    "usage: flashfix batch TASKS.jsonl --out RESULTS.jsonl [--jobs N] [--shard i/N] [--trajectory-dir DIR]\n"
    "                      [--model M.gguf | --api URL --api-model NAME | --script F] [budget flags]\n"
    "Each task line: {\"id\": \"...\", \"repo\": \"DIR\", \"test\": \"CMD\", \"task\": \"...\" (optional),\n"
    "\"script\": \"F.jsonl\" (optional: a scripted backend for this task), \"max_turns\": N (optional)};\n"
    "relative paths are relative to the task file. N tasks run at once (default 1), all on one backend.\n"
    "Every finished task appends one line to RESULTS: {\"id\", \"outcome\", \"reason\", \"turns\", tokens,\n"
    "\"seconds\", \"tests\", \"diff\", ...}; a task whose id is already there is skipped (tasks that ended\n"
    "in an error are retried), so an interrupted batch resumes where it stopped. --shard i/N takes the\n"
    "tasks whose position in the file modulo N is i, to split a list across machines. The user's\n"
    "repositories are never changed: each result carries its diff.\n"
    "exit status: 0 every task ran, 2 usage or configuration error, 3 some task hit an error\n\n") +
    kAgentFlagsUsage;

nlohmann::json run_task(const BatchTask& t, BackendFactory& factory, const AgentOptions& options,
                        const std::optional<fs::path>& trajectory_dir, std::stop_source stop) {
  nlohmann::json line = {{"id", t.id}, {"repo", t.repo.string()}, {"task", t.task}, {"test", t.test}};
  try {
    auto backend = t.script.empty() ? factory.make() : factory.make_scripted(t.script);
    line["backend"] = backend->describe();
    tools::Workspace workspace = tools::Workspace::create(t.repo);
    agent::AgentConfig config{t.task, t.test, options.budget, {}, options.prompts_dir};
    if (t.max_turns) config.budget.max_turns = *t.max_turns;
    if (trajectory_dir) config.trajectory = *trajectory_dir / (t.id + ".jsonl");
    DeadlineRun run = run_with_deadline(*backend, workspace, config, {}, stop);
    int status = run.timed_out ? kExitInfrastructure : exit_status(run.result, config.budget);
    line.update(run_report(run.result, {t.repo.string(), t.task, t.test, backend->describe()}, status));
    line["id"] = t.id;
    if (run.timed_out) line["outcome"] = "infrastructure_error", line["reason"] = "timed out: " + run.result.reason;
  } catch (const std::exception& e) {
    line["outcome"] = "error";
    line["reason"] = e.what();
  }
  return line;
}

int run_batch(const std::vector<std::string>& argv) {
  auto specs = agent_flag_specs();
  for (const char* f : {"--jobs", "--out", "--shard", "--trajectory-dir"}) specs.push_back({f, true});
  Args args(argv, specs);
  if (args.help()) return std::fputs(kUsage.c_str(), stdout), 0;
  if (args.positional().size() != 1) throw UsageError("expected one task file");
  if (args.has("--trajectory")) throw UsageError("batch writes one trajectory per task: use --trajectory-dir DIR");
  fs::path out = args.require("--out");
  int jobs = int(args.get_int("--jobs", 1, 1, 256));
  std::optional<std::pair<size_t, size_t>> shard;
  if (auto s = args.get("--shard")) shard = parse_shard(*s);
  std::optional<fs::path> trajectory_dir;
  if (auto d = args.get("--trajectory-dir")) trajectory_dir = fs::absolute(*d), fs::create_directories(*trajectory_dir);
  AgentOptions options = parse_agent_options(args, /*backend_optional=*/true);
  options.engine.max_sequences = std::max(options.engine.max_sequences, jobs);

  std::vector<BatchTask> all = read_batch_tasks(args.positional()[0]);
  std::set<std::string> finished = finished_task_ids(out);
  std::vector<BatchTask> pending;
  size_t in_shard = 0;
  for (auto& t : all) {
    if (shard && t.index % shard->second != shard->first) continue;
    ++in_shard;
    if (!finished.count(t.id)) pending.push_back(t);
  }
  bool shared_needed = false;
  for (const auto& t : pending) {
    if (t.script.empty()) shared_needed = true;
    else if (!fs::is_regular_file(t.script)) throw UsageError("task " + t.id + ": script " + t.script.string() + " does not exist");
    if (!fs::is_directory(t.repo)) throw UsageError("task " + t.id + ": repo " + t.repo.string() + " is not a folder");
  }
  bool has_backend = options.backend.kind != BackendChoice::Kind::Engine || !options.backend.model_path.empty();
  if (shared_needed && !has_backend)
    throw UsageError("some tasks have no \"script\": pass --model, --api or --script, or pull a default model");

  std::unique_ptr<BackendFactory> factory;
  try {
    factory = std::make_unique<BackendFactory>(options, shared_needed);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "flashfix batch: configuration error: %s\n", e.what());
    return kUsageError;
  }
  std::fprintf(stderr, "flashfix batch: %zu tasks%s, %zu already done, %zu to run with %d jobs\n", in_shard,
               shard ? (" in shard " + std::to_string(shard->first) + "/" + std::to_string(shard->second)).c_str() : "",
               in_shard - pending.size(), pending.size(), jobs);

  ResultsFile results(out);
  std::stop_source stop;
  InterruptGuard interrupt(stop);
  ProgressBar bar("batch", pending.size(), ProgressBar::Unit::Count);
  std::mutex progress_mutex;
  std::atomic<size_t> next{0};
  size_t done = 0, fixed = 0, errors = 0;
  auto worker = [&] {
    for (size_t i; !stop.stop_requested() && (i = next++) < pending.size();) {
      nlohmann::json line = run_task(pending[i], *factory, options, trajectory_dir, stop);
      if (stop.stop_requested() && interrupt.interrupted()) break;  // cut short: leave it to the resumed run
      results.append(line);
      std::lock_guard lock(progress_mutex);
      ++done;
      std::string outcome = line.value("outcome", "");
      fixed += outcome == "fixed";
      errors += outcome == "error" || outcome == "infrastructure_error";
      bar.update(done, pending[i].id + ": " + outcome + " (fixed " + std::to_string(fixed) + ", errors " + std::to_string(errors) + ")");
    }
  };
  {
    std::vector<std::jthread> workers;
    for (int j = 0; j < std::min<int>(jobs, int(pending.size())); ++j) workers.emplace_back(worker);
  }
  bar.finish("fixed " + std::to_string(fixed) + ", not fixed " + std::to_string(done - fixed - errors) + ", errors " +
             std::to_string(errors));
  std::fprintf(stderr, "flashfix batch: results in %s\n", out.c_str());
  if (interrupt.interrupted()) return kExitInfrastructure;
  return errors ? kExitInfrastructure : 0;
}

const CommandRegistration reg{"batch", "run many fix tasks concurrently on one engine (resumable, shardable)", &run_batch};

}  // namespace
}  // namespace flashfix::cli
