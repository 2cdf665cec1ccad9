#include "cli/agent_run.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tools/tool.h"

namespace flashfix::cli {

TestRun run_tests_once(tools::Workspace& workspace, const std::string& test_command) {
  tools::ToolContext ctx{workspace, tools::tool_policy(workspace), test_command};
  tools::ToolResult r = tools::Registry::standard().invoke("run_tests", nlohmann::json::object(), ctx);
  TestRun run;
  run.message = r.text;
  run.ran = r.data.is_object() && r.data.contains("passed");
  if (run.ran) run.report = tools::TestReport::from_json(r.data);
  return run;
}

agent::AgentResult nothing_to_fix(const tools::TestReport& tests) {
  agent::AgentResult r;
  r.outcome = agent::Outcome::Fixed;
  r.reason = "nothing to fix: the test command already passes";
  r.final_tests = tests;
  return r;
}

DeadlineRun run_with_deadline(agent::ModelBackend& model, tools::Workspace& workspace, const agent::AgentConfig& config,
                              const agent::AgentObserver& observer, std::stop_source stop) {
  // The loop checks its own time budget between steps; the grace lets it end a step and run the
  // final tests before the watchdog cuts a hung call.
  auto limit = std::chrono::duration<double>(config.budget.max_seconds) + std::chrono::seconds(30);
  DeadlineRun run;
  std::mutex m;
  std::condition_variable_any cv;
  std::jthread watchdog([&](std::stop_token finished) {
    std::unique_lock lock(m);
    cv.wait_for(lock, finished, limit, [] { return false; });
    if (!finished.stop_requested()) {
      run.timed_out = true;
      stop.request_stop();
    }
  });
  run.result = agent::run_agent(model, workspace, config, observer, stop.get_token());
  watchdog.request_stop();
  watchdog.join();
  return run;
}

}  // namespace flashfix::cli
