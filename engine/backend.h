// The seam between the model description and the hardware that runs it.
//
// A Backend owns everything device-specific (weights in device memory, KV storage, kernels); the
// model description (Model, ModelConfig), tokenizer, sampler and the drivers above are shared. The
// CPU backend is the reference every other backend is compared against.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "engine/model.h"

namespace flashfix {

// One token stream's state on a backend: its KV cache and how many positions it holds.
class Sequence {
 public:
  virtual ~Sequence() = default;
  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }

 protected:
  Sequence(int64_t n_ctx) : n_ctx_(n_ctx) {}
  int64_t n_past_ = 0;
  int64_t n_ctx_;
};

enum class Logits { Last, All };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual const Model& model() const = 0;

  // A sequence able to hold n_ctx positions (sliding-window layers keep only their window).
  virtual std::unique_ptr<Sequence> new_sequence(int64_t n_ctx) = 0;

  // Runs `tokens` at positions seq.n_past() onward through the trunk, extending the sequence, and
  // writes float logits: [tokens.size() x n_vocab] for Logits::All, [n_vocab] for Logits::Last.
  // Throws std::length_error (and leaves the sequence unchanged) if the tokens do not fit n_ctx.
  virtual void forward(Sequence& seq, std::span<const int32_t> tokens, Logits which, float* logits) = 0;
};

// The reference CPU backend; n_threads <= 0 uses every core.
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int n_threads);

}  // namespace flashfix
