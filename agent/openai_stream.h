// Reassembles an OpenAI chat-completions stream (server-sent events of chat.completion.chunk
// objects) into one assistant message: delta.content and delta.reasoning_content appended, and
// delta.tool_calls fragments merged by their index (the id and name arrive once, the arguments JSON
// text in pieces). Bytes may arrive split anywhere, lines included.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/tool_calls.h"

namespace flashfix::agent {

class OpenAIStream {
 public:
  // on_event (optional) sees the live view: text deltas as they come, CallBegin when a call's name
  // first appears, its argument fragments, and CallEnd for every call at the end of the stream.
  explicit OpenAIStream(std::function<void(const StreamEvent&)> on_event = {});

  // Throws std::runtime_error for a chunk that is not JSON, or an {"error": ...} event.
  void feed(std::string_view bytes);
  // Flushes a last event without its blank line; throws when the stream never delivered a chunk.
  void finish();

  bool done() const { return done_; }  // "data: [DONE]" seen
  // {"role":"assistant","content","reasoning_content","tool_calls":[{"id","type","function":{"name","arguments"}}]}
  nlohmann::json message() const;
  const std::string& finish_reason() const { return finish_reason_; }
  const nlohmann::json& usage() const { return usage_; }  // the last chunk's "usage", if the server sent one

 private:
  struct Call { std::string id, name, arguments; bool begun = false; };
  void event(std::string_view data);
  void emit(StreamEvent e) const {
    if (on_event_) on_event_(e);
  }

  std::function<void(const StreamEvent&)> on_event_;
  std::string pending_;  // bytes of an unfinished line
  std::string data_;     // the data lines of the event being read
  bool done_ = false, any_ = false;
  std::string content_, reasoning_, finish_reason_;
  std::map<int, Call> calls_;  // by delta index
  nlohmann::json usage_;
};

}  // namespace flashfix::agent
