// Constrained decoding for a chat request with tools: the agent's CallConstraint keeps every call
// well-formed (tool names, parameter names, value types from the schemas), and tool_choice decides
// whether a call may or must happen:
//   auto      calls optional, well-formed when made;
//   none      the call-opening token is masked, so no call can start;
//   required  until a call has started, only the call-opening token may be sampled;
//   named     as required, with the grammar built from that one tool, so the call names it.
// Once a call has closed, the turn may only end, after at most one newline, or open another call
// when parallel calls are allowed: a reply is content then calls, as the chat templates render it,
// and a model (least of all a random one) must not run on after its calls until max_tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/call_constraint.h"
#include "engine/chat.h"
#include "engine/tokenizer.h"
#include "server/request_parsing.h"

namespace flashfix::server {

class ToolChoiceConstraint {
 public:
  // Throws ApiError 400 when the tools cannot be turned into a grammar or the model has no single
  // call-opening token to force.
  // end_tokens end the turn after a call; newline (-1: none) may come once between or after calls.
  ToolChoiceConstraint(const Tokenizer& tok, std::shared_ptr<const agent::TokenTrie> trie, ChatFormat format,
                       const nlohmann::ordered_json& tools, ToolChoice choice, const std::string& name, bool parallel_calls,
                       std::vector<int32_t> end_tokens, int32_t newline);

  void apply(std::span<float> logits) const;
  void accept(int32_t token);

 private:
  ToolChoice choice_;
  int32_t call_open_ = -1;  // the `<tool_call>` token
  bool call_started_ = false;
  bool parallel_calls_;
  std::vector<int32_t> end_tokens_;
  int32_t newline_;
  bool newline_after_call_ = false;  // the one newline allowed after the last call was taken
  std::unique_ptr<agent::CallConstraint> grammar_;
};

}  // namespace flashfix::server
