// The agent loop end to end with the scripted backend on small git repositories: a fix, malformed
// calls repaired, loop detection, every budget, checkpoint and revert, trajectories and their replay.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "agent/agent.h"
#include "agent/prompts.h"
#include "agent/trajectory.h"
#include "scratch.h"

namespace flashfix::agent {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A git repository with one commit holding `files`.
fs::path make_repo(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
  static int n = 0;
  fs::path dir = test::scratch() / (name + "_" + std::to_string(n++));
  for (const auto& [path, text] : files) put(dir / path, text);
  const std::string git = "git -C '" + dir.string() + "' -c user.name=t -c user.email=t@example.com ";
  EXPECT_EQ(std::system(("git init -q '" + dir.string() + "' && " + git + "add -A && " + git + "commit -q -m init").c_str()), 0);
  return dir;
}

fs::path write_script(const std::string& name, const std::vector<ojson>& turns) {
  fs::path p = test::scratch() / (name + ".jsonl");
  std::ofstream out(p);
  for (const ojson& t : turns) out << t.dump() << '\n';
  return p;
}

ojson call(const std::string& name, const ojson& args) { return {{"name", name}, {"arguments", args}}; }
ojson turn(std::vector<ojson> calls, const std::string& content = "") {
  ojson t{{"content", content}, {"tool_calls", calls}};
  return t;
}

// A Python project whose add() subtracts; pytest says so.
fs::path python_repo() {
  return make_repo("py", {{".gitignore", "__pycache__/\n.pytest_cache/\n"},
                          {"calc.py", "def add(a, b):\n    return a - b\n"},
                          {"test_calc.py", "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"}});
}
const char* kPytest = "python3 -m pytest -q";
const char* kFixedCalc = "def add(a, b):\n    return a + b\n";

// A shell project: the "build" is a syntax check that reports like a compiler, then a test.
fs::path shell_repo() {
  return make_repo("sh", {{"lib.sh", "add() { echo $(($1 - $2)); }\n"},
                          {"test.sh",
                           "if ! sh -n lib.sh 2>/dev/null; then echo 'lib.sh:1:1: error: syntax error in lib.sh'; exit 2; fi\n"
                           ". ./lib.sh\nr=$(add 2 3)\n"
                           "if [ \"$r\" = 5 ]; then echo 'ok add'; else echo \"FAIL: add 2 3 gave $r, expected 5\"; exit 1; fi\n"}});
}
const char* kShellTest = "sh test.sh";
const char* kFixedLib = "add() { echo $(($1 + $2)); }\n";

// The scripted backend, recording what the loop sent it each turn.
struct Recording : ModelBackend {
  std::unique_ptr<ModelBackend> inner;
  std::vector<std::vector<ChatMessage>> seen;
  explicit Recording(const fs::path& script) : inner(make_scripted_backend(script)) {}
  std::string describe() const override { return inner->describe(); }
  ModelTurn complete(const std::vector<ChatMessage>& m, const ojson& tools, const StreamSink* s, std::stop_token st) override {
    seen.push_back(m);
    return inner->complete(m, tools, s, st);
  }
};

std::vector<ojson> lines_of_type(const std::vector<ojson>& lines, const std::string& type) {
  std::vector<ojson> out;
  for (const auto& l : lines)
    if (l["type"] == type) out.push_back(l);
  return out;
}

TEST(Agent, FixesAPythonProjectAndLogsTheTrajectory) {
  fs::path repo = python_repo();
  fs::path script = write_script("fix", {turn({call("read_file", {{"path", "calc.py"}})}, "Plan: read calc.py, fix add, run the tests."),
                                         turn({call("write_file", {{"path", "calc.py"}, {"content", kFixedCalc}})})});
  tools::Workspace ws = tools::Workspace::create(repo);
  AgentConfig cfg{.test_command = kPytest, .trajectory = test::scratch() / "fix.traj.jsonl"};
  Recording model(script);
  std::vector<std::string> called;
  AgentObserver obs{.on_tool_call = [&](const ParsedCall& c) { called.push_back(c.call.name); }};
  AgentResult r = run_agent(model, ws, cfg, obs);

  EXPECT_EQ(r.outcome, Outcome::Fixed) << r.reason;
  EXPECT_EQ(r.turns, 2);
  EXPECT_TRUE(r.final_tests.passed);
  EXPECT_NE(r.diff.find("+    return a + b"), std::string::npos) << r.diff;
  EXPECT_EQ(called, (std::vector<std::string>{"read_file", "write_file"}));
  EXPECT_EQ(slurp(repo / "calc.py"), "def add(a, b):\n    return a - b\n") << "the user's tree is only changed on apply";
  EXPECT_EQ(slurp(ws.root() / "calc.py"), kFixedCalc);

  // The first turn saw the system prompt, and a task asking for a plan with the failing test in it.
  ASSERT_EQ(model.seen.size(), 2u);
  ASSERT_EQ(model.seen[0].size(), 2u);
  EXPECT_EQ(model.seen[0][0].role, "system");
  EXPECT_NE(model.seen[0][1].content.find("short plan"), std::string::npos);
  EXPECT_NE(model.seen[0][1].content.find("test_add"), std::string::npos) << model.seen[0][1].content;
  // Append-only: the second turn's conversation starts with the first one's, then the assistant
  // turn and the tool result.
  ASSERT_EQ(model.seen[1].size(), 4u);
  EXPECT_EQ(model.seen[1][1].content, model.seen[0][1].content);
  EXPECT_EQ(model.seen[1][2].role, "assistant");
  ASSERT_EQ(model.seen[1][2].tool_calls.size(), 1u);
  EXPECT_EQ(model.seen[1][3].role, "tool");
  EXPECT_EQ(model.seen[1][3].tool_call_id, model.seen[1][2].tool_calls[0].id);
  EXPECT_NE(model.seen[1][3].content.find("a - b"), std::string::npos);

  auto lines = read_trajectory(cfg.trajectory);
  ASSERT_GE(lines.size(), 6u);
  EXPECT_EQ(lines.front()["type"], "start");
  EXPECT_EQ(lines.front()["test_command"], kPytest);
  EXPECT_EQ(lines_of_type(lines, "model").size(), 2u);
  auto tools_run = lines_of_type(lines, "tool");
  ASSERT_EQ(tools_run.size(), 2u);
  EXPECT_EQ(tools_run[1]["name"], "write_file");
  EXPECT_TRUE(tools_run[1]["ok"].get<bool>());
  EXPECT_EQ(lines_of_type(lines, "checkpoint").size(), 2u);
  EXPECT_EQ(lines.back()["type"], "end");
  EXPECT_EQ(lines.back()["outcome"], "fixed");
  EXPECT_EQ(lines.back()["diff"], r.diff);
}

TEST(Agent, ReplayOfATrajectoryReachesTheSameResult) {
  fs::path repo = shell_repo();
  fs::path script = write_script("replay_src", {turn({call("read_file", {{"path", "lib.sh"}})}),
                                                turn({call("write_file", {{"path", "lib.sh"}, {"content", kFixedLib}})})});
  fs::path traj = test::scratch() / "replay.traj.jsonl";
  AgentResult first, second;
  {
    tools::Workspace ws = tools::Workspace::create(repo);
    auto model = make_scripted_backend(script);
    first = run_agent(*model, ws, {.test_command = kShellTest, .trajectory = traj});
  }
  {
    tools::Workspace ws = tools::Workspace::create(repo);
    auto model = make_scripted_backend(traj);
    EXPECT_EQ(model->describe(), "scripted:" + traj.string());
    second = run_agent(*model, ws, {.test_command = kShellTest});
  }
  EXPECT_EQ(first.outcome, Outcome::Fixed) << first.reason;
  EXPECT_EQ(second.outcome, first.outcome) << second.reason;
  EXPECT_EQ(second.turns, first.turns);
  EXPECT_EQ(second.diff, first.diff);
}

TEST(Agent, MalformedCallsBecomeErrorsTheModelRepairs) {
  fs::path repo = shell_repo();
  // Turn 1: broken JSON in a Qwen3 call, an unknown tool, and a wrong argument type; turn 2 repairs.
  fs::path script = write_script(
      "malformed", {{{"raw", "I will look.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"lib.sh\"</tool_call>"}},
                    turn({call("open_file", {{"path", "lib.sh"}}), call("read_file", {{"path", 42}})}),
                    turn({call("write_file", {{"path", "lib.sh"}, {"content", kFixedLib}})})});
  tools::Workspace ws = tools::Workspace::create(repo);
  Recording model(script);
  std::vector<tools::ToolResult> results;
  AgentObserver obs{.on_tool_result = [&](const ParsedCall&, const tools::ToolResult& r) { results.push_back(r); }};
  AgentResult r = run_agent(model, ws, {.test_command = kShellTest}, obs);
  EXPECT_EQ(r.outcome, Outcome::Fixed) << r.reason;
  ASSERT_EQ(results.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(results[i].ok) << i << ": " << results[i].text;
  EXPECT_TRUE(results[3].ok);
  EXPECT_NE(results[0].text.find("could not be used"), std::string::npos) << results[0].text;
  EXPECT_NE(results[1].text.find("open_file"), std::string::npos) << results[1].text;
  // The model saw each error as the result of its call.
  const auto& second_turn = model.seen.at(1);
  EXPECT_EQ(second_turn.back().role, "tool");
  EXPECT_EQ(second_turn.back().content, results[0].text);
}

TEST(Agent, RepeatingTheSameCallGetsANudgeThenStops) {
  fs::path repo = shell_repo();
  ojson same = turn({call("read_file", {{"path", "lib.sh"}})});
  fs::path script = write_script("loop", {same, same, same, same});
  tools::Workspace ws = tools::Workspace::create(repo);
  std::vector<std::string> texts;
  AgentObserver obs{.on_tool_result = [&](const ParsedCall&, const tools::ToolResult& r) { texts.push_back(r.text); }};
  auto model = make_scripted_backend(script);
  AgentResult r = run_agent(*model, ws, {.test_command = kShellTest}, obs);
  EXPECT_EQ(r.outcome, Outcome::LoopDetected);
  EXPECT_EQ(r.turns, 3);
  EXPECT_NE(r.reason.find("read_file"), std::string::npos) << r.reason;
  ASSERT_EQ(texts.size(), 3u);
  EXPECT_EQ(texts[0].find("Repeating it"), std::string::npos);
  EXPECT_NE(texts[1].find("Repeating it will not change"), std::string::npos) << texts[1];
  EXPECT_FALSE(r.final_tests.passed);
  EXPECT_EQ(r.final_tests.status, "failed");
}

TEST(Agent, StopsAtTheTurnBudget) {
  fs::path repo = shell_repo();
  fs::path script = write_script("turns", {turn({call("read_file", {{"path", "lib.sh"}})}), turn({call("read_file", {{"path", "test.sh"}})}),
                                           turn({call("list_dir", ojson::object())})});
  tools::Workspace ws = tools::Workspace::create(repo);
  auto model = make_scripted_backend(script);
  AgentResult r = run_agent(*model, ws, {.test_command = kShellTest, .budget = {.max_turns = 2}});
  EXPECT_EQ(r.outcome, Outcome::BudgetExhausted);
  EXPECT_EQ(r.turns, 2);
  EXPECT_NE(r.reason.find("2 turns"), std::string::npos) << r.reason;
}

TEST(Agent, StopsAtTheTokenBudget) {
  fs::path repo = shell_repo();
  // Scripted turns carry the token counts they had when recorded (a trajectory's stats).
  ojson t1 = turn({call("read_file", {{"path", "lib.sh"}})});
  t1["stats"] = {{"prompt_tokens", 500}, {"cached_tokens", 0}, {"generated_tokens", 100}};
  ojson t2 = turn({call("read_file", {{"path", "test.sh"}})});
  t2["stats"] = {{"prompt_tokens", 700}, {"cached_tokens", 600}, {"generated_tokens", 250}};
  fs::path script = write_script("tokens", {t1, t2, turn({call("list_dir", ojson::object())})});
  tools::Workspace ws = tools::Workspace::create(repo);
  auto model = make_scripted_backend(script);
  AgentResult r = run_agent(*model, ws, {.test_command = kShellTest, .budget = {.max_tokens = 900}});
  EXPECT_EQ(r.outcome, Outcome::BudgetExhausted) << r.reason;
  EXPECT_EQ(r.turns, 2);
  EXPECT_EQ(r.prompt_tokens, 1200);
  EXPECT_EQ(r.cached_tokens, 600);
  EXPECT_EQ(r.generated_tokens, 350);
  EXPECT_NE(r.reason.find("token budget (950 of 900)"), std::string::npos) << r.reason;
}

TEST(Agent, StopsAtTheTimeBudget) {
  fs::path repo = shell_repo();
  fs::path script = write_script("time", {turn({call("run", {{"command", "sleep 2"}})}), turn({call("list_dir", ojson::object())})});
  tools::Workspace ws = tools::Workspace::create(repo);
  auto model = make_scripted_backend(script);
  AgentResult r = run_agent(*model, ws, {.test_command = kShellTest, .budget = {.max_seconds = 1.5}});
  EXPECT_EQ(r.outcome, Outcome::BudgetExhausted);
  EXPECT_EQ(r.turns, 1);
  EXPECT_NE(r.reason.find("out of time"), std::string::npos) << r.reason;
}

TEST(Agent, ATurnThatBreaksTheBuildIsReverted) {
  fs::path repo = shell_repo();
  const std::string original = slurp(repo / "lib.sh");
  fs::path script = write_script("revert", {turn({call("write_file", {{"path", "lib.sh"}, {"content", "add() { echo $(( $1 + ; }\n"}})}),
                                            turn({call("read_file", {{"path", "lib.sh"}})}),
                                            turn({call("write_file", {{"path", "lib.sh"}, {"content", kFixedLib}})})});
  fs::path traj = test::scratch() / "revert.traj.jsonl";
  tools::Workspace ws = tools::Workspace::create(repo);
  Recording model(script);
  std::vector<tools::TestReport> runs;
  AgentObserver obs{.on_tests = [&](const tools::TestReport& t) { runs.push_back(t); }};
  AgentResult r = run_agent(model, ws, {.test_command = kShellTest, .trajectory = traj}, obs);
  EXPECT_EQ(r.outcome, Outcome::Fixed) << r.reason;
  ASSERT_GE(runs.size(), 2u);
  EXPECT_EQ(runs[0].status, "failed");  // initial: a failing test
  EXPECT_EQ(runs[1].format, "compiler") << runs[1].output_tail;  // after turn 1: the build breaks
  // Turn 2 read the file back as it was before turn 1, and was told why.
  const auto& seen = model.seen.at(1);
  EXPECT_EQ(seen.back().role, "user");
  EXPECT_NE(seen.back().content.find("reverted"), std::string::npos) << seen.back().content;
  auto lines = read_trajectory(traj);
  auto reads = lines_of_type(lines, "tool");
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_NE(reads[1]["result"].get<std::string>().find("$1 - $2"), std::string::npos) << reads[1]["result"];
  EXPECT_EQ(lines_of_type(lines, "revert").size(), 1u);
  EXPECT_EQ(r.diff.find("$1 + ;"), std::string::npos) << r.diff;
  EXPECT_EQ(slurp(repo / "lib.sh"), original);
}

TEST(Agent, ATurnWithoutCallsGetsTheFailuresBack) {
  fs::path repo = shell_repo();
  fs::path script = write_script("nocalls", {{{"content", "I think it is fixed."}},
                                             turn({call("write_file", {{"path", "lib.sh"}, {"content", kFixedLib}})})});
  tools::Workspace ws = tools::Workspace::create(repo);
  Recording model(script);
  AgentResult r = run_agent(model, ws, {.test_command = kShellTest});
  EXPECT_EQ(r.outcome, Outcome::Fixed) << r.reason;
  const auto& seen = model.seen.at(1);
  EXPECT_EQ(seen.back().role, "user");
  EXPECT_NE(seen.back().content.find("without a tool call"), std::string::npos) << seen.back().content;
  EXPECT_NE(seen.back().content.find("gave -1, expected 5"), std::string::npos) << seen.back().content;
}

TEST(Agent, AlreadyPassingTestsNeedNoTurn) {
  fs::path repo = make_repo("pass", {{"test.sh", "exit 0\n"}});
  fs::path script = write_script("unused", {turn({call("list_dir", ojson::object())})});
  tools::Workspace ws = tools::Workspace::create(repo);
  auto model = make_scripted_backend(script);
  AgentResult r = run_agent(*model, ws, {.test_command = kShellTest});
  EXPECT_EQ(r.outcome, Outcome::Fixed);
  EXPECT_EQ(r.turns, 0);
  EXPECT_TRUE(r.diff.empty());
}

TEST(Agent, BackendFailureIsAnInfrastructureError) {
  fs::path repo = shell_repo();
  fs::path script = write_script("short", {turn({call("read_file", {{"path", "lib.sh"}})})});
  tools::Workspace ws = tools::Workspace::create(repo);
  auto model = make_scripted_backend(script);
  AgentResult r = run_agent(*model, ws, {.test_command = kShellTest});
  EXPECT_EQ(r.outcome, Outcome::InfrastructureError);
  EXPECT_NE(r.reason.find("has no turn 2"), std::string::npos) << r.reason;
  EXPECT_EQ(r.final_tests.status, "failed");
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["outcome"], "infrastructure_error");
  EXPECT_EQ(j["turns"], 1);
}

TEST(Agent, CancellationEndsTheRunAfterTheCurrentStep) {
  fs::path repo = shell_repo();
  fs::path script = write_script("cancel", {turn({call("read_file", {{"path", "lib.sh"}})}), turn({call("list_dir", ojson::object())})});
  tools::Workspace ws = tools::Workspace::create(repo);
  auto model = make_scripted_backend(script);
  std::stop_source stop;
  AgentObserver obs{.on_tool_call = [&](const ParsedCall&) { stop.request_stop(); }};
  AgentResult r = run_agent(*model, ws, {.test_command = kShellTest}, obs, stop.get_token());
  EXPECT_EQ(r.outcome, Outcome::InfrastructureError);
  EXPECT_EQ(r.reason, "cancelled");
  EXPECT_EQ(r.turns, 1);
  EXPECT_EQ(r.final_tests.status, "not_run");
}

TEST(Agent, WithoutATestCommandTheModelsFinishEndsTheRun) {
  fs::path repo = shell_repo();
  fs::path script = write_script("notest", {turn({call("write_file", {{"path", "lib.sh"}, {"content", kFixedLib}})}),
                                            {{"content", "Changed add to add."}}});
  tools::Workspace ws = tools::Workspace::create(repo);
  auto model = make_scripted_backend(script);
  AgentResult r = run_agent(*model, ws, {.task = "make add add"});
  EXPECT_EQ(r.outcome, Outcome::NotFixed);
  EXPECT_NE(r.reason.find("no test command"), std::string::npos);
  EXPECT_EQ(r.final_tests.status, "not_run");
  EXPECT_NE(r.diff.find("$1 + $2"), std::string::npos);
}

TEST(ScriptedBackend, RejectsBrokenScriptsNamingTheLine) {
  fs::path bad = test::scratch() / "bad.jsonl";
  put(bad, "{\"content\": \"ok\"}\nnot json\n");
  try {
    make_scripted_backend(bad);
    FAIL() << "accepted a broken script";
  } catch (const BackendError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_scripted_backend(test::scratch() / "missing.jsonl"), BackendError);
  fs::path empty = test::scratch() / "empty.jsonl";
  put(empty, "\n");
  EXPECT_THROW(make_scripted_backend(empty), BackendError);
  fs::path wrong = test::scratch() / "wrong.jsonl";
  put(wrong, "{\"text\": \"no turn here\"}\n");
  EXPECT_THROW(make_scripted_backend(wrong), BackendError);
}

TEST(ScriptedBackend, OpenAIStyleArgumentStringsAndErrors) {
  fs::path script = write_script("oa", {{{"tool_calls", {{{"id", "x1"}, {"type", "function"},
                                                          {"function", {{"name", "read_file"}, {"arguments", "{\"path\": \"a\"}"}}}},
                                                         {{"function", {{"name", "read_file"}, {"arguments", "{\"path\": "}}}}}}}});
  auto model = make_scripted_backend(script);
  std::vector<StreamEvent> events;
  StreamSink sink{[&](const StreamEvent& e) { events.push_back(e); }};
  ModelTurn t = model->complete({}, ojson::array(), &sink, {});
  ASSERT_EQ(t.message.calls.size(), 2u);
  EXPECT_EQ(t.message.calls[0].call.id, "x1");
  EXPECT_EQ(t.message.calls[0].call.arguments, (ojson{{"path", "a"}}));
  EXPECT_TRUE(t.message.calls[0].error.empty());
  EXPECT_FALSE(t.message.calls[1].error.empty());
  EXPECT_EQ(t.stats.finish, "tool_calls");
  EXPECT_EQ(events.size(), 6u);  // begin, arguments, end for each call
}

TEST(Prompts, FillReplacesEveryPlaceholderAndRejectsUnknownOnes) {
  EXPECT_EQ(fill("a {{x}} b {{y}}{{x}}", {{"x", "1"}, {"y", "{{x}}"}}), "a 1 b {{x}}1");
  EXPECT_THROW(fill("{{nope}}", {{"x", "1"}}), std::runtime_error);
  EXPECT_THROW(Prompts::load(test::scratch() / "no-prompts"), std::runtime_error);
  Prompts p = Prompts::load(default_prompts_dir());
  EXPECT_NE(p.system.find("{{test_command}}"), std::string::npos);
}

}  // namespace
}  // namespace flashfix::agent
