// The loop itself. The rules it applies (when tests run, what counts as worse, loop detection, the
// budgets) are listed in agent/README.md; this file is meant to be read top to bottom.
#include "agent/agent.h"

#include <chrono>
#include <ctime>
#include <map>

#include "agent/prompts.h"
#include "agent/trajectory.h"

namespace flashfix::agent {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// run_tests reports through ToolResult::data; a run that could not happen (no sandbox) has only text.
tools::TestReport report_from(const tools::ToolResult& r) {
  if (r.data.is_object() && r.data.contains("status")) return tools::TestReport::from_json(r.data);
  tools::TestReport t;
  t.status = "error";
  t.format = "raw";
  t.output_tail = r.text;
  return t;
}

// How bad a test state is: 0 passing, 1 tests failing, 2 no test result at all (the build broke,
// the command timed out or crashed). A turn is worse when it raises the rank, or keeps rank 1 in the
// same format with more failures.
int rank(const tools::TestReport& t) {
  if (t.passed) return 0;
  return t.status == "failed" && t.format != "compiler" ? 1 : 2;
}
bool worse(const tools::TestReport& before, const tools::TestReport& after) {
  if (rank(after) != rank(before)) return rank(after) > rank(before);
  return rank(after) == 1 && after.format == before.format && after.n_failed > before.n_failed;
}
std::string headline(const tools::TestReport& t) {
  if (t.passed) return "the tests pass";
  if (rank(t) == 2) return t.format == "compiler" ? "the build fails (" + std::to_string(t.failures.size()) + " diagnostics)"
                                                  : "the test command ends with status " + t.status;
  if (t.n_failed == 0 && t.n_passed == 0) return "the tests fail (exit code " + std::to_string(t.exit_code) + ")";
  return std::to_string(t.n_failed) + " failing, " + std::to_string(t.n_passed) + " passing (" + t.format + ")";
}

ojson call_json(const ParsedCall& c) {
  ojson j{{"id", c.call.id}, {"name", c.call.name}, {"arguments", c.call.arguments}};
  if (!c.error.empty()) j["error"] = c.error;
  if (!c.raw.empty()) j["raw"] = c.raw;
  return j;
}

class Run {
 public:
  Run(ModelBackend& model, tools::Workspace& ws, const AgentConfig& config, const AgentObserver& obs, std::stop_token stop)
      : model_(model),
        ws_(ws),
        config_(config),
        obs_(obs),
        stop_(stop),
        prompts_(Prompts::load(config.prompts_dir.empty() ? default_prompts_dir() : config.prompts_dir)),
        registry_(tools::Registry::standard()),
        ctx_{ws, tools::tool_policy(ws), config.test_command},
        tool_specs_(registry_.openai_tools()) {
    if (!config.trajectory.empty()) traj_ = TrajectoryWriter(config.trajectory);
    ctx_.policy.timeout = std::chrono::milliseconds(int64_t(config.test_timeout_seconds * 1000));
  }

  AgentResult run() {
    try {
      return loop();
    } catch (const TrajectoryError&) {
      throw;
    } catch (const std::exception& e) {
      // The workspace or the sandbox failed under the loop (disk full, git error): not the model's doing.
      return finish(Outcome::InfrastructureError, std::string("the run failed: ") + e.what());
    }
  }

 private:
  AgentResult loop() {
    const std::string test_cmd = config_.test_command.empty() ? "(none configured)" : config_.test_command;
    const std::string task = config_.task.empty() ? fill(prompts_.default_task, {{"test_command", test_cmd}}) : config_.task;
    messages_.push_back({.role = "system", .content = fill(prompts_.system, {{"test_command", test_cmd}})});
    traj_.write("start", {{"task", task}, {"test_command", config_.test_command}, {"backend", model_.describe()},
                          {"workspace", ws_.user_repo().string()}, {"time", utc_now()}, {"version", flashfix_version()},
                          {"budget", {{"max_turns", config_.budget.max_turns}, {"max_tokens", config_.budget.max_tokens},
                                      {"max_seconds", config_.budget.max_seconds}}},
                          {"system", messages_[0].content}});

    std::string state = "(no test command configured: nothing runs the tests)";
    if (has_tests()) {
      last_ = run_tests("initial");
      passed_at_start_ = last_.passed;
      if (last_.passed && config_.task.empty()) return finish(Outcome::Fixed, "the test command already passes; nothing to fix");
      state = report_text_;
    }
    say(fill(prompts_.task, {{"task", task}, {"test_report", state}}));

    for (turn_ = 1;; ++turn_) {
      if (stop_.stop_requested()) return finish(Outcome::InfrastructureError, "cancelled");
      if (turn_ > config_.budget.max_turns)
        return finish(Outcome::BudgetExhausted, "reached the limit of " + std::to_string(config_.budget.max_turns) + " turns");
      if (seconds_since(start_) >= config_.budget.max_seconds)
        return finish(Outcome::BudgetExhausted, "ran out of time (" + std::to_string(int(config_.budget.max_seconds)) + " s)");
      if (spent_tokens() >= config_.budget.max_tokens)
        return finish(Outcome::BudgetExhausted, "used the token budget (" + std::to_string(spent_tokens()) + " of " +
                                                    std::to_string(config_.budget.max_tokens) + ")");
      ModelTurn mt;
      try {
        StreamSink sink{obs_.on_stream};
        mt = model_.complete(messages_, tool_specs_, obs_.on_stream ? &sink : nullptr, stop_);
      } catch (const ContextOverflow& e) {
        return finish(Outcome::BudgetExhausted, std::string("the conversation no longer fits the model: ") + e.what());
      } catch (const BackendError& e) {
        return finish(Outcome::InfrastructureError, std::string("model backend failed: ") + e.what());
      }
      record_model_turn(mt);
      if (mt.stats.finish == "cancelled") return finish(Outcome::InfrastructureError, "cancelled");

      if (mt.message.calls.empty()) {
        if (!has_tests()) return finish(Outcome::NotFixed, "the model finished; no test command is configured to verify the change");
        if (auto done = check("You ended your turn without a tool call, but the change is not done."); done) return *done;
        continue;
      }
      const std::string checkpoint = ws_.checkpoint("turn " + std::to_string(turn_));
      traj_.write("checkpoint", {{"turn", turn_}, {"id", checkpoint}});
      std::optional<tools::TestReport> model_report;  // the model's own run_tests, if it was the turn's last call
      std::string model_report_text;
      for (const ParsedCall& call : mt.message.calls) {
        const tools::ToolResult result = execute(call);
        model_report.reset();
        if (call.error.empty() && call.call.name == "run_tests" && result.data.is_object())
          model_report = report_from(result), model_report_text = result.text;
        if (stopping_) return finish(Outcome::LoopDetected, *stopping_);
      }
      if (!has_tests()) continue;
      if (ws_.diff_since(checkpoint).empty()) {
        if (model_report && model_report->passed && !passed_at_start_)
          if (auto done = verify(); done) return *done;
        continue;
      }
      // The turn changed files: its test result decides whether the change stays.
      tools::TestReport after = model_report ? *model_report : run_tests("after_edits");
      const std::string after_text = model_report ? model_report_text : report_text_;
      if (after.passed && passed_at_start_) {
        last_ = after;  // passing says nothing about a task whose tests passed before: the model decides
        continue;
      }
      if (after.passed) {
        if (!model_report) return finish(Outcome::Fixed, "the test command passes");  // the loop's own run
        if (auto done = verify(); done) return *done;
        continue;
      }
      if (worse(last_, after)) {
        ws_.revert(checkpoint);
        final_current_ = false;
        traj_.write("revert", {{"turn", turn_}, {"id", checkpoint}, {"before", headline(last_)}, {"after", headline(after)}});
        say(fill(prompts_.reverted, {{"before", headline(last_)}, {"after", headline(after)}, {"test_report", after_text}}));
        continue;
      }
      last_ = after;
      if (!model_report) say(fill(prompts_.tests_failed, {{"why", "flashfix ran the tests after your changes."}, {"test_report", after_text}}));
    }
  }

  bool has_tests() const { return !config_.test_command.empty(); }
  int64_t spent_tokens() const { return result_.prompt_tokens - result_.cached_tokens + result_.generated_tokens; }

  // A message the loop itself adds to the conversation.
  void say(std::string text) {
    traj_.write("feedback", {{"turn", turn_}, {"content", text}});
    messages_.push_back({.role = "user", .content = std::move(text)});
  }

  void record_model_turn(const ModelTurn& mt) {
    result_.turns = turn_;
    result_.prompt_tokens += mt.stats.prompt_tokens;
    result_.cached_tokens += mt.stats.cached_tokens;
    result_.generated_tokens += mt.stats.generated_tokens;
    ojson calls = ojson::array();
    for (const ParsedCall& c : mt.message.calls) calls.push_back(call_json(c));
    traj_.write("model", {{"turn", turn_}, {"raw", mt.raw}, {"reasoning", mt.message.reasoning}, {"content", mt.message.content},
                          {"tool_calls", calls}, {"stats", mt.stats.to_json()}});
    if (obs_.on_turn) obs_.on_turn(turn_, mt.stats);
    ChatMessage m{.role = "assistant", .content = mt.message.content, .reasoning_content = mt.message.reasoning};
    for (const ParsedCall& c : mt.message.calls) {
      m.tool_calls.push_back(c.call);
      // Chat templates and the OpenAI API need a name on every call; a call malformed before its name
      // keeps a placeholder, and its error observation says what was wrong.
      if (m.tool_calls.back().name.empty()) m.tool_calls.back().name = "unnamed_call";
    }
    messages_.push_back(std::move(m));
  }

  // One call: a malformed one becomes its error observation; a repeat of an earlier call with the
  // same result gets a nudge the first time and stops the run the second.
  tools::ToolResult execute(const ParsedCall& call) {
    if (obs_.on_tool_call) obs_.on_tool_call(call);
    final_current_ = false;  // any call may change the files
    const auto t0 = Clock::now();
    tools::ToolResult result = call.error.empty() ? registry_.invoke(call.call.name, call.call.arguments, ctx_)
                                                  : tools::ToolResult{false, fill(prompts_.call_error, {{"error", call.error}}), {}};
    const double ms = seconds_since(t0) * 1000;
    const std::string key = call.call.name + '\n' + call.call.arguments.dump() + '\n' + (result.ok ? "ok" : "error") + '\n' + result.text;
    const int seen = ++repeats_[key];
    ojson line{{"turn", turn_}, {"call_id", call.call.id}, {"name", call.call.name}, {"arguments", call.call.arguments},
               {"ok", result.ok}, {"result", result.text}, {"data", result.data}, {"ms", ms}};
    if (seen == 2) {
      result.text += "\n\n" + prompts_.repeat_nudge;
      line["nudge"] = true;
    } else if (seen > 2) {
      stopping_ = "the model repeated the call " + call.call.name + " " + call.call.arguments.dump() + " with the same result " +
                  std::to_string(seen) + " times, after a nudge";
    }
    traj_.write("tool", line);
    if (obs_.on_tool_result) obs_.on_tool_result(call, result);
    // Templates refuse an empty tool message; "(no output)" also reads better to a model.
    messages_.push_back({.role = "tool", .content = result.text.empty() ? "(no output)" : result.text,
                         .tool_call_id = call.call.id, .name = call.call.name});
    return result;
  }

  // The loop's own run of the test command (the run_tests tool, so it reads as the model's would).
  tools::TestReport run_tests(std::string_view trigger) {
    const tools::ToolResult r = registry_.invoke("run_tests", nlohmann::json::object(), ctx_);
    tools::TestReport report = report_from(r);
    report_text_ = r.text;
    traj_.write("tests", {{"turn", turn_}, {"trigger", trigger}, {"report", report.to_json()}});
    if (obs_.on_tests) obs_.on_tests(report);
    final_ = report, final_current_ = true;
    return report;
  }

  // Runs the tests; passing ends the run as fixed, failing tells the model why it is not done.
  std::optional<AgentResult> check(const std::string& why) {
    tools::TestReport t = run_tests("no_calls");
    if (t.passed) return finish(Outcome::Fixed, "the test command passes");
    last_ = t;
    say(fill(prompts_.tests_failed, {{"why", why}, {"test_report", report_text_}}));
    return std::nullopt;
  }
  // The model's say (or one passing run) is not enough: the loop runs the test command itself.
  std::optional<AgentResult> verify() {
    tools::TestReport t = run_tests("verify");
    if (t.passed) return finish(Outcome::Fixed, "the test command passes");
    last_ = t;
    say(fill(prompts_.tests_failed, {{"why", "flashfix ran the tests again to confirm, and the result changed."}, {"test_report", report_text_}}));
    return std::nullopt;
  }

  AgentResult finish(Outcome outcome, std::string reason) {
    // final_tests is always the state the diff leaves behind: rerun unless the last run saw exactly it.
    if (has_tests() && !final_current_ && !stop_.stop_requested()) run_tests("final");
    result_.outcome = outcome;
    result_.reason = std::move(reason);
    result_.seconds = seconds_since(start_);
    if (has_tests() && final_current_) {
      result_.final_tests = final_;
    } else {
      result_.final_tests.status = "not_run";
    }
    try {
      result_.diff = ws_.diff();
    } catch (const std::exception& e) {
      result_.outcome = Outcome::InfrastructureError;
      result_.reason += "; the diff could not be made: " + std::string(e.what());
    }
    traj_.write("end", {{"outcome", to_string(result_.outcome)}, {"reason", result_.reason}, {"turns", result_.turns},
                        {"totals", {{"prompt_tokens", result_.prompt_tokens}, {"cached_tokens", result_.cached_tokens},
                                    {"generated_tokens", result_.generated_tokens}, {"seconds", result_.seconds}}},
                        {"final_tests", result_.final_tests.to_json()}, {"diff", result_.diff}});
    return result_;
  }

  ModelBackend& model_;
  tools::Workspace& ws_;
  const AgentConfig& config_;
  const AgentObserver& obs_;
  std::stop_token stop_;
  Prompts prompts_;
  tools::Registry registry_;
  tools::ToolContext ctx_;
  ojson tool_specs_;
  TrajectoryWriter traj_;
  const Clock::time_point start_ = Clock::now();
  std::vector<ChatMessage> messages_;
  int turn_ = 0;
  AgentResult result_;
  tools::TestReport last_, final_;  // the state changes are judged against; the latest run
  bool final_current_ = false;
  bool passed_at_start_ = false;     // a task beyond the tests: passing tests do not end the run
  std::string report_text_;          // the latest run as the model reads it
  std::map<std::string, int> repeats_;
  std::optional<std::string> stopping_;
};

}  // namespace

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::Fixed: return "fixed";
    case Outcome::NotFixed: return "not_fixed";
    case Outcome::BudgetExhausted: return "budget_exhausted";
    case Outcome::LoopDetected: return "loop_detected";
    case Outcome::InfrastructureError: return "infrastructure_error";
  }
  return "unknown";
}

nlohmann::json AgentResult::to_json() const {
  return {{"outcome", to_string(outcome)}, {"reason", reason}, {"turns", turns}, {"prompt_tokens", prompt_tokens},
          {"cached_tokens", cached_tokens}, {"generated_tokens", generated_tokens}, {"seconds", seconds},
          {"final_tests", final_tests.to_json()}, {"diff", diff}};
}

nlohmann::json TurnStats::to_json() const {
  return {{"prompt_tokens", prompt_tokens}, {"cached_tokens", cached_tokens}, {"generated_tokens", generated_tokens},
          {"ttft_ms", ttft_ms}, {"prefill_ms", prefill_ms}, {"decode_ms", decode_ms}, {"finish", finish}};
}

AgentResult run_agent(ModelBackend& model, tools::Workspace& workspace, const AgentConfig& config,
                      const AgentObserver& observer, std::stop_token stop) {
  return Run(model, workspace, config, observer, stop).run();
}

}  // namespace flashfix::agent
