// The interactive view of an agent run for `flashfix fix`: the model's reasoning and text as they
// stream, each tool call and the head of its result, and a progress line per turn (speed, turn
// count, tokens). Colours only on a terminal.
#pragma once
#include <string>

#include "agent/agent.h"

namespace flashfix::cli {

class TerminalView {
 public:
  TerminalView(bool color, int max_turns);
  agent::AgentObserver observer();
  void print_diff(const std::string& diff) const;

 private:
  void on_stream(const agent::StreamEvent& e);
  void end_stream_line();
  std::string paint(const char* code, const std::string& text) const;

  bool color_;
  int max_turns_;
  int64_t total_generated_ = 0, total_prompt_ = 0;
  agent::StreamEvent::Kind last_kind_ = agent::StreamEvent::Content;
  bool mid_line_ = false;
  int streamed_calls_ = 0;  // calls shown while streaming whose results have not come yet
};

}  // namespace flashfix::cli
