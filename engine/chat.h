// Chat formatting: renders a conversation into the prompt text of a model's chat template.
//
// One direct renderer per supported template (no Jinja engine). The templates in
// ../shared/templates are the spec; with append_only=false the output is byte-identical to what
// Hugging Face transformers produces from them (tests/data/chat holds fixtures made that way).
//
// Append-only mode. The agent's prefix cache needs render(first N+1 messages) to start with
// render(first N messages) (both without generation prompt). The real templates break this in two
// places, so append_only=true changes exactly these and nothing else:
//  1. Historical reasoning. Qwen3 re-emits `<think>` only for assistant turns after the last user
//     query (and, there, only for the last message or when the reasoning is non-empty); Step-3.5
//     only after the last user query. A new user message therefore rewrites older assistant turns.
//     Append-only renders every assistant turn with its think block, as it was generated: Qwen3
//     `<think>\n{reasoning}\n</think>\n\n{content}` (an empty block `<think>\n\n</think>\n\n` when
//     there is no reasoning, which is exactly what enable_thinking=false prompted), Step-3.5
//     `<think>\n{reasoning}\n</think>\n{content}`. Qwen3-Coder has no reasoning: no change.
//  2. Consecutive tool results share one turn, closed by `<|im_end|>\n` only after the last of them
//     (all three formats). Appending another result would delete that closer, so when the
//     conversation ends in a tool result and no generation prompt is asked for, append-only leaves
//     the turn open; the closer is emitted by whatever comes next (a non-tool message or the
//     generation prompt).
// In append-only mode the generation prompt is also a prefix of the rendered assistant turn that
// answers it, when that turn is stored as generated (with enable_thinking=false for Qwen3: no
// reasoning).
//
// Semantics shared with the templates: empty reasoning_content means "absent", so a content of the
// form `<think>R</think>C` is split into reasoning R and content C. Step-3.5 contents and reasoning
// are whitespace-trimmed first, as llama.cpp does for this model (its loops on untrimmed history).
// Key order in tools and arguments is kept (nlohmann::ordered_json): the model generated arguments
// in some order and the cache only matches if they are re-rendered in that order. A caller holding
// nlohmann::json (sorted keys) converts implicitly, losing only the original order.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace flashfix {

enum class ChatFormat { Qwen3, Qwen3Coder, Step35 };

struct ToolCall {
  std::string id{};  // not rendered by any template; kept for the agent's bookkeeping
  std::string name{};
  // An object of arguments. Qwen3 also accepts a JSON string, emitted verbatim: storing the raw text
  // the model generated keeps the re-rendered call byte-identical to it.
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
};

struct ChatMessage {
  std::string role{};  // system, user, assistant or tool
  std::string content{};
  std::string reasoning_content{};  // assistant only
  std::vector<ToolCall> tool_calls{};  // assistant only
  std::string tool_call_id{};  // tool only; not rendered
  std::string name{};  // Step-3.5 renders a non-first system message named "observation" as role observation
};

struct RenderOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = true;  // Qwen3 only: false pre-fills an empty think block in the prompt
  bool append_only = false;     // see the header comment
  std::string bos_text{};         // Step-3.5 only: the template starts with {{bos_token}}
};

// Picks the format from the GGUF architecture and its tokenizer.chat_template text (may be empty).
ChatFormat detect_chat_format(std::string_view arch, std::string_view chat_template);

// tools: null or an array of OpenAI-style tools ({"type":"function","function":{"name":..}} or the
// bare function object). Throws std::invalid_argument on an unknown role, a tool message without
// content, malformed tools or tool-call arguments that the format cannot render.
std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages,
                        const nlohmann::ordered_json& tools, const RenderOptions& options);

}  // namespace flashfix
