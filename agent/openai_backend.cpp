// Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp server, ...) as a model
// backend: POST {base}/chat/completions with the conversation and the tools, streamed as server-sent
// events (agent/openai_stream.h) or as one JSON response.
#include <cstdlib>

#include <httplib.h>

#include "agent/model_backend.h"
#include "agent/openai_stream.h"
#include "engine/json_text.h"

namespace flashfix::agent {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Url {
  std::string origin;  // scheme://host[:port], what httplib::Client takes
  std::string path;    // without a trailing slash, e.g. "/v1"
};

Url split_url(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0))
    throw BackendError("openai: the endpoint URL must start with http:// or https:// (got \"" + url + "\")");
  const size_t path_start = url.find('/', scheme_end + 3);
  Url u{url.substr(0, path_start), path_start == std::string::npos ? "" : url.substr(path_start)};
  if (u.origin.size() == scheme_end + 3) throw BackendError("openai: the endpoint URL has no host: \"" + url + "\"");
  while (u.path.ends_with('/')) u.path.pop_back();
  return u;
}

// The conversation in the API's shape: assistant tool calls carry their arguments as a JSON string,
// tool results point back to their call.
json to_openai(const std::vector<ChatMessage>& messages) {
  json out = json::array();
  for (const ChatMessage& m : messages) {
    json j{{"role", m.role}, {"content", m.content}};
    if (m.role == "assistant" && !m.tool_calls.empty()) {
      if (m.content.empty()) j["content"] = nullptr;
      json calls = json::array();
      for (const ToolCall& c : m.tool_calls) {
        // A malformed call is sent back as the model wrote it, so its error observation makes sense.
        std::string args = c.arguments.is_string() ? c.arguments.get<std::string>() : c.arguments.dump();
        calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", args}}}});
      }
      j["tool_calls"] = std::move(calls);
    }
    if (m.role == "tool") j["tool_call_id"] = m.tool_call_id;
    out.push_back(std::move(j));
  }
  return out;
}

// The message of an error response ({"error": {"message", "code"}}), or the body's start.
std::string error_text(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"];
    if (e.is_string()) return e;
  }
  return body.substr(0, 300);
}

bool is_context_overflow(int status, const std::string& body) {
  if (status != 400) return false;
  json j = json::parse(body, nullptr, false);
  const json* e = j.is_object() && j.contains("error") && j["error"].is_object() ? &j["error"] : nullptr;
  return (e && e->value("code", json()).is_string() && (*e)["code"] == "context_length_exceeded") ||
         body.find("context length") != std::string::npos || body.find("context_length") != std::string::npos;
}

class OpenAIBackend final : public ModelBackend {
 public:
  OpenAIBackend(const OpenAIEndpoint& endpoint, GenerationSettings settings)
      : endpoint_(endpoint), settings_(settings), url_(split_url(endpoint.base_url)) {
    if (endpoint_.model.empty()) throw BackendError("openai: no model name given for " + endpoint_.base_url);
  }

  std::string describe() const override { return "openai:" + endpoint_.base_url + ":" + endpoint_.model; }

  ModelTurn complete(const std::vector<ChatMessage>& messages, const ojson& tools, const StreamSink* sink,
                     std::stop_token stop) override {
    json body{{"model", endpoint_.model}, {"messages", to_openai(messages)}, {"max_tokens", settings_.max_tokens}};
    if (!tools.empty()) {
      body["tools"] = tools;
      if (settings_.tool_choice == ToolChoice::Required) body["tool_choice"] = "required";
    }
    const SamplerParams& sp = settings_.sampling;
    body["temperature"] = sp.temperature > 0 ? sp.temperature : 0.f;
    if (sp.temperature > 0 && sp.top_p < 1) body["top_p"] = sp.top_p;
    if (sp.seed) body["seed"] = sp.seed;
    if (endpoint_.stream) {
      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
    }

    httplib::Client client(url_.origin);
    const auto timeout = std::chrono::duration<double>(endpoint_.timeout_seconds);
    client.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(std::min(timeout, std::chrono::duration<double>(30))));
    client.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    client.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));

    httplib::Request req;
    req.method = "POST";
    req.path = url_.path + "/chat/completions";
    req.set_header("Content-Type", "application/json");
    req.set_header("Accept", endpoint_.stream ? "text/event-stream" : "application/json");
    if (!endpoint_.api_key_env.empty())
      if (const char* key = std::getenv(endpoint_.api_key_env.c_str()); key && *key)
        req.set_header("Authorization", std::string("Bearer ") + key);
    req.body = json_text(body);

    int status = 0;
    std::string received;  // a non-streamed body, or an error response
    OpenAIStream stream(sink && sink->on_event ? sink->on_event : std::function<void(const StreamEvent&)>{});
    std::string stream_error;
    const auto t0 = Clock::now();
    double ttft_ms = 0;
    req.response_handler = [&](const httplib::Response& res) {
      status = res.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (stop.stop_requested()) return false;
      if (!endpoint_.stream || status != 200) {
        received.append(data, n);
        return true;
      }
      if (ttft_ms == 0) ttft_ms = ms_since(t0);
      try {
        stream.feed(std::string_view(data, n));
      } catch (const std::exception& e) {
        stream_error = e.what();
        return false;
      }
      return true;
    };
    httplib::Result result = client.send(req);
    const double total_ms = ms_since(t0);

    ModelTurn turn;
    if (stop.stop_requested()) {
      turn.stats.finish = "cancelled";
      return turn;
    }
    const std::string where = " (POST " + endpoint_.base_url + "/chat/completions)";
    if (!stream_error.empty()) throw BackendError("openai: bad stream" + where + ": " + stream_error);
    if (!result) throw BackendError("openai: request failed" + where + ": " + httplib::to_string(result.error()));
    if (status != 200) {
      std::string msg = "openai: HTTP " + std::to_string(status) + where + ": " + error_text(received);
      if (status == 401 || status == 403) msg += " (check the API key in $" + endpoint_.api_key_env + ")";
      if (is_context_overflow(status, received)) throw ContextOverflow(msg);
      throw BackendError(msg);
    }

    json message, usage;
    std::string finish;
    if (endpoint_.stream) {
      try {
        stream.finish();
      } catch (const std::exception& e) {
        throw BackendError("openai: bad stream" + where + ": " + e.what());
      }
      message = stream.message();
      usage = stream.usage();
      finish = stream.finish_reason();
    } else {
      json j = json::parse(received, nullptr, false);
      if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
          !j["choices"][0].is_object() || !j["choices"][0].contains("message") || !j["choices"][0]["message"].is_object())
        throw BackendError("openai: the response has no choices[0].message" + where + ": " + received.substr(0, 300));
      message = j["choices"][0]["message"];
      finish = j["choices"][0].value("finish_reason", json()).is_string() ? j["choices"][0]["finish_reason"].get<std::string>() : "";
      usage = j.value("usage", json());
      ttft_ms = total_ms;
      if (sink && sink->on_event) emit_whole(message, *sink);
    }
    try {
      turn.message = parse_openai_message(message);
    } catch (const std::exception& e) {
      throw BackendError("openai: bad message" + where + ": " + e.what());
    }
    turn.raw = json_text(message);
    if (usage.is_object()) {
      turn.stats.prompt_tokens = usage.value("prompt_tokens", int64_t(0));
      turn.stats.generated_tokens = usage.value("completion_tokens", int64_t(0));
      if (auto d = usage.find("prompt_tokens_details"); d != usage.end() && d->is_object())
        turn.stats.cached_tokens = d->value("cached_tokens", int64_t(0));
    }
    // The API reports no prefill/decode split: time to the first byte is the prefill, the rest decode.
    turn.stats.ttft_ms = ttft_ms;
    turn.stats.prefill_ms = ttft_ms;
    turn.stats.decode_ms = total_ms - ttft_ms;
    turn.stats.finish = finish == "length" ? "length" : !turn.message.calls.empty() ? "tool_calls" : "stop";
    return turn;
  }

 private:
  static void emit_whole(const json& message, const StreamSink& sink) {
    auto text = [&](const char* key) {
      auto it = message.find(key);
      return it != message.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (auto r = text("reasoning_content"); !r.empty()) sink.on_event(stream_event(StreamEvent::Reasoning, r));
    if (auto c = text("content"); !c.empty()) sink.on_event(stream_event(StreamEvent::Content, c));
    if (auto calls = message.find("tool_calls"); calls != message.end() && calls->is_array()) {
      for (size_t i = 0; i < calls->size(); ++i) {
        const json& c = (*calls)[i];
        const json fn = c.value("function", json::object());
        sink.on_event(stream_event(StreamEvent::CallBegin, "", int(i), c.value("id", ""), fn.value("name", "")));
        if (fn.contains("arguments"))
          sink.on_event(stream_event(StreamEvent::CallArguments, fn["arguments"].is_string() ? fn["arguments"].get<std::string>() : fn["arguments"].dump(), int(i)));
        sink.on_event(stream_event(StreamEvent::CallEnd, "", int(i)));
      }
    }
  }

  OpenAIEndpoint endpoint_;
  GenerationSettings settings_;
  Url url_;
};

}  // namespace

std::unique_ptr<ModelBackend> make_openai_backend(const OpenAIEndpoint& endpoint, GenerationSettings settings) {
  return std::make_unique<OpenAIBackend>(endpoint, settings);
}

}  // namespace flashfix::agent
