// One request running on the engine, decoupled from the HTTP connection that asked for it.
//
// The engine calls on_token on its own thread between batched steps, so that callback must never
// block on a slow client: it only turns the token into text (UTF-8 and stop strings), parses it
// (reasoning, content, tool calls) and queues the resulting events. The HTTP worker drains the
// queue and writes; when its write fails the client is gone and cancel() stops the engine's work,
// which frees the request's KV.
#pragma once
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "agent/tool_calls.h"
#include "engine/engine.h"
#include "server/metrics.h"
#include "server/text_stream.h"
#include "server/tool_choice_constraint.h"

namespace flashfix::server {

struct GenerationSpec {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 0;
  SamplerParams sampling{};
  std::vector<std::string> stop;
  std::vector<int32_t> stop_tokens;  // end the reply besides the model's end-of-generation tokens
  std::vector<std::pair<int32_t, float>> logit_bias;  // ids already checked against the vocabulary
  std::optional<ChatFormat> chat_format;  // set: the text is a chat reply, parsed into reasoning/content/calls
  bool starts_in_reasoning = false;       // the prompt ends inside an open <think> block
  nlohmann::ordered_json tools;           // the request's tools (null: none), to type XML argument values
  std::unique_ptr<ToolChoiceConstraint> constraint;
};

class Generation {
 public:
  // Starts the request on its own thread at once.
  Generation(Engine& engine, Metrics& metrics, GenerationSpec spec);
  ~Generation();  // cancels a generation still running and waits for the engine to let go of it
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Moves the events produced since the last call into out, waiting up to timeout when there are
  // none. Plain-text generations (no chat format) produce Content events. Returns true once the
  // generation has ended and out holds its last events.
  bool next(std::vector<agent::StreamEvent>& out, std::chrono::milliseconds timeout);
  void cancel();  // the client is gone

  // Valid once next() returned true.
  const Result& result() const { return result_; }
  const agent::ParsedMessage& message() const { return parser_->message(); }  // chat generations
  const std::string& text() const { return text_; }                           // all text emitted
  const std::string& error() const { return error_; }  // non-empty: the engine failed
  // "stop", "length" or "tool_calls" (a chat reply that ended normally with well-formed calls).
  std::string finish_reason() const;

 private:
  void run(Engine& engine, GenerationSpec spec);
  bool on_token(int32_t token);
  void emit(const std::string& text);  // caller holds mu_

  Metrics& metrics_;
  const Tokenizer& tokenizer_;
  std::vector<int32_t> stop_tokens_;
  TextStream text_stream_;
  std::unique_ptr<agent::StreamParser> parser_;
  std::unique_ptr<ToolChoiceConstraint> constraint_;
  std::stop_source stop_;
  bool started_ = false;    // a token has been produced (engine thread only)
  bool stop_string_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<agent::StreamEvent> pending_;
  bool done_ = false;
  Result result_;
  std::string text_, error_;
  std::thread thread_;  // last: started after everything above exists
};

}  // namespace flashfix::server
