// Constrained decoding for a chat request with tools: the agent's CallConstraint keeps every call
// well-formed (tool names, parameter names, value types from the schemas), and tool_choice decides
// whether a call may or must happen:
//   auto      calls optional, well-formed when made;
//   none      the call-opening token is masked, so no call can start;
//   required  until a call has started, only the call-opening token may be sampled;
//   named     as required, with the grammar built from that one tool, so the call names it.
#pragma once
#include <cstdint>
#include <memory>
#include <span>

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
  ToolChoiceConstraint(const Tokenizer& tok, ChatFormat format, const nlohmann::ordered_json& tools, ToolChoice choice,
                       const std::string& name);

  void apply(std::span<float> logits) const;
  void accept(int32_t token);

 private:
  ToolChoice choice_;
  int32_t call_open_ = -1;  // the `<tool_call>` token
  bool call_started_ = false;
  std::unique_ptr<agent::CallConstraint> grammar_;
};

}  // namespace flashfix::server
