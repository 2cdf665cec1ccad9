// The embedded engine as the agent's backend, on the tiny random-weight Qwen3-MoE model (its text is
// gibberish): a real agent run completes turns without error, every call it emits parses unless the
// turn's token limit cut it off (constrained decoding), and each turn's prompt extends the previous
// one token for token (append-only rendering, what the prefix cache needs).
#include <cstdlib>
#include <fstream>
#include <mutex>

#include <gtest/gtest.h>

#include "agent/agent.h"
#include "scratch.h"

namespace flashfix::agent {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

const std::string kModel = std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-qwen3moe-s11.gguf";

// The real engine, with every request's prompt recorded.
class RecordingEngine final : public Engine {
 public:
  explicit RecordingEngine(std::unique_ptr<Engine> inner) : inner_(std::move(inner)) {}
  const Model& model() const override { return inner_->model(); }
  const Tokenizer& tokenizer() const override { return inner_->tokenizer(); }
  const EngineOptions& options() const override { return inner_->options(); }
  Result generate(const Request& r) override {
    {
      std::lock_guard lock(mu_);
      prompts.push_back(r.prompt);
    }
    return inner_->generate(r);
  }
  std::vector<std::vector<int32_t>> prompts;

 private:
  std::unique_ptr<Engine> inner_;
  std::mutex mu_;
};

RecordingEngine& engine() {
  static RecordingEngine* e = [] {
    EngineOptions opt;
    opt.threads = 2;
    opt.n_ctx = 16384;
    return new RecordingEngine(Engine::open(kModel, opt));
  }();
  return *e;
}

// Random weights: sampled at temperature 1 over the whole vocabulary, reproducibly.
SamplerParams random_sampling(uint64_t seed) { return {.temperature = 1.0f, .top_k = 0, .top_p = 1.f, .min_p = 0.f, .seed = seed}; }

void expect_prefix(const std::vector<int32_t>& shorter, const std::vector<int32_t>& longer, size_t turn) {
  ASSERT_LT(shorter.size(), longer.size()) << "turn " << turn;
  auto [a, b] = std::mismatch(shorter.begin(), shorter.end(), longer.begin());
  if (a != shorter.end()) {
    size_t at = size_t(a - shorter.begin());
    size_t from = at > 20 ? at - 20 : 0;
    const Tokenizer& tok = engine().tokenizer();
    std::string x = tok.decode(std::span(shorter).subspan(from, std::min<size_t>(40, shorter.size() - from)));
    std::string y = tok.decode(std::span(longer).subspan(from, 40));
    ADD_FAILURE() << "turn " << turn << " differs at token " << at << " of " << shorter.size() << "\n--- before:\n" << x << "\n--- after:\n" << y;
  }
}

// Calls must parse; only the last one of a turn that hit its token limit may be unfinished.
void expect_calls_parse(const ModelTurn& t, size_t turn) {
  for (size_t i = 0; i < t.message.calls.size(); ++i) {
    const bool cut = t.stats.finish == "length" && i + 1 == t.message.calls.size();
    if (!cut) {
      EXPECT_EQ(t.message.calls[i].error, "") << "turn " << turn << " call " << i << ": " << t.message.calls[i].raw;
    }
  }
}

TEST(EngineBackend, ForcedCallsAreConstrainedToTheSchema) {
  RecordingEngine& eng = engine();
  eng.prompts.clear();
  const ojson tools = ojson::parse(R"([{"type":"function","function":{"name":"pick","description":"Pick a number and a speed.",
    "parameters":{"type":"object","properties":{"n":{"type":"integer"},"speed":{"type":"string","enum":["fast","slow"]}},
    "required":["n","speed"],"additionalProperties":false}}}])");
  auto backend = make_engine_backend(eng, {.max_tokens = 160, .sampling = random_sampling(11), .tool_choice = ToolChoice::Required});
  std::vector<ChatMessage> messages = {{.role = "system", .content = "You pick numbers."}, {.role = "user", .content = "Pick one."}};
  std::vector<StreamEvent::Kind> kinds;
  StreamSink sink{[&](const StreamEvent& e) { kinds.push_back(e.kind); }};
  for (size_t turn = 0; turn < 3; ++turn) {
    ModelTurn t = backend->complete(messages, tools, &sink, {});
    ASSERT_FALSE(t.message.calls.empty()) << t.raw;
    EXPECT_TRUE(t.raw.starts_with("<think>\n\n</think>\n\n<tool_call>")) << t.raw;
    const ParsedCall& first = t.message.calls[0];
    ASSERT_EQ(first.error, "") << first.raw;
    EXPECT_EQ(first.call.name, "pick");
    EXPECT_TRUE(first.call.arguments["n"].is_number_integer()) << first.call.arguments.dump();
    EXPECT_TRUE(first.call.arguments["speed"] == "fast" || first.call.arguments["speed"] == "slow") << first.call.arguments.dump();
    expect_calls_parse(t, turn);
    EXPECT_GT(t.stats.generated_tokens, 0);
    // The conversation goes on with the turn's complete calls: one the length limit cut (before its
    // name, possibly) has no rendering; the agent loop answers it with its error instead.
    ChatMessage assistant{.role = "assistant", .content = t.message.content, .reasoning_content = t.message.reasoning};
    for (const ParsedCall& c : t.message.calls)
      if (c.error.empty()) assistant.tool_calls.push_back(c.call);
    messages.push_back(assistant);
    for (const ParsedCall& c : t.message.calls)
      if (c.error.empty()) messages.push_back({.role = "tool", .content = "ok", .tool_call_id = c.call.id});
  }
  ASSERT_EQ(eng.prompts.size(), 3u);
  for (size_t i = 1; i < eng.prompts.size(); ++i) expect_prefix(eng.prompts[i - 1], eng.prompts[i], i);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), StreamEvent::CallBegin), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), StreamEvent::CallEnd), kinds.end());
}

// Step-3.5 opens the think block in its generation prompt and speaks the XML call format.
TEST(EngineBackend, ForcedCallsOnStep35) {
  EngineOptions opt;
  opt.threads = 2;
  opt.n_ctx = 4096;
  RecordingEngine eng(Engine::open(std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-step35-s11.gguf", opt));
  const ojson tools = ojson::parse(R"([{"type":"function","function":{"name":"pick","description":"Pick a speed.",
    "parameters":{"type":"object","properties":{"speed":{"type":"string","enum":["fast","slow"]}},"required":["speed"]}}}])");
  auto backend = make_engine_backend(eng, {.max_tokens = 120, .sampling = random_sampling(3), .tool_choice = ToolChoice::Required});
  std::vector<ChatMessage> messages = {{.role = "user", .content = "Pick one."}};
  for (size_t turn = 0; turn < 2; ++turn) {
    ModelTurn t = backend->complete(messages, tools, nullptr, {});
    EXPECT_TRUE(t.raw.starts_with("\n</think>\n<tool_call>")) << t.raw;
    ASSERT_FALSE(t.message.calls.empty()) << t.raw;
    EXPECT_EQ(t.message.calls[0].error, "") << t.raw;
    EXPECT_EQ(t.message.calls[0].call.name, "pick");
    expect_calls_parse(t, turn);
    ChatMessage assistant{.role = "assistant", .content = t.message.content, .reasoning_content = t.message.reasoning};
    for (const ParsedCall& c : t.message.calls)
      if (c.error.empty()) assistant.tool_calls.push_back(c.call);
    messages.push_back(assistant);
    for (const ParsedCall& c : t.message.calls)
      if (c.error.empty()) messages.push_back({.role = "tool", .content = "ok", .tool_call_id = c.call.id});
  }
  ASSERT_EQ(eng.prompts.size(), 2u);
  expect_prefix(eng.prompts[0], eng.prompts[1], 1);
}

fs::path shell_repo(const std::string& name) {
  fs::path repo = test::scratch() / name;
  fs::create_directories(repo);
  std::ofstream(repo / "lib.sh") << "add() { echo $(($1 - $2)); }\n";
  std::ofstream(repo / "test.sh") << ". ./lib.sh\n[ \"$(add 2 3)\" = 5 ] || { echo \"FAIL: add 2 3 = $(add 2 3)\"; exit 1; }\n";
  EXPECT_EQ(std::system(("cd '" + repo.string() + "' && git init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm init").c_str()), 0);
  return repo;
}

// The model the loop talks to, with each turn kept for the checks.
struct KeepTurns : ModelBackend {
  ModelBackend& inner;
  std::vector<ModelTurn> turns;
  explicit KeepTurns(ModelBackend& b) : inner(b) {}
  std::string describe() const override { return inner.describe(); }
  ModelTurn complete(const std::vector<ChatMessage>& m, const ojson& tools, const StreamSink* s, std::stop_token st) override {
    turns.push_back(inner.complete(m, tools, s, st));
    return turns.back();
  }
};

TEST(EngineBackend, AgentRunOnARandomModelCompletesTurns) {
  RecordingEngine& eng = engine();
  eng.prompts.clear();
  fs::path repo = shell_repo("engine_run");
  tools::Workspace ws = tools::Workspace::create(repo);
  auto backend = make_engine_backend(eng, {.max_tokens = 160, .sampling = random_sampling(7), .tool_choice = ToolChoice::Required});
  EXPECT_EQ(backend->describe(), "engine:tiny-qwen3moe-s11");
  KeepTurns model(*backend);
  AgentResult r = run_agent(model, ws, {.test_command = "sh test.sh", .budget = {.max_turns = 2}});
  EXPECT_EQ(r.outcome, Outcome::BudgetExhausted) << r.reason;
  ASSERT_EQ(model.turns.size(), 2u);
  for (size_t i = 0; i < model.turns.size(); ++i) {
    const ModelTurn& t = model.turns[i];
    EXPECT_FALSE(t.message.calls.empty()) << t.raw;
    expect_calls_parse(t, i);
    EXPECT_GT(t.stats.prompt_tokens, 1000);  // system prompt, nine tool schemas, the task and the test output
    EXPECT_LE(t.stats.cached_tokens, t.stats.prompt_tokens);
  }
  ASSERT_EQ(eng.prompts.size(), 2u);
  expect_prefix(eng.prompts[0], eng.prompts[1], 1);
  EXPECT_EQ(r.prompt_tokens, model.turns[0].stats.prompt_tokens + model.turns[1].stats.prompt_tokens);
  EXPECT_EQ(r.final_tests.status, "failed");
}

// A conversation longer than the engine's context ends the run as a spent budget, before any work.
TEST(EngineBackend, ContextOverflowIsABudget) {
  EngineOptions opt;
  opt.threads = 1;
  opt.n_ctx = 512;
  auto small = Engine::open(kModel, opt);
  fs::path repo = shell_repo("engine_small");
  tools::Workspace ws = tools::Workspace::create(repo);
  auto backend = make_engine_backend(*small, {.max_tokens = 16});
  AgentResult r = run_agent(*backend, ws, {.test_command = "sh test.sh"});
  EXPECT_EQ(r.outcome, Outcome::BudgetExhausted) << r.reason;
  EXPECT_NE(r.reason.find("fills the context of 512 tokens"), std::string::npos) << r.reason;
  EXPECT_EQ(r.turns, 0);
}

}  // namespace
}  // namespace flashfix::agent
