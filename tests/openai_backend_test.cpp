// The OpenAI-compatible backend against a local server speaking the real protocol: streamed
// chat.completion.chunk events (content, reasoning_content and tool calls split across chunks, usage
// in a last chunk), a plain chat.completion response, HTTP errors, and a whole agent run through it.
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include "agent/agent.h"
#include "agent/openai_stream.h"
#include "scratch.h"

namespace flashfix::agent {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// One chunk as OpenAI sends it, around a delta (or a finish reason).
std::string chunk(const json& delta, const json& finish = nullptr) {
  json c{{"id", "chatcmpl-AXb7fQ2kD9"}, {"object", "chat.completion.chunk"}, {"created", 1732350000},
         {"model", "gpt-4o-mini-2024-07-18"}, {"system_fingerprint", "fp_0ba0d124f1"},
         {"choices", {{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", finish}}}}};
  return "data: " + c.dump() + "\n\n";
}

// A streamed turn: reasoning, then content, then two tool calls whose arguments arrive in pieces.
std::string stream_body() {
  std::string s = chunk({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}});
  s += chunk({{"reasoning_content", "The add function"}});
  s += chunk({{"reasoning_content", " subtracts."}});
  s += chunk({{"content", "Let me read "}});
  s += chunk({{"content", "the code."}});
  s += chunk({{"tool_calls", {{{"index", 0}, {"id", "call_DdmO9pD3xa9XTPNJ32zg2hcA"}, {"type", "function"},
                                {"function", {{"name", "read_file"}, {"arguments", ""}}}}}}});
  for (const char* piece : {"{\"", "path", "\":\"", "lib", ".sh\"}"})
    s += chunk({{"tool_calls", {{{"index", 0}, {"function", {{"arguments", piece}}}}}}});
  s += chunk({{"tool_calls", {{{"index", 1}, {"id", "call_Q1w2e3r4t5y6u7i8o9p0"}, {"type", "function"},
                                {"function", {{"name", "list_dir"}, {"arguments", ""}}}}}}});
  s += chunk({{"tool_calls", {{{"index", 1}, {"function", {{"arguments", "{}"}}}}}}});
  s += chunk(json::object(), "tool_calls");
  json usage{{"id", "chatcmpl-AXb7fQ2kD9"}, {"object", "chat.completion.chunk"}, {"created", 1732350000},
             {"model", "gpt-4o-mini-2024-07-18"}, {"choices", json::array()},
             {"usage", {{"prompt_tokens", 812}, {"completion_tokens", 31}, {"total_tokens", 843},
                        {"prompt_tokens_details", {{"cached_tokens", 768}, {"audio_tokens", 0}}},
                        {"completion_tokens_details", {{"reasoning_tokens", 0}}}}}};
  s += ": keep-alive\n\ndata: " + usage.dump() + "\n\ndata: [DONE]\n\n";
  return s;
}

void expect_stream_turn(const ParsedMessage& m) {
  EXPECT_EQ(m.reasoning, "The add function subtracts.");
  EXPECT_EQ(m.content, "Let me read the code.");
  ASSERT_EQ(m.calls.size(), 2u);
  EXPECT_EQ(m.calls[0].call.id, "call_DdmO9pD3xa9XTPNJ32zg2hcA");
  EXPECT_EQ(m.calls[0].call.name, "read_file");
  EXPECT_EQ(m.calls[0].call.arguments, (ojson{{"path", "lib.sh"}}));
  EXPECT_TRUE(m.calls[0].error.empty()) << m.calls[0].error;
  EXPECT_EQ(m.calls[1].call.name, "list_dir");
  EXPECT_EQ(m.calls[1].call.arguments, ojson::object());
}

TEST(OpenAIStream, ReassemblesChunksSplitAnywhere) {
  const std::string body = stream_body();
  std::string events;
  OpenAIStream whole, bytewise([&](const StreamEvent& e) { events += std::to_string(int(e.kind)) + ":" + e.text + "|"; });
  whole.feed(body);
  for (char c : body) bytewise.feed(std::string_view(&c, 1));
  whole.finish();
  bytewise.finish();
  EXPECT_TRUE(bytewise.done());
  EXPECT_EQ(whole.message(), bytewise.message());
  EXPECT_EQ(bytewise.finish_reason(), "tool_calls");
  EXPECT_EQ(bytewise.usage()["prompt_tokens"], 812);
  expect_stream_turn(parse_openai_message(bytewise.message()));
  EXPECT_EQ(events,
            "0:The add function|0: subtracts.|1:Let me read |1:the code.|2:|3:{\"|3:path|3:\":\"|3:lib|3:.sh\"}|2:|3:{}|4:|4:|");
}

TEST(OpenAIStream, RejectsBrokenStreams) {
  OpenAIStream bad_json;
  EXPECT_THROW(bad_json.feed("data: {\"choices\": [\n\n"), std::runtime_error);
  OpenAIStream server_error;
  EXPECT_THROW(server_error.feed("data: {\"error\": {\"message\": \"overloaded\", \"type\": \"server_error\"}}\n\n"), std::runtime_error);
  OpenAIStream empty;
  empty.feed(": nothing but comments\n\n");
  EXPECT_THROW(empty.finish(), std::runtime_error);
}

// A local server on a free port; each test installs its handler.
struct LocalServer {
  httplib::Server server;
  int port = 0;
  std::thread thread;
  std::mutex mu;
  std::vector<json> requests;             // bodies received
  std::vector<std::string> authorization;  // Authorization headers received

  explicit LocalServer(std::function<void(const json&, httplib::Response&, size_t)> handler) {
    server.Post("/v1/chat/completions", [this, handler](const httplib::Request& req, httplib::Response& res) {
      size_t n;
      json body = json::parse(req.body, nullptr, false);
      {
        std::lock_guard lock(mu);
        requests.push_back(body);
        authorization.push_back(req.get_header_value("Authorization"));
        n = requests.size() - 1;
      }
      handler(body, res, n);
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    // stop() before the accept loop runs would be lost and leave it running forever.
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LocalServer() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
};

void stream_reply(httplib::Response& res, std::string body) {
  // Sent in 7-byte writes, so chunks and even lines straddle the network reads.
  res.set_chunked_content_provider("text/event-stream", [body](size_t, httplib::DataSink& sink) {
    for (size_t i = 0; i < body.size(); i += 7) sink.write(body.data() + i, std::min<size_t>(7, body.size() - i));
    sink.done();
    return true;
  });
}

const std::vector<ChatMessage> kConversation = {{.role = "system", .content = "You fix code."}, {.role = "user", .content = "Fix add."}};
const ojson kTools = ojson::parse(R"([{"type":"function","function":{"name":"read_file","description":"Read a file.",
  "parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}},
  {"type":"function","function":{"name":"list_dir","description":"List a folder.","parameters":{"type":"object","properties":{}}}}])");

TEST(OpenAIBackend, StreamsContentReasoningAndToolCalls) {
  LocalServer srv([](const json&, httplib::Response& res, size_t) { stream_reply(res, stream_body()); });
  setenv("FLASHFIX_TEST_OPENAI_KEY", "sk-test-123", 1);
  auto backend = make_openai_backend({.base_url = srv.url() + "/", .model = "gpt-4o-mini", .api_key_env = "FLASHFIX_TEST_OPENAI_KEY"},
                                     {.max_tokens = 300, .sampling = {.temperature = 0.2f, .top_p = 0.9f}});
  EXPECT_EQ(backend->describe(), "openai:" + srv.url() + "/:gpt-4o-mini");
  std::vector<StreamEvent::Kind> kinds;
  StreamSink sink{[&](const StreamEvent& e) { kinds.push_back(e.kind); }};
  ModelTurn t = backend->complete(kConversation, kTools, &sink, {});
  expect_stream_turn(t.message);
  EXPECT_EQ(t.stats.prompt_tokens, 812);
  EXPECT_EQ(t.stats.cached_tokens, 768);
  EXPECT_EQ(t.stats.generated_tokens, 31);
  EXPECT_EQ(t.stats.finish, "tool_calls");
  EXPECT_GT(t.stats.ttft_ms, 0);
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.front(), StreamEvent::Reasoning);
  EXPECT_EQ(kinds.back(), StreamEvent::CallEnd);

  ASSERT_EQ(srv.requests.size(), 1u);
  const json& req = srv.requests[0];
  EXPECT_EQ(srv.authorization[0], "Bearer sk-test-123");
  EXPECT_EQ(req["model"], "gpt-4o-mini");
  EXPECT_EQ(req["stream"], true);
  EXPECT_EQ(req["stream_options"]["include_usage"], true);
  EXPECT_EQ(req["max_tokens"], 300);
  EXPECT_FLOAT_EQ(req["temperature"].get<float>(), 0.2f);
  EXPECT_EQ(req["tools"], json(kTools));
  EXPECT_EQ(req["messages"], json::parse(R"([{"role":"system","content":"You fix code."},{"role":"user","content":"Fix add."}])"));
}

TEST(OpenAIBackend, ReadsAWholeResponseWithoutStreaming) {
  LocalServer srv([](const json& req, httplib::Response& res, size_t) {
    json reply = json::parse(R"({"id":"chatcmpl-9pQ","object":"chat.completion","created":1732350001,"model":"gpt-4o-mini-2024-07-18",
      "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function",
      "function":{"name":"read_file","arguments":"{\"path\": \"lib.sh\"}"}}],"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],
      "usage":{"prompt_tokens":120,"completion_tokens":18,"total_tokens":138,"prompt_tokens_details":{"cached_tokens":0}},
      "system_fingerprint":"fp_0ba0d124f1"})");
    res.set_content(reply.dump(), "application/json");
  });
  unsetenv("FLASHFIX_TEST_NO_KEY");
  auto backend = make_openai_backend({.base_url = srv.url(), .model = "m", .api_key_env = "FLASHFIX_TEST_NO_KEY", .stream = false}, {});
  ModelTurn t = backend->complete(kConversation, kTools, nullptr, {});
  ASSERT_EQ(t.message.calls.size(), 1u);
  EXPECT_EQ(t.message.calls[0].call.arguments, (ojson{{"path", "lib.sh"}}));
  EXPECT_EQ(t.stats.prompt_tokens, 120);
  EXPECT_EQ(t.stats.generated_tokens, 18);
  EXPECT_EQ(t.stats.finish, "tool_calls");
  EXPECT_FALSE(srv.requests[0].contains("stream"));
  EXPECT_EQ(srv.authorization[0], "") << "no key in the environment: no Authorization header";
}

std::string error_of(ModelBackend& backend) {
  try {
    backend.complete(kConversation, kTools, nullptr, {});
  } catch (const ContextOverflow& e) {
    return std::string("overflow: ") + e.what();
  } catch (const BackendError& e) {
    return e.what();
  }
  return "no error";
}

TEST(OpenAIBackend, HttpErrorsAreBackendErrorsWithTheServersMessage) {
  LocalServer srv([](const json& req, httplib::Response& res, size_t n) {
    if (n == 0) {
      res.status = 401;
      res.set_content(R"({"error":{"message":"Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})",
                      "application/json");
    } else if (n == 1) {
      res.status = 500;
      res.set_content(R"({"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}})",
                      "application/json");
    } else if (n == 2) {
      res.status = 400;
      res.set_content(R"({"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})",
                      "application/json");
    } else if (n == 3) {
      stream_reply(res, chunk({{"content", "Hel"}}) + "data: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\"}}\n\n");
    } else {
      stream_reply(res, "data: {not json}\n\n");
    }
  });
  auto backend = make_openai_backend({.base_url = srv.url(), .model = "m"}, {});
  std::string e401 = error_of(*backend);
  EXPECT_NE(e401.find("HTTP 401"), std::string::npos) << e401;
  EXPECT_NE(e401.find("Incorrect API key provided"), std::string::npos) << e401;
  EXPECT_NE(e401.find("$OPENAI_API_KEY"), std::string::npos) << e401;
  std::string e500 = error_of(*backend);
  EXPECT_NE(e500.find("HTTP 500"), std::string::npos) << e500;
  EXPECT_NE(e500.find("The server had an error"), std::string::npos) << e500;
  std::string e400 = error_of(*backend);
  EXPECT_EQ(e400.rfind("overflow: ", 0), 0u) << e400;
  std::string mid = error_of(*backend);
  EXPECT_NE(mid.find("upstream overloaded"), std::string::npos) << mid;
  std::string garbage = error_of(*backend);
  EXPECT_NE(garbage.find("not a JSON object"), std::string::npos) << garbage;
}

TEST(OpenAIBackend, UnreachableServerAndBadUrls) {
  int port;
  {
    LocalServer gone([](const json&, httplib::Response&, size_t) {});
    port = gone.port;
  }
  auto backend = make_openai_backend({.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1", .model = "m"}, {});
  std::string e = error_of(*backend);
  EXPECT_NE(e.find("request failed"), std::string::npos) << e;
  EXPECT_NE(e.find("Connection"), std::string::npos) << e;
  EXPECT_THROW(make_openai_backend({.base_url = "localhost:8080/v1", .model = "m"}, {}), BackendError);
  EXPECT_THROW(make_openai_backend({.base_url = "ftp://host/v1", .model = "m"}, {}), BackendError);
  EXPECT_THROW(make_openai_backend({.base_url = "http://host/v1", .model = ""}, {}), BackendError);
}

// The loop through the HTTP backend: the second request carries the first turn's call and its result
// in the API's own shape (arguments as a JSON string, tool_call_id pointing back).
TEST(OpenAIBackend, DrivesTheAgentLoop) {
  namespace fs = std::filesystem;
  fs::path repo = test::scratch() / "oa_repo";
  fs::create_directories(repo);
  std::ofstream(repo / "lib.sh") << "add() { echo $(($1 - $2)); }\n";
  std::ofstream(repo / "test.sh") << ". ./lib.sh\n[ \"$(add 2 3)\" = 5 ] || { echo \"FAIL: add 2 3 = $(add 2 3)\"; exit 1; }\n";
  ASSERT_EQ(std::system(("cd '" + repo.string() + "' && git init -q && git add -A && git -c user.name=t -c user.email=t@e commit -qm init").c_str()), 0);

  LocalServer srv([](const json& req, httplib::Response& res, size_t n) {
    std::string body;
    if (n == 0) {
      body = chunk({{"tool_calls", {{{"index", 0}, {"id", "call_1"}, {"type", "function"},
                                     {"function", {{"name", "read_file"}, {"arguments", "{\"path\":\"lib.sh\"}"}}}}}}});
    } else {
      json args{{"path", "lib.sh"}, {"content", "add() { echo $(($1 + $2)); }\n"}};
      body = chunk({{"content", "Found it: add subtracts."}}) +
             chunk({{"tool_calls", {{{"index", 0}, {"id", "call_2"}, {"type", "function"},
                                     {"function", {{"name", "write_file"}, {"arguments", args.dump()}}}}}}});
    }
    stream_reply(res, body + chunk(json::object(), "tool_calls") + "data: [DONE]\n\n");
  });
  tools::Workspace ws = tools::Workspace::create(repo);
  auto backend = make_openai_backend({.base_url = srv.url(), .model = "m"}, {});
  AgentResult r = run_agent(*backend, ws, {.test_command = "sh test.sh"});
  EXPECT_EQ(r.outcome, Outcome::Fixed) << r.reason;
  EXPECT_EQ(r.turns, 2);
  ASSERT_EQ(srv.requests.size(), 2u);
  const json& msgs = srv.requests[1]["messages"];
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[2]["role"], "assistant");
  EXPECT_TRUE(msgs[2]["content"].is_null());
  EXPECT_EQ(msgs[2]["tool_calls"][0]["id"], "call_1");
  EXPECT_EQ(json::parse(msgs[2]["tool_calls"][0]["function"]["arguments"].get<std::string>()), (json{{"path", "lib.sh"}}));
  EXPECT_EQ(msgs[3]["role"], "tool");
  EXPECT_EQ(msgs[3]["tool_call_id"], "call_1");
  EXPECT_NE(msgs[3]["content"].get<std::string>().find("$1 - $2"), std::string::npos);
  EXPECT_EQ(srv.requests[0]["tools"].size(), 9u);
}

}  // namespace
}  // namespace flashfix::agent
