// Engine over one backend sequence: requests run one at a time, and a request whose prompt extends
// the tokens the sequence already holds computes only the extension (an agent's append-only turns).
#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <stdexcept>

#include "engine/backend.h"

namespace flashfix {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

class SerialEngine final : public Engine {
 public:
  SerialEngine(const std::string& path, const EngineOptions& options) : options_(options) {
    if (options_.n_ctx <= 0) throw std::invalid_argument("the context size must be positive");
    model_ = Model::load(path);
    tokenizer_ = Tokenizer::from_gguf(model_->file());
    if (tokenizer_->n_vocab() > model_->config().n_vocab)
      throw std::runtime_error(path + ": the tokenizer has " + std::to_string(tokenizer_->n_vocab()) +
                               " tokens but the model's embedding only " + std::to_string(model_->config().n_vocab));
    backend_ = make_cpu_backend(*model_, options_.threads);
  }

  const Model& model() const override { return *model_; }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const EngineOptions& options() const override { return options_; }

  Result generate(const Request& r) override {
    const int64_t n_prompt = int64_t(r.prompt.size());
    if (n_prompt == 0) throw std::invalid_argument("the prompt is empty");
    if (r.max_tokens < 0) throw std::invalid_argument("max_tokens must not be negative");
    for (int32_t t : r.prompt)
      if (t < 0 || t >= model_->config().n_vocab)
        throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
    if (n_prompt + r.max_tokens > options_.n_ctx)
      throw std::length_error("the prompt (" + std::to_string(n_prompt) + " tokens) plus max_tokens (" +
                              std::to_string(r.max_tokens) + ") exceeds the context of " + std::to_string(options_.n_ctx));

    const auto submitted = Clock::now();
    std::unique_lock lock(mu_);
    Result res;
    res.prompt_tokens = n_prompt;
    if (r.stop.stop_requested()) return res.finish = FinishReason::Cancelled, res;

    // Reuse the held sequence when it is a strict prefix of this prompt (one position must remain to
    // produce the first logits); anything else starts over.
    const bool extends = options_.prefix_cache && seq_ && int64_t(held_.size()) < n_prompt &&
                         std::equal(held_.begin(), held_.end(), r.prompt.begin());
    if (!extends) {
      seq_ = backend_->new_sequence(options_.n_ctx);
      held_.clear();
    }
    res.cached_tokens = int64_t(held_.size());
    res.computed_tokens = n_prompt - res.cached_tokens;

    logits_.resize(size_t(model_->config().n_vocab));
    const auto t0 = Clock::now();
    std::span<const int32_t> todo(r.prompt.data() + res.cached_tokens, size_t(res.computed_tokens));
    held_.assign(r.prompt.begin(), r.prompt.end());
    try {
      backend_->forward(*seq_, todo, Logits::Last, logits_.data());
    } catch (...) {
      seq_.reset(), held_.clear();  // a half-extended sequence is not reusable
      throw;
    }
    res.prefill_ms = ms_since(t0);

    Sampler sampler(r.sampling);
    std::vector<int32_t> history = r.prompt;
    const auto t1 = Clock::now();
    for (int64_t i = 0; i < r.max_tokens; ++i) {
      if (r.stop.stop_requested()) return finish(res, FinishReason::Cancelled, t1);
      if (r.constrain) r.constrain(logits_);
      const int32_t tok = sampler.sample(logits_, history);
      if (i == 0) res.ttft_ms = ms_since(submitted);
      const bool end = tokenizer_->is_eog(tok) || std::ranges::find(r.stop_tokens, tok) != r.stop_tokens.end();
      if (r.on_token && !r.on_token(tok)) return finish(res, FinishReason::Cancelled, t1);
      if (end) {
        res.stop_token = tok;
        return finish(res, FinishReason::Stop, t1);
      }
      res.tokens.push_back(tok);
      history.push_back(tok);
      if (i + 1 == r.max_tokens) break;  // the last token's KV is computed only if a later prompt extends it
      backend_->forward(*seq_, std::span<const int32_t>(&tok, 1), Logits::Last, logits_.data());
      held_.push_back(tok);
    }
    return finish(res, FinishReason::Length, t1);
  }

 private:
  Result& finish(Result& res, FinishReason why, Clock::time_point decode_start) {
    res.finish = why;
    res.decode_ms = ms_since(decode_start);
    return res;
  }

  EngineOptions options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  std::mutex mu_;
  std::unique_ptr<Sequence> seq_;  // the one cached sequence and the tokens whose KV it holds
  std::vector<int32_t> held_;
  std::vector<float> logits_;
};

}  // namespace

std::unique_ptr<Engine> Engine::open(const std::string& model_path, const EngineOptions& options) {
  return std::make_unique<SerialEngine>(model_path, options);
}

}  // namespace flashfix
