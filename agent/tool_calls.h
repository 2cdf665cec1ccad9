// Tool calls out of model output: the three formats our models speak (Qwen3 JSON in <tool_call>,
// Qwen3-Coder / Step-3.5 XML <function=..><parameter=..>), OpenAI chat messages, and the same
// parse done incrementally while tokens stream in.
//
// Nothing here throws for model output. A call that cannot be read (bad JSON, no name, a parameter
// without its closing tag, a value of the wrong type) becomes a ParsedCall with `error` set, quoting
// what was wrong, so the loop can show it to the model and let it repair the call.
//
// Grammar accepted, for every format (the format only decides whether a bare `<function=` without
// `<tool_call>` opens a call; the XML-speaking models sometimes drop the wrapper):
//   <think> ... </think>       reasoning. A lone </think> with no reasoning or call before it means the
//                              prompt opened the block: everything before it is reasoning. (Later
//                              lone </think> tags are dropped.)
//   <tool_call> BODY </tool_call>
//       BODY is JSON `{"name": N, "arguments": {..}}` when it starts with `{`, else XML
//       `<function=N> (<parameter=P>VALUE</parameter>)* </function>`.
//       A missing </tool_call> (or </function>) at the end of the text is tolerated; a new
//       <tool_call> also ends the previous call. <tool_call> inside reasoning ends the reasoning
//       (what llama.cpp does for Step-3.5, whose prompt opens <think> itself).
//   anything else              content; calls are cut out, the rest is concatenated and trimmed.
// XML values are raw text: the single newline the templates put on each side is removed, and with
// the tools' schemas known the text is converted to the parameter's declared type ("42" -> 42 for
// an integer, True/true for a boolean, JSON text for objects and arrays). Without a schema a value
// stays a string unless it is a JSON object or array.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/chat.h"

namespace flashfix::agent {

struct ParsedCall {
  ToolCall call;      // name + arguments (ordered_json object); id "call_<n>" (n: index in the message) if none
  std::string error;  // non-empty: malformed (bad JSON, missing name, ...), worded for the model
  std::string raw;    // the text of the call as generated (for OpenAI calls: the function object's JSON)
};

struct ParsedMessage {
  std::string reasoning;  // text inside <think>...</think> (or before a lone </think>), trimmed
  std::string content;    // visible text, calls removed, trimmed
  std::vector<ParsedCall> calls;
};

ParsedMessage parse_assistant_text(ChatFormat format, std::string_view text);
// With the OpenAI tools array (as passed to render_chat): XML values get their declared types.
ParsedMessage parse_assistant_text(ChatFormat format, std::string_view text, const nlohmann::ordered_json& tools);

// {"content", "reasoning_content" (or "reasoning"), "tool_calls":[{"id","function":{"name","arguments":"<json>"}}]}.
// Endpoints that pass the model's raw text through (no server-side tool parser) put <think> and
// <tool_call> blocks into content; those are parsed out as well, after the structured calls.
ParsedMessage parse_openai_message(const nlohmann::json& message);

// Incremental: feed pieces as tokens arrive (a piece may split a tag or a UTF-8 sequence anywhere).
// Text is emitted as soon as it cannot be the start of a tag or an unfinished UTF-8 character, except
// whitespace that may turn out to be trailing (content and reasoning are trimmed).
struct StreamEvent {
  enum Kind { Reasoning, Content, CallBegin, CallArguments, CallEnd } kind;
  std::string text{};    // Reasoning/Content: new text; CallArguments: a fragment of the arguments JSON text
  int call_index = -1;   // CallBegin/CallArguments/CallEnd
  std::string call_id{}, call_name{};  // CallBegin
  std::string error{};   // CallEnd: the call's error (empty when well-formed)
};
// Reasoning events concatenated are message().reasoning and Content events message().content, with
// one exception: text before a lone </think> (see parse_assistant_text) goes out as Content, then
// again as Reasoning when the tag arrives; Content events then end with message().content.
// The CallArguments fragments of a call without error concatenate to JSON text of its arguments: the
// XML formats send one parameter at a time as each </parameter> arrives ("{\"path\":\"a.txt\"",
// ",\"line\":3", "}": exactly arguments.dump()); Qwen3 JSON sends the model's own text of the
// arguments object as it arrives (same value, the model's spacing). A malformed call may have sent
// fragments before its CallEnd carries the error.

class StreamParser {
 public:
  explicit StreamParser(ChatFormat format, bool starts_in_reasoning = false);
  StreamParser(ChatFormat format, bool starts_in_reasoning, const nlohmann::ordered_json& tools);
  ~StreamParser();
  StreamParser(StreamParser&&) noexcept;
  StreamParser& operator=(StreamParser&&) noexcept;

  std::vector<StreamEvent> feed(std::string_view piece);
  std::vector<StreamEvent> finish();     // flush at end of generation; feed() after finish() throws std::logic_error
  const ParsedMessage& message() const;  // everything so far; after finish() equal to parse_assistant_text of the whole text

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashfix::agent
