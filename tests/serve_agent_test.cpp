// The agent's OpenAI-compatible backend (agent/openai_backend.cpp) against `flashfix serve`: single
// turns streamed and not, the prefix cache across an append-only conversation, and a whole agent
// run through the server. The model is random, so the run fixes nothing; it must end for a model
// reason (turns used up, or the model finished), never as an infrastructure error.
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "agent/agent.h"
#include "agent/model_backend.h"
#include "scratch.h"
#include "serve_process.h"
#include "tools/tool.h"

namespace flashfix::agent {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

const std::string kModel = std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-qwen3moe-s11.gguf";

struct ServeAgent : ::testing::Test {
  static void SetUpTestSuite() {
    server_ = new test::ServeProcess({"--model", kModel, "--port", "0", "--threads", "2", "--ctx-size", "8192", "--model-name", "tiny"});
  }
  static void TearDownTestSuite() {
    const int status = server_->stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    delete server_;
  }
  static std::unique_ptr<ModelBackend> backend(bool stream) {
    OpenAIEndpoint e;
    e.base_url = server_->url() + "/v1";
    e.model = "tiny";
    e.api_key_env = "";
    e.stream = stream;
    GenerationSettings g;
    g.max_tokens = 24;
    g.sampling.seed = 5;
    return make_openai_backend(e, g);
  }
  static test::ServeProcess* server_;
};
test::ServeProcess* ServeAgent::server_ = nullptr;

TEST_F(ServeAgent, TurnsStreamedAndNotShareTheCache) {
  for (bool stream : {true, false}) {
    auto model = backend(stream);
    std::vector<ChatMessage> msgs = {{.role = "system", .content = "You are a careful engineer."},
                                     {.role = "user", .content = stream ? "Fix the failing test, streamed." : "Fix the failing test."}};
    std::vector<StreamEvent> events;
    StreamSink sink{[&](const StreamEvent& e) { events.push_back(e); }};
    const ojson tools = tools::Registry::standard().openai_tools();
    ModelTurn first = model->complete(msgs, tools, &sink, {});
    EXPECT_GT(first.stats.prompt_tokens, 100) << stream;  // the tools are in the prompt
    EXPECT_GT(first.stats.generated_tokens, 0) << stream;
    EXPECT_TRUE(first.stats.finish == "stop" || first.stats.finish == "length" || first.stats.finish == "tool_calls") << first.stats.finish;
    if (stream) {
      EXPECT_FALSE(events.empty());
    }
    // The next turn: the reply as the loop stores it, then a tool-less user message.
    msgs.push_back({.role = "assistant", .content = first.message.content, .reasoning_content = first.message.reasoning});
    msgs.push_back({.role = "user", .content = "Go on."});
    ModelTurn second = model->complete(msgs, tools, nullptr, {});
    EXPECT_GT(second.stats.prompt_tokens, first.stats.prompt_tokens);
    EXPECT_GE(second.stats.cached_tokens, first.stats.prompt_tokens / 2) << "stream " << stream;
  }
}

TEST_F(ServeAgent, AContextOverflowIsReportedAsSuch) {
  auto model = backend(false);
  std::string huge;
  for (int i = 0; i < 9000; ++i) huge += "word ";
  EXPECT_THROW(model->complete({{.role = "user", .content = huge}}, ojson::array(), nullptr, {}), ContextOverflow);
}

TEST_F(ServeAgent, AWholeAgentRunThroughTheServer) {
  const fs::path repo = test::scratch() / "agent_repo";
  fs::create_directories(repo);
  std::ofstream(repo / "lib.sh") << "add() { echo $(($1 - $2)); }\n";
  std::ofstream(repo / "test.sh") << ". ./lib.sh\n[ \"$(add 2 3)\" = 5 ] || { echo 'FAIL: add 2 3'; exit 1; }\n";
  const std::string git = "git -C '" + repo.string() + "' -c user.name=t -c user.email=t@example.com ";
  ASSERT_EQ(std::system(("git init -q '" + repo.string() + "' && " + git + "add -A && " + git + "commit -q -m init").c_str()), 0);

  auto model = backend(true);
  tools::Workspace ws = tools::Workspace::create(repo);
  int turns_seen = 0;
  AgentObserver obs;
  obs.on_turn = [&](int, const TurnStats& s) {
    ++turns_seen;
    EXPECT_GT(s.prompt_tokens, 0);
  };
  AgentResult r = run_agent(*model, ws, {.test_command = "sh test.sh", .budget = {.max_turns = 2, .max_seconds = 120}}, obs);
  EXPECT_NE(r.outcome, Outcome::InfrastructureError) << r.reason;
  EXPECT_NE(r.outcome, Outcome::Fixed);
  EXPECT_GE(r.turns, 1);
  EXPECT_EQ(turns_seen, r.turns);
  EXPECT_GT(r.prompt_tokens, 0);
  EXPECT_GT(r.cached_tokens, 0) << "turn 2 extends turn 1";
}

}  // namespace
}  // namespace flashfix::agent
