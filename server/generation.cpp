#include "server/generation.h"

#include <algorithm>

namespace flashfix::server {

Generation::Generation(Engine& engine, Metrics& metrics, GenerationSpec spec)
    : metrics_(metrics),
      tokenizer_(engine.tokenizer()),
      stop_tokens_(spec.stop_tokens),
      text_stream_(spec.stop),
      constraint_(std::move(spec.constraint)) {
  if (spec.chat_format)
    parser_ = spec.tools.is_null() ? std::make_unique<agent::StreamParser>(*spec.chat_format, spec.starts_in_reasoning)
                                   : std::make_unique<agent::StreamParser>(*spec.chat_format, spec.starts_in_reasoning, spec.tools);
  metrics_.waiting.fetch_add(1);
  thread_ = std::thread([this, &engine, spec = std::move(spec)]() mutable { run(engine, std::move(spec)); });
}

Generation::~Generation() {
  stop_.request_stop();
  thread_.join();
}

void Generation::cancel() { stop_.request_stop(); }

void Generation::run(Engine& engine, GenerationSpec spec) {
  Request req;
  req.prompt = std::move(spec.prompt);
  req.max_tokens = spec.max_tokens;
  req.sampling = spec.sampling;
  req.stop = stop_.get_token();
  req.stop_tokens = std::move(spec.stop_tokens);
  // Biases first, so a grammar's mask always has the last word.
  if (constraint_ || !spec.logit_bias.empty())
    req.constrain = [this, bias = std::move(spec.logit_bias)](std::span<float> logits) {
      for (auto [id, b] : bias) logits[size_t(id)] += b;
      if (constraint_) constraint_->apply(logits);
    };
  req.on_token = [this](int32_t token) { return on_token(token); };
  Result res;
  std::string error;
  try {
    res = engine.generate(req);
  } catch (const std::exception& e) {
    error = e.what();
  }
  (started_ ? metrics_.running : metrics_.waiting).fetch_sub(1);
  // A stop string ends the request through on_token's refusal, which the engine reports as a
  // cancellation; only a client that went away counts as cancelled.
  const bool client_cancelled = res.finish == FinishReason::Cancelled && !stop_string_;
  metrics_.count_generation(res.prompt_tokens, res.cached_tokens, int64_t(res.tokens.size()), client_cancelled);

  std::lock_guard lock(mu_);
  emit(text_stream_.finish());
  if (parser_) {
    auto events = parser_->finish();
    pending_.insert(pending_.end(), std::make_move_iterator(events.begin()), std::make_move_iterator(events.end()));
  }
  result_ = std::move(res);
  error_ = std::move(error);
  done_ = true;
  cv_.notify_all();
}

bool Generation::on_token(int32_t token) {
  if (!started_) {
    started_ = true;
    metrics_.waiting.fetch_sub(1);
    metrics_.running.fetch_add(1);
  }
  metrics_.count_token();
  if (constraint_) constraint_->accept(token);
  // The end token closes the reply; it is not part of the text (its piece would be "<|im_end|>").
  if (tokenizer_.is_eog(token) || std::ranges::find(stop_tokens_, token) != stop_tokens_.end()) return !stop_.stop_requested();
  std::string text = text_stream_.push(tokenizer_.token_to_piece(token));
  {
    std::lock_guard lock(mu_);
    emit(text);
  }
  cv_.notify_all();
  if (text_stream_.stopped()) {
    stop_string_ = true;
    return false;
  }
  return !stop_.stop_requested();
}

void Generation::emit(const std::string& text) {
  if (text.empty()) return;
  text_ += text;
  if (!parser_) {
    agent::StreamEvent e;
    e.kind = agent::StreamEvent::Content;
    e.text = text;
    pending_.push_back(std::move(e));
    return;
  }
  auto events = parser_->feed(text);
  pending_.insert(pending_.end(), std::make_move_iterator(events.begin()), std::make_move_iterator(events.end()));
}

bool Generation::next(std::vector<agent::StreamEvent>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (pending_.empty() && !done_) cv_.wait_for(lock, timeout, [&] { return !pending_.empty() || done_; });
  out.insert(out.end(), std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
  pending_.clear();
  return done_;
}

std::string Generation::finish_reason() const {
  if (stop_string_) return "stop";
  if (result_.finish == FinishReason::Length) return "length";
  if (parser_)
    for (const auto& call : parser_->message().calls)
      if (call.error.empty()) return "tool_calls";
  return "stop";
}

}  // namespace flashfix::server
