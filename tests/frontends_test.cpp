// The agent front ends end to end through the real binary, with the scripted backend, on the
// examples/ projects (each copied to a scratch folder and made a git repository): their tests fail
// before, `ci` fixes them (exit 0, patch, JSON report, well-formed JUnit), the patch applies and
// turns them green; exit 1, 2 and 3; `fix --yes` applies while keeping the user's own changes;
// `batch` runs, resumes and shards; `replay` re-runs a trajectory.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "scratch.h"
#include "subprocess.h"

using namespace flashfix::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kExamples = fs::path(FLASHFIX_SOURCE_DIR) / "examples";

// The examples run with the system toolchain that scripts/setup.sh installs (python3-pytest,
// nodejs, golang-go, cmake), ahead of per-user shims such as pyenv's python3 without pytest.
// FLASHFIX_HOME keeps the user's own config (a default model) out of the tests.
std::map<std::string, std::string> toolchain_env() {
  const char* path = std::getenv("PATH");
  return {{"PATH", std::string("/usr/local/bin:/usr/bin:/bin:") + (path ? path : "")}, {"FLASHFIX_HOME", (scratch() / "home").string()}};
}

ProcessResult flashfix(const std::vector<std::string>& args, const fs::path& cwd = {}) {
  return run_flashfix(args, toolchain_env(), cwd);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

ProcessResult git(const fs::path& repo, std::vector<std::string> args) {
  std::vector<std::string> argv{"git", "-C", repo.string(), "-c", "user.name=flashfix test", "-c", "user.email=test@flashfix"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

struct Example {
  std::string name, test;
  fs::path script;
};

Example example(const std::string& name) {
  json note = json::parse(slurp(kExamples / name / "flashfix.json"));
  return {name, note["test"].get<std::string>(), kExamples / name / note["script"].get<std::string>()};
}

// A fresh git repository holding a copy of the example, committed.
fs::path make_repo(const std::string& name, const std::string& as) {
  fs::path dir = scratch() / as;
  fs::remove_all(dir);
  fs::copy(kExamples / name, dir, fs::copy_options::recursive);
  EXPECT_EQ(git(dir, {"init", "-q"}).status, 0);
  EXPECT_EQ(git(dir, {"add", "-A"}).status, 0);
  EXPECT_EQ(git(dir, {"commit", "-q", "-m", "example"}).status, 0);
  return dir;
}

// The test command run directly in the repository, outside flashfix: the ground truth.
int run_tests_in(const fs::path& repo, const std::string& test) {
  return run_process({"sh", "-c", test}, toolchain_env(), repo).status;
}

std::string status_porcelain(const fs::path& repo) { return git(repo, {"status", "--porcelain"}).out; }

// JUnit parsed back by Python's XML parser: the counts, or {"error": ...} when not well-formed.
json parse_junit(const fs::path& file) {
  const char* script =
      "import json, sys, xml.etree.ElementTree as ET\n"
      "try:\n"
      "    root = ET.parse(sys.argv[1]).getroot()\n"
      "except ET.ParseError as e:\n"
      "    print(json.dumps({'error': str(e)})); sys.exit(0)\n"
      "cases = list(root.iter('testcase'))\n"
      "print(json.dumps({'root': root.tag, 'tests': int(root.get('tests')), 'failures': int(root.get('failures')),\n"
      "  'cases': len(cases), 'failed_cases': sum(1 for c in cases if c.find('failure') is not None),\n"
      "  'text': ''.join(root.itertext())}))\n";
  auto r = run_process({"python3", "-c", script, file.string()});
  return r.status == 0 ? json::parse(r.out) : json{{"error", r.err}};
}

int closed_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), len);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class CiOnExample : public ::testing::TestWithParam<std::string> {};

TEST_P(CiOnExample, FixesItAndWritesPatchReportAndJunit) {
  Example ex = example(GetParam());
  fs::path repo = make_repo(ex.name, ex.name + "-ci");
  ASSERT_NE(run_tests_in(repo, ex.test), 0) << ex.name << ": the example's tests should fail before the fix";
  ASSERT_EQ(status_porcelain(repo), "") << "the test run must leave only ignored files";

  fs::path out = scratch() / (ex.name + "-ci-out");
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", ex.test, "--script", ex.script.string(), "--patch-out",
                     (out / "fix.patch").string(), "--report", (out / "report.json").string(), "--junit",
                     (out / "junit.xml").string(), "--trajectory", (out / "trajectory.jsonl").string()});
  ASSERT_EQ(r.status, 0) << r.err;

  // The user's tree is untouched (still red); the patch applies to it and turns it green.
  EXPECT_EQ(status_porcelain(repo), "");
  std::string patch = slurp(out / "fix.patch");
  ASSERT_NE(patch.find("diff --git"), std::string::npos) << patch;
  EXPECT_EQ(r.out, patch);
  ASSERT_EQ(git(repo, {"apply", "--check", (out / "fix.patch").string()}).status, 0);
  ASSERT_EQ(git(repo, {"apply", (out / "fix.patch").string()}).status, 0);
  EXPECT_EQ(run_tests_in(repo, ex.test), 0) << ex.name << ": the patched tests should pass";

  json report = json::parse(slurp(out / "report.json"));
  EXPECT_EQ(report["outcome"], "fixed");
  EXPECT_EQ(report["exit_status"], 0);
  EXPECT_EQ(report["tests"]["passed"], true);
  EXPECT_EQ(report["tests_before"]["passed"], false);
  EXPECT_EQ(report["test_command"], ex.test);
  EXPECT_EQ(report["diff"], patch);
  EXPECT_GE(report["turns"].get<int>(), 2);

  json junit = parse_junit(out / "junit.xml");
  ASSERT_FALSE(junit.contains("error")) << junit;
  EXPECT_EQ(junit["root"], "testsuites");
  EXPECT_EQ(junit["failures"], 0);
  EXPECT_EQ(junit["failed_cases"], 0);
  EXPECT_EQ(junit["tests"], junit["cases"]);

  // The trajectory replays to the same change on a fresh copy.
  fs::path again = make_repo(ex.name, ex.name + "-replay");
  auto replay = flashfix({"replay", (out / "trajectory.jsonl").string(), "--repo", again.string()});
  EXPECT_EQ(replay.status, 0) << replay.err;
  EXPECT_EQ(replay.out, patch);
}

INSTANTIATE_TEST_SUITE_P(Examples, CiOnExample, ::testing::Values("python-pytest", "js-node-test", "cpp-ctest", "go-test"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Ci, ExitsOneWhenTheScriptDoesNotFixIt) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-wrong");
  fs::path out = scratch() / "py-wrong-out";
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", ex.test, "--script", (kExamples / ex.name / "wrong.script.jsonl").string(),
                     "--max-turns", "2", "--patch-out", (out / "p.patch").string(), "--report", (out / "r.json").string(),
                     "--junit", (out / "j.xml").string()});
  EXPECT_EQ(r.status, 1) << r.err;
  json report = json::parse(slurp(out / "r.json"));
  EXPECT_NE(report["outcome"], "fixed");
  EXPECT_EQ(report["exit_status"], 1);
  EXPECT_EQ(report["tests"]["passed"], false);
  EXPECT_FALSE(report["tests"]["failures"].empty());
  EXPECT_NE(slurp(out / "p.patch").find("sum(quantity for"), std::string::npos);  // the failed attempt, for inspection

  json junit = parse_junit(out / "j.xml");
  ASSERT_FALSE(junit.contains("error")) << junit;
  EXPECT_GE(junit["failures"].get<int>(), 2);  // the fix itself and the failing test
  EXPECT_EQ(junit["failures"], junit["failed_cases"]);
  EXPECT_NE(junit["text"].get<std::string>().find("test_total_value_counts_every_unit"), std::string::npos);
  // pytest's output has markup characters ("<bound method ...>"): escaped, they parse back intact.
  EXPECT_NE(junit["text"].get<std::string>().find("<bound method"), std::string::npos);
  EXPECT_EQ(status_porcelain(repo), "");
}

TEST(Ci, JunitStaysWellFormedWithControlCharactersAndMarkupInTheOutput) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-ansi");
  fs::path junit = scratch() / "py-ansi.xml", report = scratch() / "py-ansi.json";
  // Colour codes, markup and a bare ampersand, as test runners print them, and invalid UTF-8.
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", R"(printf '\033[31mFAIL\033[0m\001\007 a < b && c > "d" \377\n'; exit 1)",
                     "--script", (kExamples / ex.name / "wrong.script.jsonl").string(), "--max-turns", "1", "--junit", junit.string(), "--report", report.string()});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(json::parse(slurp(report))["exit_status"], 1);  // invalid UTF-8 in the output does not break the JSON either
  json parsed = parse_junit(junit);
  ASSERT_FALSE(parsed.contains("error")) << parsed << slurp(junit);
  // Whatever the tools keep of the control bytes, XML 1.0 forbids them: the parse above proves they
  // were dropped or replaced; the markup survives as text.
  EXPECT_NE(parsed["text"].get<std::string>().find(" a < b && c > \"d\" "), std::string::npos) << parsed["text"];
  EXPECT_NE(parsed["text"].get<std::string>().find("FAIL"), std::string::npos) << parsed["text"];
}

// The wall-clock budget ending the run is a timeout: exit 3, as CI should treat it.
TEST(Ci, TimeoutExitsThree) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-timeout");
  fs::path script = scratch() / "slow.script.jsonl";
  std::ofstream(script) << json{{"raw", "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"sleep 3\"}}\n</tool_call>"}}.dump() << "\n"
                        << json{{"raw", "<tool_call>\n{\"name\": \"list_dir\", \"arguments\": {}}\n</tool_call>"}}.dump() << "\n";
  fs::path report = scratch() / "py-timeout.json";
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", ex.test, "--script", script.string(), "--timeout", "2", "--report",
                     report.string()});
  EXPECT_EQ(r.status, 3) << r.err;
  json j = json::parse(slurp(report));
  EXPECT_EQ(j["outcome"], "budget_exhausted");
  EXPECT_EQ(j["exit_status"], 3);
  EXPECT_EQ(j["turns"], 1);
}

TEST(Ci, NothingToFixWhenTheTestsAlreadyPass) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-green");
  fs::path report = scratch() / "py-green.json";
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", "python3 -m pytest -q -k 'not total_value'", "--script",
                     ex.script.string(), "--report", report.string()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("nothing to fix"), std::string::npos) << r.err;
  json j = json::parse(slurp(report));
  EXPECT_EQ(j["turns"], 0);
  EXPECT_EQ(j["diff"], "");
}

TEST(Ci, CommitsTheFixOnABranchWithoutTouchingTheUserTree) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-branch");
  std::string head = git(repo, {"rev-parse", "HEAD"}).out;
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", ex.test, "--script", ex.script.string(), "--commit-branch", "flashfix/fix-stock"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(git(repo, {"rev-parse", "HEAD"}).out, head);
  EXPECT_EQ(status_porcelain(repo), "");
  EXPECT_EQ(git(repo, {"rev-parse", "flashfix/fix-stock~1"}).out, head);
  auto shown = git(repo, {"show", "flashfix/fix-stock:inventory/stock.py"});
  EXPECT_NE(shown.out.find("sum(quantity * price"), std::string::npos);
}

TEST(Ci, UsageAndConfigurationErrorsExitTwo) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-usage");
  std::string s = ex.script.string(), d = repo.string();
  fs::path plain = scratch() / "not-a-repo";
  fs::create_directories(plain);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"ci", "--repo", d, "--script", s},                                       // no --test
           {"ci", "--repo", d, "--test", ex.test, "--script", s, "--model", "m.gguf"},  // two backends
           {"ci", "--repo", d, "--test", ex.test, "--api", "http://127.0.0.1:1/v1"},    // --api without --api-model
           {"ci", "--repo", d, "--test", ex.test, "--script", s, "--max-turns", "0"},
           {"ci", "--repo", d, "--test", ex.test, "--script", s, "--bogus"},
           {"ci", "--repo", d, "--test", ex.test, "--script", (scratch() / "missing.jsonl").string()},
           {"ci", "--repo", d, "--test", ex.test, "--model", (scratch() / "missing.gguf").string()},
           {"ci", "--repo", plain.string(), "--test", ex.test, "--script", s},
           {"ci", "--repo", (scratch() / "nowhere").string(), "--test", ex.test, "--script", s},
           {"fix", "--repo", d, "--script", s},  // no task
           // The engine flags, as generate takes them, with the agent's own --ctx-size range.
           {"ci", "--repo", d, "--test", ex.test, "--script", s, "--ctx-size", "255"},
           {"ci", "--repo", d, "--test", ex.test, "--script", s, "--kv-budget-mb", "0x"},
           {"ci", "--repo", d, "--test", ex.test, "--script", s, "--no-prefix-cache", "--cache-dir", d},
       }) {
    auto r = flashfix(args);
    EXPECT_EQ(r.status, 2) << args[1] << " " << args.back() << "\n" << r.err;
  }
}

TEST(Ci, ExitsThreeWhenTheApiIsUnreachable) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-api");
  fs::path report = scratch() / "py-api.json";
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", ex.test, "--api",
                     "http://127.0.0.1:" + std::to_string(closed_loopback_port()) + "/v1", "--api-model", "coder", "--report",
                     report.string()});
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(json::parse(slurp(report))["outcome"], "infrastructure_error");
  EXPECT_EQ(status_porcelain(repo), "");
}

// The embedded engine behind the same front end: a random tiny model cannot fix anything, but a
// turn must run through the engine (real token counts) and end cleanly as not fixed.
TEST(Ci, RunsTheEmbeddedEngineOnATinyModel) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-engine");
  fs::path report = scratch() / "py-engine.json";
  auto r = flashfix({"ci", "--repo", repo.string(), "--test", ex.test, "--model",
                     std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-qwen3moe-s11.gguf", "--max-turns", "1", "--turn-tokens", "16",
                     "--threads", "2", "--max-sequences", "1", "--report", report.string()});
  EXPECT_EQ(r.status, 1) << r.err;
  json j = json::parse(slurp(report));
  EXPECT_EQ(j["outcome"], "budget_exhausted");
  EXPECT_EQ(j["turns"], 1);
  EXPECT_GT(j["prompt_tokens"].get<int64_t>(), 100);
  EXPECT_GT(j["generated_tokens"].get<int64_t>(), 0);
  EXPECT_LE(j["generated_tokens"].get<int64_t>(), 16);
  EXPECT_NE(j["backend"].get<std::string>().find("engine:"), std::string::npos);
  EXPECT_EQ(status_porcelain(repo), "");
}

// An OpenAI-compatible endpoint on loopback that streams the JavaScript example's fix as two
// turns of tool calls (arguments arriving in pieces, as real endpoints send them).
class FakeOpenAI {
 public:
  FakeOpenAI() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      size_t turn;
      {
        std::lock_guard lock(mutex_);
        turn = requests_.size();
        requests_.push_back(json::parse(req.body, nullptr, false));
        authorization_.push_back(req.get_header_value("Authorization"));
      }
      std::string body = turn == 0 ? reply({{"read_file", R"({"path": "src/slugify.js"})"}}, "Reading the slug code.")
                                   : reply({{"edit", json{{"path", "src/slugify.js"}, {"old_text", ".replace(/[^a-z0-9]/g, '-')"},
                                                          {"new_text", ".replace(/[^a-z0-9]+/g, '-')"}}.dump()},
                                            {"run_tests", "{}"}},
                                           "Collapse separator runs.");
      res.set_chunked_content_provider("text/event-stream", [body](size_t, httplib::DataSink& sink) {
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeOpenAI() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::vector<json> requests_;
  std::vector<std::string> authorization_;

 private:
  static std::string chunk(const json& delta, const json& finish = nullptr) {
    json c{{"id", "chatcmpl-1"}, {"object", "chat.completion.chunk"}, {"created", 1732350000}, {"model", "coder"},
           {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}};
    return "data: " + c.dump() + "\n\n";
  }
  static std::string reply(const std::vector<std::pair<std::string, std::string>>& calls, const std::string& content) {
    std::string s = chunk({{"role", "assistant"}, {"content", content}});
    for (size_t i = 0; i < calls.size(); ++i) {
      s += chunk({{"tool_calls", {{{"index", i}, {"id", "call_" + std::to_string(i)}, {"type", "function"},
                                    {"function", {{"name", calls[i].first}, {"arguments", ""}}}}}}});
      const std::string& args = calls[i].second;
      for (size_t at = 0; at < args.size(); at += 5)
        s += chunk({{"tool_calls", {{{"index", i}, {"function", {{"arguments", args.substr(at, 5)}}}}}}});
    }
    s += chunk(json::object(), "tool_calls");
    s += "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":900,\"completion_tokens\":40}}\n\ndata: [DONE]\n\n";
    return s;
  }
  std::mutex mutex_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(Ci, FixesThroughAnOpenAICompatibleEndpoint) {
  Example ex = example("js-node-test");
  fs::path repo = make_repo(ex.name, "js-api");
  FakeOpenAI api;
  fs::path report = scratch() / "js-api.json";
  auto env = toolchain_env();
  env["FLASHFIX_TEST_KEY"] = "sk-test-123";
  auto r = run_flashfix({"ci", "--repo", repo.string(), "--test", ex.test, "--api", api.url(), "--api-model", "coder",
                         "--api-key-env", "FLASHFIX_TEST_KEY", "--report", report.string()},
                        env);
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(api.requests_.size(), 2u);
  EXPECT_EQ(api.requests_[0]["model"], "coder");
  EXPECT_FALSE(api.requests_[0]["tools"].empty());
  EXPECT_EQ(api.authorization_[0], "Bearer sk-test-123");
  json j = json::parse(slurp(report));
  EXPECT_EQ(j["outcome"], "fixed");
  EXPECT_EQ(j["prompt_tokens"], 1800);
  EXPECT_NE(j["diff"].get<std::string>().find("[^a-z0-9]+"), std::string::npos);
}

TEST(Fix, YesAppliesTheFixAndKeepsTheUsersOwnChanges) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-fix");
  // The user's uncommitted work: an edited tracked file and a new untracked one.
  std::ofstream(repo / "inventory" / "__init__.py") << "# the user's note\n";
  std::ofstream(repo / "NOTES.txt") << "todo: pricing\n";

  auto r = flashfix({"fix", "--repo", repo.string(), "--test", ex.test, "--script", ex.script.string(), "--yes",
                     "make total_value count every unit"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("→ read_file"), std::string::npos) << r.out;  // streamed calls
  EXPECT_NE(r.out.find("● edit"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("turn 2/30"), std::string::npos) << r.out;  // progress line
  EXPECT_NE(r.out.find("+        return sum(quantity * price"), std::string::npos) << r.out;  // the diff
  EXPECT_NE(r.err.find("applied to"), std::string::npos) << r.err;

  EXPECT_EQ(run_tests_in(repo, ex.test), 0);
  EXPECT_EQ(slurp(repo / "inventory" / "__init__.py"), "# the user's note\n");
  EXPECT_EQ(slurp(repo / "NOTES.txt"), "todo: pricing\n");
  std::string st = status_porcelain(repo);
  EXPECT_NE(st.find(" M inventory/stock.py"), std::string::npos) << st;
  EXPECT_NE(st.find(" M inventory/__init__.py"), std::string::npos) << st;
  EXPECT_NE(st.find("?? NOTES.txt"), std::string::npos) << st;
}

TEST(Fix, WithoutATerminalOrYesNothingIsApplied) {
  Example ex = example("python-pytest");
  fs::path repo = make_repo(ex.name, "py-noconfirm");
  fs::path patch = scratch() / "py-noconfirm.patch";
  auto r = flashfix({"fix", "--repo", repo.string(), "--test", ex.test, "--script", ex.script.string(), "--patch-out",
                     patch.string(), "fix the stock value"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("not applied: no terminal"), std::string::npos) << r.err;
  EXPECT_EQ(status_porcelain(repo), "");
  EXPECT_NE(slurp(patch).find("sum(quantity * price"), std::string::npos);
}

// On a terminal (a pseudo-terminal from util-linux `script`) fix asks; the answer decides.
TEST(Fix, AsksBeforeApplyingOnATerminal) {
  Example ex = example("python-pytest");
  for (const std::string answer : {"n", "y"}) {
    fs::path repo = make_repo(ex.name, "py-tty-" + answer);
    std::string fix = std::string(FLASHFIX_BIN) + " fix --repo " + repo.string() + " --test '" + ex.test + "' --script " +
                      ex.script.string() + " 'fix the stock value'";
    auto r = run_process({"sh", "-c", "echo " + answer + " | script -qec \"" + fix + "\" /dev/null"}, toolchain_env());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Apply this change to " + repo.string() + "? [y/N]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\033[32m+"), std::string::npos) << "a coloured diff on the terminal";
    if (answer == "y") {
      EXPECT_NE(r.out.find("applied to"), std::string::npos) << r.out;
      EXPECT_EQ(run_tests_in(repo, ex.test), 0);
    } else {
      EXPECT_NE(r.out.find("not applied."), std::string::npos) << r.out;
      EXPECT_EQ(status_porcelain(repo), "");
    }
  }
}

std::vector<json> read_lines(const fs::path& file) {
  std::vector<json> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line, nullptr, false));
  return out;
}

TEST(Batch, RunsConcurrentlyResumesAndShards) {
  const std::vector<std::string> names = {"python-pytest", "js-node-test", "cpp-ctest", "go-test"};
  fs::path tasks = scratch() / "batch" / "tasks.jsonl";
  fs::create_directories(tasks.parent_path());
  {
    std::ofstream f(tasks);
    for (const auto& n : names) {
      Example ex = example(n);
      fs::path repo = make_repo(n, "batch/" + n);
      // Paths relative to the task file, as a checked-in task list would have them.
      f << json{{"id", n}, {"repo", n}, {"test", ex.test}, {"script", ex.script.string()}}.dump() << "\n\n";
    }
  }
  fs::path results = scratch() / "batch" / "results.jsonl";
  auto r = flashfix({"batch", tasks.string(), "--jobs", "2", "--out", results.string(), "--trajectory-dir",
                     (scratch() / "batch" / "traj").string()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto lines = read_lines(results);
  ASSERT_EQ(lines.size(), 4u);
  std::set<std::string> ids;
  for (const auto& l : lines) {
    ASSERT_FALSE(l.is_discarded());
    ids.insert(l["id"].get<std::string>());
    EXPECT_EQ(l["outcome"], "fixed") << l.dump();
    EXPECT_EQ(l["tests"]["passed"], true);
    EXPECT_NE(l["diff"].get<std::string>().find("diff --git"), std::string::npos);
    EXPECT_TRUE(fs::exists(scratch() / "batch" / "traj" / (l["id"].get<std::string>() + ".jsonl")));
  }
  EXPECT_EQ(ids, std::set<std::string>(names.begin(), names.end()));
  for (const auto& n : names) EXPECT_EQ(status_porcelain(scratch() / "batch" / n), "") << n;

  // Everything done: a second run has nothing to do.
  auto again = flashfix({"batch", tasks.string(), "--jobs", "2", "--out", results.string()});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("4 already done, 0 to run"), std::string::npos) << again.err;
  EXPECT_EQ(read_lines(results).size(), 4u);

  // Interrupted mid-way: two results kept (python, js) and a line torn by the crash. The resumed
  // run does only the two others and starts on a fresh line.
  {
    std::string kept;
    for (const auto& l : lines)
      if (l["id"] == "python-pytest" || l["id"] == "js-node-test") kept += l.dump() + "\n";
    std::ofstream(results, std::ios::trunc) << kept << "{\"id\": \"cpp-ct";
  }
  auto resumed = flashfix({"batch", tasks.string(), "--jobs", "2", "--out", results.string()});
  EXPECT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("2 already done, 2 to run"), std::string::npos) << resumed.err;
  auto after = read_lines(results);
  ASSERT_EQ(after.size(), 5u);
  EXPECT_TRUE(after[2].is_discarded());
  std::set<std::string> new_ids{after[3]["id"].get<std::string>(), after[4]["id"].get<std::string>()};
  EXPECT_EQ(new_ids, (std::set<std::string>{"cpp-ctest", "go-test"}));

  // --shard 1/2 takes the tasks at positions 1 and 3.
  fs::path shard_results = scratch() / "batch" / "shard.jsonl";
  auto shard = flashfix({"batch", tasks.string(), "--shard", "1/2", "--out", shard_results.string()});
  EXPECT_EQ(shard.status, 0) << shard.err;
  auto shard_lines = read_lines(shard_results);
  ASSERT_EQ(shard_lines.size(), 2u);
  EXPECT_EQ(shard_lines[0]["id"], "js-node-test");
  EXPECT_EQ(shard_lines[1]["id"], "go-test");
}

TEST(Batch, UsageErrors) {
  fs::path dir = scratch() / "batch-usage";
  fs::create_directories(dir);
  fs::path out = dir / "out.jsonl";
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  std::string good = write("good.jsonl", R"({"id": "a", "repo": ".", "test": "true", "script": "s.jsonl"})" "\n");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"batch", good},                                               // no --out
           {"batch", good, "--out", out.string(), "--shard", "2/2"},
           {"batch", good, "--out", out.string(), "--shard", "x"},
           {"batch", good, "--out", out.string(), "--jobs", "0"},
           {"batch", write("bad.jsonl", "{not json\n"), "--out", out.string()},
           {"batch", write("noid.jsonl", R"({"repo": ".", "test": "true"})" "\n"), "--out", out.string()},
           {"batch", write("dup.jsonl", R"({"id": "a", "repo": ".", "test": "t"})" "\n" R"({"id": "a", "repo": ".", "test": "t"})" "\n"),
            "--out", out.string()},
           {"batch", good, "--out", out.string()},  // its script does not exist
       }) {
    auto r = flashfix(args);
    EXPECT_EQ(r.status, 2) << args.back() << "\n" << r.err;
  }
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
