// Parsing and validating OpenAI request bodies into what the engine needs. Everything a client can
// get wrong (bad JSON, wrong types, out-of-range values, unsupported options) throws ApiError with a
// message naming the field, before any model work. Unknown top-level fields are ignored, as many
// clients send extras (user, metadata, ...); known fields are checked strictly.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/chat.h"
#include "engine/sampler.h"

namespace flashfix::server {

// Options shared by both generation endpoints.
struct GenerationParams {
  SamplerParams sampling{};
  std::optional<int64_t> max_tokens;  // as asked (max_tokens or max_completion_tokens); checked against the limits later
  std::vector<std::string> stop;      // up to 4 stop strings, matched on the generated text
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> added to its logit (-100 bans, as at OpenAI)
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
};

enum class ToolChoice { Auto, None, Required, Named };

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  nlohmann::ordered_json tools;  // null, or the request's array of {"type":"function","function":{..}}
  ToolChoice tool_choice = ToolChoice::Auto;
  std::string tool_choice_name;  // ToolChoice::Named
  bool parallel_tool_calls = true;
  bool enable_thinking = true;   // chat_template_kwargs.enable_thinking (Qwen3)
  GenerationParams gen;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;                 // text prompt, or
  std::vector<int32_t> prompt_tokens; // a prompt given as token ids
  GenerationParams gen;
};

// Parses the body as a JSON object, refusing nesting deeper than kMaxJsonDepth first (deep nesting is
// the one JSON shape that could exhaust a worker thread's stack in recursive copies).
constexpr int kMaxJsonDepth = 64;
nlohmann::ordered_json parse_json_body(std::string_view body);

ChatRequest parse_chat_request(const nlohmann::ordered_json& body);
CompletionRequest parse_completion_request(const nlohmann::ordered_json& body);

}  // namespace flashfix::server
