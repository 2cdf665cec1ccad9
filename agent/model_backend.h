// What the agent loop talks to: one assistant turn at a time for the conversation so far. Three
// implementations: the embedded engine (shared by every concurrent task), an OpenAI-compatible HTTP
// endpoint, and a scripted backend that replays turns from a file (tests, demos, `flashfix replay`).
// The loop does not care which one it has.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/tool_calls.h"
#include "engine/chat.h"
#include "engine/engine.h"
#include "engine/sampler.h"

namespace flashfix::agent {

struct TurnStats {
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
  double ttft_ms = 0, prefill_ms = 0, decode_ms = 0;
  std::string finish;  // "stop", "length", "tool_calls", "cancelled"
  nlohmann::json to_json() const;
};

struct ModelTurn {
  std::string raw;        // the assistant text as generated (engine) or as received
  ParsedMessage message;  // reasoning, content, calls
  TurnStats stats;
};

// A StreamEvent built field by field (its aggregate order is the calls helper's business).
inline StreamEvent stream_event(StreamEvent::Kind kind, std::string text, int call_index = -1, std::string call_id = {},
                                std::string call_name = {}) {
  StreamEvent e{};
  e.kind = kind;
  e.text = std::move(text);
  e.call_index = call_index;
  e.call_id = std::move(call_id);
  e.call_name = std::move(call_name);
  return e;
}

struct StreamSink {  // optional live view for the terminal front end
  std::function<void(const StreamEvent&)> on_event;
};

// Infrastructure failures (connection refused, HTTP errors, a bad payload, engine errors): the loop
// reports them as Outcome::InfrastructureError (ci exit code 3), never as the model's fault.
struct BackendError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The conversation no longer fits the model's context: the loop ends the run as a spent budget.
struct ContextOverflow : BackendError {
  using BackendError::BackendError;
};

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  virtual std::string describe() const = 0;  // "engine:model.gguf", "openai:http://host/v1:model", "scripted:file"
  // One assistant turn for the conversation so far (append-only: the loop never rewrites earlier
  // messages). Throws BackendError for infrastructure failures; a requested stop ends the turn early
  // with stats.finish == "cancelled".
  virtual ModelTurn complete(const std::vector<ChatMessage>& messages, const nlohmann::ordered_json& tools,
                             const StreamSink* sink, std::stop_token stop) = 0;
};

enum class ToolChoice {
  Auto,      // the model decides whether a turn calls tools
  Required,  // every turn starts with a call: OpenAI's tool_choice "required"; on the engine the
             // prompt ends with the format's call opener (so the call is constrained from its first token)
};

struct GenerationSettings {
  int64_t max_tokens = 2048;  // per turn
  SamplerParams sampling{};
  bool constrained = true;  // engine only: grammar-constrained tool calls (agent/call_constraint.h)
  ToolChoice tool_choice = ToolChoice::Auto;
};

// Shares the engine: concurrent agents each hold their own backend over one Engine.
std::unique_ptr<ModelBackend> make_engine_backend(Engine& engine, GenerationSettings settings);

struct OpenAIEndpoint {
  std::string base_url;  // e.g. "http://localhost:8080/v1"; POSTs to {base_url}/chat/completions
  std::string model;
  std::string api_key_env = "OPENAI_API_KEY";  // empty name or unset variable: no Authorization header
  bool stream = true;                          // server-sent events
  double timeout_seconds = 600;                // per request (read timeout between bytes)
};
// Throws BackendError for a malformed base_url (not http:// or https://).
std::unique_ptr<ModelBackend> make_openai_backend(const OpenAIEndpoint& endpoint, GenerationSettings settings);

// A JSONL file of assistant turns, replayed in order: lines {"raw": "..."} (parsed in `format`) or
// {"content": "...", "reasoning_content": "...", "tool_calls": [{"name", "arguments"}]} (arguments an
// object or a JSON string, as OpenAI sends it), or a trajectory file (agent/trajectory.h), whose
// "model" lines are replayed. Throws BackendError when the file is unreadable or malformed (naming
// the line); complete() throws BackendError once the script is exhausted.
std::unique_ptr<ModelBackend> make_scripted_backend(const std::filesystem::path& script,
                                                    ChatFormat format = ChatFormat::Qwen3);

}  // namespace flashfix::agent
