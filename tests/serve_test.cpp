// flashfix serve end to end through the real binary and raw HTTP: request validation, errors as
// OpenAI error objects, authentication, limits, streaming, tool_choice, metrics, disconnects, and
// garbage that must never bring the server down. The official openai npm client drives it too
// (ServeJs, the node:test files in tests/serve_js).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "serve_process.h"
#include "server/text_stream.h"

using namespace flashfix::test;
using json = nlohmann::json;

namespace {

const std::string kModel = std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-qwen3moe-s11.gguf";
const std::string kModelName = "tiny-qwen3moe-s11";

httplib::Result post(int port, const std::string& path, const std::string& body, const httplib::Headers& headers = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120);
  return c.Post(path.c_str(), headers, body, "application/json");
}

httplib::Result get(int port, const std::string& path, const httplib::Headers& headers = {}) {
  httplib::Client c("127.0.0.1", port);
  return c.Get(path.c_str(), headers);
}

json chat_body(const std::string& user, int max_tokens = 4) {
  return {{"model", kModelName}, {"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", max_tokens},
          {"temperature", 0}};
}

// The error object every 4xx carries, checked field by field.
void expect_error(const httplib::Result& r, int status, const std::string& type, const std::string& code = {},
                  const std::string& param = {}) {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body);
  ASSERT_TRUE(j.contains("error")) << r->body;
  EXPECT_EQ(j["error"]["type"], type) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  if (!code.empty()) {
    EXPECT_EQ(j["error"]["code"], code) << r->body;
  }
  if (!param.empty()) {
    EXPECT_EQ(j["error"]["param"], param) << r->body;
  }
}

// "data: ..." events of an SSE body, [DONE] included as the string "[DONE]".
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> events;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    events.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return events;
}

double metric(int port, const std::string& name) {
  auto r = get(port, "/metrics");
  if (!r) return -1;
  const std::string& b = r->body;
  for (size_t pos = 0; (pos = b.find(name, pos)) != std::string::npos; pos += name.size())
    if ((pos == 0 || b[pos - 1] == '\n') && b[pos + name.size()] == ' ') return std::stod(b.substr(pos + name.size() + 1));
  return -1;
}

// Sends a request on a raw socket and returns the socket once the response has begun (the request
// holds its slot then); closing it is a client disconnect.
int open_stream(int port, const json& body, const std::string& extra_headers = {}) {
  const std::string payload = body.dump();
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra_headers +
                              "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || write(fd, request.data(), request.size()) != ssize_t(request.size())) {
    close(fd);
    return -1;
  }
  char buf[512];
  if (read(fd, buf, sizeof buf) <= 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A streamed request that runs long: greedy decoding of this prompt does not end early.
json long_stream_body(int max_tokens) {
  json body = chat_body("go on", max_tokens);
  body["stream"] = true;
  return body;
}

// Enum and integer parameters keep a random model's call short: the grammar leaves it no free text
// to ramble in, so the call closes well within max_tokens.
const json kWeatherTool = {{"type", "function"},
                           {"function",
                            {{"name", "get_weather"},
                             {"description", "Weather for a city"},
                             {"parameters",
                              {{"type", "object"},
                               {"properties", {{"city", {{"type", "string"}, {"enum", {"Paris", "Oslo"}}}}, {"days", {{"type", "integer"}}}}},
                               {"required", {"city", "days"}}}}}}};

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServeProcess({"--model", kModel, "--port", "0", "--threads", "2", "--ctx-size", "1024", "--max-tokens-limit", "256"});
  }
  static void TearDownTestSuite() {
    const int status = server_->stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "server exit status " << status;
    delete server_;
  }
  static int port() { return server_->port(); }
  static ServeProcess* server_;
};
ServeProcess* Serve::server_ = nullptr;

TEST(TextStream, HoldsBackPartialStopStringsAndUtf8) {
  flashfix::server::TextStream s({"STOP", "\n\n"});
  EXPECT_EQ(s.push("hello S"), "hello ");  // "S" may begin STOP
  EXPECT_EQ(s.push("T"), "");
  EXPECT_EQ(s.push("x"), "STx");  // it did not
  EXPECT_EQ(s.push("\xC3"), "");  // half of "é"
  EXPECT_EQ(s.push("\xA9 ST"), "\xC3\xA9 ");
  EXPECT_EQ(s.push("OP and more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push("later"), "");
  EXPECT_EQ(s.finish(), "");

  flashfix::server::TextStream t({"\n\n"});
  EXPECT_EQ(t.push("a\n"), "a");
  EXPECT_EQ(t.push("b"), "\nb");
  EXPECT_EQ(t.push("\xE2\x82"), "");
  EXPECT_EQ(t.finish(), "\xE2\x82");  // an incomplete tail at the end is passed on
  EXPECT_FALSE(t.stopped());
}

TEST_F(Serve, HealthAndModels) {
  auto h = get(port(), "/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = get(port(), "/v1/models");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  json j = json::parse(m->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], kModelName);
  EXPECT_EQ(j["data"][0]["object"], "model");
  auto one = get(port(), "/v1/models/" + kModelName);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  expect_error(get(port(), "/v1/models/gpt-4"), 404, "invalid_request_error", "model_not_found");
}

TEST_F(Serve, ChatCompletionShapeAndUsage) {
  auto r = post(port(), "/v1/chat/completions", chat_body("Say hello", 6).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], kModelName);
  EXPECT_TRUE(j["id"].get<std::string>().starts_with("chatcmpl-"));
  ASSERT_EQ(j["choices"].size(), 1u);
  const json& c = j["choices"][0];
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_TRUE(c["message"]["content"].is_string());
  const std::string finish = c["finish_reason"];
  EXPECT_TRUE(finish == "length" || finish == "stop") << finish;
  const json& u = j["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 5);
  EXPECT_GE(u["completion_tokens"].get<int>(), 0);
  EXPECT_LE(u["completion_tokens"].get<int>(), 6);
  EXPECT_EQ(u["total_tokens"].get<int>(), u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  EXPECT_TRUE(u["prompt_tokens_details"]["cached_tokens"].is_number_integer());
}

TEST_F(Serve, StopStringsEndTheReplyBeforeThem) {
  // Greedy decoding is deterministic: take a piece of the free reply as the stop string.
  json body = chat_body("Say something", 12);
  auto free_run = post(port(), "/v1/chat/completions", body.dump());
  ASSERT_TRUE(free_run);
  ASSERT_EQ(free_run->status, 200) << free_run->body;
  const std::string text = json::parse(free_run->body)["choices"][0]["message"]["content"];
  ASSERT_GE(text.size(), 8u) << text;
  const std::string stop = text.substr(text.size() / 2, 3);
  for (bool stream : {false, true}) {
    body["stop"] = {"\x01never", stop};
    body["stream"] = stream;
    auto r = post(port(), "/v1/chat/completions", body.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    std::string content, finish;
    if (!stream) {
      json c = json::parse(r->body)["choices"][0];
      content = c["message"]["content"];
      finish = c["finish_reason"];
    } else {
      for (const auto& e : sse_events(r->body)) {
        if (e == "[DONE]") break;
        json c = json::parse(e)["choices"][0];
        content += c["delta"].value("content", "");
        if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
      }
    }
    // The reply is trimmed by the parser; compare against the trimmed text before the stop.
    std::string expected = text.substr(0, text.find(stop));
    while (!expected.empty() && std::isspace(static_cast<unsigned char>(expected.back()))) expected.pop_back();
    EXPECT_EQ(content, expected) << "stream " << stream << ", stop '" << stop << "' in '" << text << "'";
    EXPECT_EQ(finish, "stop");
  }
}

TEST_F(Serve, SecondRequestSharingAPrefixReusesTheCache) {
  // Turn 1, then turn 2 = turn 1 + the reply + a new question: the rendering is append-only, so the
  // second prompt starts with the first and its KV is reused.
  json first = chat_body("What is the capital of France? Answer briefly, please.", 1);
  auto r1 = post(port(), "/v1/chat/completions", first.dump());
  ASSERT_TRUE(r1);
  ASSERT_EQ(r1->status, 200) << r1->body;
  json j1 = json::parse(r1->body);
  json second = first;
  second["messages"].push_back(j1["choices"][0]["message"]);
  second["messages"].push_back({{"role", "user"}, {"content", "And of Spain?"}});
  auto r2 = post(port(), "/v1/chat/completions", second.dump());
  ASSERT_TRUE(r2);
  ASSERT_EQ(r2->status, 200) << r2->body;
  json j2 = json::parse(r2->body);
  const int p1 = j1["usage"]["prompt_tokens"], p2 = j2["usage"]["prompt_tokens"];
  EXPECT_GT(p2, p1);
  EXPECT_GE(j2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), p1 - 1);
}

TEST_F(Serve, StreamedChatIsOpenAiShaped) {
  json body = chat_body("Tell me a story", 8);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto r = post(port(), "/v1/chat/completions", body.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  auto events = sse_events(r->body);
  ASSERT_GE(events.size(), 4u) << r->body;
  EXPECT_EQ(events.back(), "[DONE]");
  json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  json usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_GT(usage["usage"]["prompt_tokens"].get<int>(), 0);
  json last = json::parse(events[events.size() - 3]);
  EXPECT_FALSE(last["choices"][0]["finish_reason"].is_null());
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json e = json::parse(events[i]);
    EXPECT_EQ(e["id"], first["id"]);  // one id for the whole stream
  }
}

TEST_F(Serve, RequiredToolChoiceForcesAWellFormedCall) {
  for (const json& choice : {json("required"), json{{"type", "function"}, {"function", {{"name", "get_weather"}}}}}) {
    json body = chat_body("What's the weather in Paris?", 256);
    body["tools"] = {kWeatherTool};
    body["tool_choice"] = choice;
    auto r = post(port(), "/v1/chat/completions", body.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json c = json::parse(r->body)["choices"][0];
    ASSERT_TRUE(c["message"].contains("tool_calls")) << r->body;
    const json& call = c["message"]["tool_calls"][0];
    EXPECT_EQ(call["type"], "function");
    EXPECT_EQ(call["function"]["name"], "get_weather");
    json args = json::parse(call["function"]["arguments"].get<std::string>());
    EXPECT_TRUE(args["city"] == "Paris" || args["city"] == "Oslo") << args;
    EXPECT_TRUE(args["days"].is_number_integer()) << args;
    EXPECT_EQ(c["finish_reason"], "tool_calls") << r->body;
  }
}

TEST_F(Serve, StreamedToolCallArrivesInFragments) {
  json body = chat_body("Weather in Oslo?", 256);
  body["tools"] = {kWeatherTool};
  body["tool_choice"] = "required";
  body["stream"] = true;
  auto r = post(port(), "/v1/chat/completions", body.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::string name, arguments, id, finish;
  for (const auto& e : sse_events(r->body)) {
    if (e == "[DONE]") break;
    json c = json::parse(e)["choices"][0];
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    if (!c["delta"].contains("tool_calls")) continue;
    const json& d = c["delta"]["tool_calls"][0];
    EXPECT_EQ(d["index"], 0);
    if (d.contains("id")) id = d["id"], name = d["function"]["name"];
    arguments += d["function"].value("arguments", "");
  }
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(name, "get_weather");
  EXPECT_TRUE(json::parse(arguments).is_object()) << arguments;
  EXPECT_EQ(finish, "tool_calls");
}

TEST_F(Serve, CompletionsEndpoint) {
  json body = {{"model", kModelName}, {"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0}};
  auto r = post(port(), "/v1/completions", body.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_TRUE(j["choices"][0]["text"].is_string());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
  // The same prompt as token ids gives the same greedy text.
  body["prompt"] = {46, 1198, 2402, 257, 640};
  auto ids = post(port(), "/v1/completions", body.dump());
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->status, 200) << ids->body;
  EXPECT_EQ(json::parse(ids->body)["choices"][0]["text"], j["choices"][0]["text"]);
  body["prompt"] = {1, 999999};
  expect_error(post(port(), "/v1/completions", body.dump()), 400, "invalid_request_error", "", "prompt");
  body["prompt"] = "x";
  body["stream"] = true;
  auto s = post(port(), "/v1/completions", body.dump());
  ASSERT_TRUE(s);
  auto events = sse_events(s->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[0])["object"], "text_completion");
}

TEST_F(Serve, InvalidRequestsGetOpenAiErrors) {
  const std::string chat = "/v1/chat/completions";
  expect_error(post(port(), chat, "{not json"), 400, "invalid_request_error");
  expect_error(post(port(), chat, "[1,2]"), 400, "invalid_request_error");
  expect_error(post(port(), chat, json{{"model", kModelName}}.dump()), 400, "invalid_request_error", "", "messages");
  json b = chat_body("hi");
  b["temperature"] = "hot";
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "temperature");
  b = chat_body("hi");
  b["temperature"] = 7;
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "temperature");
  b = chat_body("hi");
  b["messages"][0]["role"] = "wizard";
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "messages[0].role");
  b = chat_body("hi");
  b["messages"][0]["content"] = 42;
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "messages[0].content");
  b = chat_body("hi");
  b["max_tokens"] = 100000;  // over --max-tokens-limit
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "max_tokens");
  b = chat_body("hi");
  b["logit_bias"] = {{"99999", 5}};
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "logit_bias");
  b["logit_bias"] = {{"abc", 5}};
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "logit_bias");
  b["logit_bias"] = {{"12", 500}};
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "logit_bias.12");
  b = chat_body("hi");
  b["n"] = 3;
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "n");
  b = chat_body("hi");
  b["tool_choice"] = "required";  // without tools
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "tool_choice");
  b = chat_body("hi");
  b["tools"] = {kWeatherTool};
  b["tool_choice"] = {{"type", "function"}, {"function", {{"name", "nope"}}}};
  expect_error(post(port(), chat, b.dump()), 400, "invalid_request_error", "", "tool_choice");
  b = chat_body("hi");
  b["model"] = "gpt-4o";
  expect_error(post(port(), chat, b.dump()), 404, "invalid_request_error", "model_not_found");
  // 1024-token context: a long message overflows it.
  std::string lengthy;
  for (int i = 0; i < 800; ++i) lengthy += "overflowing words ";
  expect_error(post(port(), chat, chat_body(lengthy).dump()), 400, "invalid_request_error", "context_length_exceeded");
  expect_error(post(port(), "/v1/nothing", "{}"), 404, "invalid_request_error", "unknown_url");
  expect_error(get(port(), "/nope"), 404, "invalid_request_error");
  EXPECT_TRUE(server_->alive());
}

TEST_F(Serve, GarbageNeverCrashesTheServer) {
  std::mt19937 rng(7);
  std::vector<std::string> bodies = {"", "null", "\"str\"", "{\"model\":", std::string(100, '['), std::string(100000, '{'),
                                     "{\"model\":\"tiny-qwen3moe-s11\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}",
                                     "{\"model\":\"tiny-qwen3moe-s11\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
                                     "{\"model\":\"tiny-qwen3moe-s11\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]}]}",
                                     "{\"model\":\"tiny-qwen3moe-s11\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-5}",
                                     "{\"model\":\"tiny-qwen3moe-s11\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e300}",
                                     "{\"model\":\"tiny-qwen3moe-s11\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":18446744073709551615,\"max_tokens\":1}",
                                     "{\"model\":\"tiny-qwen3moe-s11\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[]}}]}"};
  for (int i = 0; i < 40; ++i) {
    std::string junk(size_t(rng() % 300), '\0');
    for (char& c : junk) c = char(rng());
    bodies.push_back(junk);
  }
  for (const auto& body : bodies)
    for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
      auto r = post(port(), path, body);
      ASSERT_TRUE(r) << "no answer to " << body.substr(0, 60);
      EXPECT_TRUE(r->status == 200 || (r->status >= 400 && r->status < 500)) << r->status << " " << r->body;
      if (r->status != 200) {
        EXPECT_TRUE(json::parse(r->body).contains("error")) << r->body;
      }
    }
  // Raw bytes that are not HTTP at all.
  for (int i = 0; i < 5; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string junk = i == 0 ? "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n" : std::string(1000, char('A' + i)) + "\r\n\r\n";
    (void)!write(fd, junk.data(), junk.size());
    close(fd);
  }
  auto h = get(port(), "/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_TRUE(server_->alive());
}

TEST_F(Serve, MetricsCountRequestsTokensAndCache) {
  ASSERT_EQ(post(port(), "/v1/chat/completions", chat_body("count me", 2).dump())->status, 200);
  auto r = get(port(), "/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("flashfix_requests_total{route=\"chat\",code=\"200\"}"), std::string::npos) << r->body;
  EXPECT_GT(metric(port(), "flashfix_prompt_tokens_total"), 0);
  EXPECT_GE(metric(port(), "flashfix_prompt_tokens_cached_total"), 0);
  EXPECT_GE(metric(port(), "flashfix_prefix_cache_hit_ratio"), 0);
  EXPECT_EQ(metric(port(), "flashfix_requests_waiting"), 0);
  EXPECT_EQ(metric(port(), "flashfix_requests_running"), 0);
  EXPECT_GE(metric(port(), "flashfix_generation_tokens_per_second"), 0);
  EXPECT_GE(metric(port(), "flashfix_generations_total"), 1);
}

// A client that goes away mid-response, streamed or not (the JSON body is preceded by whitespace
// heartbeats exactly so this is noticed), cancels its generation long before its 4000 tokens.
TEST(ServeDisconnect, CancelsTheGenerationStreamedOrNot) {
  ServeProcess s({"--model", kModel, "--port", "0", "--threads", "2", "--ctx-size", "8192"});
  for (bool stream : {true, false}) {
    const double cancelled_before = metric(s.port(), "flashfix_generations_cancelled_total");
    const double tokens_before = metric(s.port(), "flashfix_completion_tokens_total");
    json body = chat_body("Talk forever", 4000);
    body["stream"] = stream;
    // Ban the end-of-turn specials (ids 4096 and up in this vocabulary) so only the disconnect can end it.
    for (int id = 4096; id < 4105; ++id) body["logit_bias"][std::to_string(id)] = -100;
    const int fd = open_stream(s.port(), body);
    ASSERT_GE(fd, 0);
    close(fd);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (metric(s.port(), "flashfix_generations_cancelled_total") <= cancelled_before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(metric(s.port(), "flashfix_generations_cancelled_total"), cancelled_before + 1) << "stream " << stream;
    EXPECT_EQ(metric(s.port(), "flashfix_requests_running"), 0);
    EXPECT_LT(metric(s.port(), "flashfix_completion_tokens_total") - tokens_before, 4000) << "stream " << stream;
  }
  const int status = s.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ServeLimits, ApiKeyBodySizeAndQueue) {
  ServeProcess s({"--model", kModel, "--port", "0", "--threads", "1", "--max-tokens-limit", "3000", "--api-key-env", "FF_TEST_KEY", "--max-body-bytes", "4096",
                  "--parallel", "1", "--max-queue", "0"},
                 {{"FF_TEST_KEY", "s3cret"}});
  const std::string body = chat_body("hi", 2).dump();
  expect_error(post(s.port(), "/v1/chat/completions", body), 401, "authentication_error", "invalid_api_key");
  expect_error(post(s.port(), "/v1/chat/completions", body, {{"Authorization", "Bearer wrong"}}), 401, "authentication_error");
  expect_error(get(s.port(), "/v1/models", {{"Authorization", "Basic s3cret"}}), 401, "authentication_error");
  const httplib::Headers auth = {{"Authorization", "Bearer s3cret"}};
  auto ok = post(s.port(), "/v1/chat/completions", body, auth);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(get(s.port(), "/health")->status, 200);  // health stays open for load balancers
  expect_error(post(s.port(), "/v1/chat/completions", std::string(8000, ' ') + body, auth), 413, "invalid_request_error",
               "request_too_large");

  // One slot, no queue: while a long generation holds the slot, the next request is refused.
  const int fd = open_stream(s.port(), long_stream_body(3000), "Authorization: Bearer s3cret\r\n");
  ASSERT_GE(fd, 0);
  expect_error(post(s.port(), "/v1/chat/completions", body, auth), 429, "rate_limit_error", "queue_full");
  close(fd);
  const int status = s.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ServeLimits, BadFlagsAreUsageErrors) {
  auto run = [](const std::string& args) {
    const int st = std::system((std::string(FLASHFIX_BIN) + " serve " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(run("--model " + kModel + " --api-key-env FF_SURELY_UNSET_VAR"), 2);
  EXPECT_EQ(run("--model " + kModel + " --port 70000"), 2);
  EXPECT_EQ(run("--model " + kModel + " --bogus"), 2);
  EXPECT_EQ(run("--port 0"), 2);
  EXPECT_EQ(run("--model /nonexistent.gguf --port 0"), 1);
}

// The official openai npm client (tests/serve_js, installed by scripts/setup.sh with npm ci) drives
// a server of its own through node:test.
TEST(ServeJs, OfficialOpenAiClient) {
  const std::string dir = std::string(FLASHFIX_SOURCE_DIR) + "/tests/serve_js";
  ASSERT_TRUE(std::ifstream(dir + "/node_modules/openai/package.json").good())
      << "the openai package is not installed: run 'npm ci' in " << dir << " (scripts/setup.sh does)";
  ServeProcess s({"--model", kModel, "--port", "0", "--threads", "2", "--ctx-size", "1024", "--api-key-env", "FF_JS_KEY"},
                 {{"FF_JS_KEY", "js-key"}});
  const std::string cmd = "cd " + dir + " && FLASHFIX_URL=" + s.url() + " FLASHFIX_API_KEY=js-key FLASHFIX_MODEL=" + kModelName +
                          " node --test 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("pass"), std::string::npos) << out;
  EXPECT_TRUE(s.alive());
}

}  // namespace
