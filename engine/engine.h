// The engine's main API: one loaded model serving generation requests from any number of threads.
//
// Callers hand over the whole token context of a request every time (an agent re-renders its
// conversation each turn); the engine finds the longest prefix whose KV it still holds and computes
// only the rest. Every front end (generate, fix, ci, batch, serve) goes through this class, so the
// prefix cache and the scheduler serve them all; a single sequence is just one request in flight.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "engine/draft.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace flashfix {

struct EngineOptions {
  std::string backend = "cpu";  // make_backend's name: "cpu" or "cuda"
  int threads = 0;             // <= 0: every core
  bool repack_weights = true;  // cpu: pack matrices into the GEMM layout at load (make_cpu_backend)
  int64_t n_ctx = 8192;        // the longest context (prompt + generated) one request may have
  int max_sequences = 8;       // requests decoded together; more wait in the queue
  uint64_t kv_budget_bytes = 0;  // KV memory for all sequences and the prefix cache; 0: 2 x n_ctx positions
  bool prefix_cache = true;    // false: every request computes its whole prompt
  std::string cache_dir{};     // non-empty: prefix blocks persist there across processes
  uint64_t cache_dir_max_bytes = uint64_t(8) << 30;  // the cache directory is trimmed to this size
  // Speculative decoding (draft.h): which sources draft, and the most tokens one pass verifies per
  // sequence beyond its own (0: none). Auto uses every source the model supports, each only while it
  // pays (draft_control.h). The output is token for token what plain decoding gives, seeded sampling
  // included: each verified row is sampled as plain decoding would, and a draft is accepted when it
  // equals that sample (for a deterministic draft, exactly the speculative-sampling rule).
  DraftMode draft = DraftMode::Auto;
  int draft_max = 4;
  bool draft_always = false;  // draft draft_max tokens whenever a source has them, paying or not (tests, bench)
};

enum class FinishReason {
  Length,     // max_tokens generated
  Stop,       // an end-of-generation or stop token was sampled (Result::stop_token)
  Cancelled,  // the stop token was requested or on_token returned false
};

struct Request {
  std::vector<int32_t> prompt;      // the full context, never empty
  int64_t max_tokens = 256;
  SamplerParams sampling{};
  std::vector<int32_t> stop_tokens{};  // end the request besides the model's end-of-generation tokens
  // Generate max_tokens even past the model's end-of-generation tokens (benchmarks on random-weight
  // models, whose greedy output may reach one at any point); stop_tokens still end the request.
  bool ignore_eog = false;
  // Called on an engine thread before each sampling step; may set logits to -inf (constrained
  // decoding). Must not block. With speculation one pass samples several tokens: the calls still come
  // one token at a time, in order, each after on_token of the token before, so a constraint that
  // advances its state in on_token sees exactly the calls plain decoding makes.
  std::function<void(std::span<float> logits)> constrain{};
  // Called on an engine thread with each sampled token, the end token included; returning false
  // cancels the request. Must not block: it runs between batched steps of other requests.
  std::function<bool(int32_t token)> on_token{};
  std::stop_token stop{};           // a requested stop cancels the request, queued or running
  // Drafts for this request from this source instead of the engine's (replaying known output: bench
  // --spec-oracle, tests); made once when decoding starts, controlled like the engine's sources.
  std::function<std::unique_ptr<DraftSource>()> draft_source{};
};

// One draft source's work for a request.
struct DraftStats {
  std::string source;
  int64_t passes = 0;    // verify passes with its drafts
  int64_t drafted = 0;   // tokens it proposed
  int64_t accepted = 0;  // of those, accepted
};

struct Result {
  std::vector<int32_t> tokens;  // generated, without the end token
  FinishReason finish = FinishReason::Length;
  int32_t stop_token = -1;      // the end token when finish == Stop
  int64_t prompt_tokens = 0;    // prompt.size()
  int64_t cached_tokens = 0;    // prompt positions whose KV was reused
  int64_t computed_tokens = 0;  // prompt positions computed for this request
  double ttft_ms = 0;           // submission to the first sampled token
  double prefill_ms = 0, decode_ms = 0;
  int64_t sampling_passes = 0;  // forward passes after which tokens were sampled (drafts: fewer than tokens)
  std::vector<DraftStats> drafts;  // per draft source the request had
  // Weight bytes the backend read in the passes after the prompt that this request took part in
  // (a pass shared with other requests counts whole for each).
  uint64_t decode_weight_bytes = 0;
};

struct LogitsResult {
  std::vector<float> logits;    // [prompt_tokens x n_vocab]
  int64_t prompt_tokens = 0, cached_tokens = 0, computed_tokens = 0;
};

class Engine {
 public:
  // Loads the model file (mmap) and its tokenizer; throws std::runtime_error naming what is wrong.
  static std::unique_ptr<Engine> open(const std::string& model_path, const EngineOptions& options);
  virtual ~Engine() = default;

  virtual const Model& model() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual const EngineOptions& options() const = 0;

  // Runs one request to its end; thread-safe, concurrent callers share the engine (their requests
  // are decoded together, see docs/ENGINE.md). Throws std::invalid_argument (empty prompt, token
  // outside the vocabulary) or std::length_error (the prompt plus max_tokens exceeds n_ctx, or needs
  // more KV blocks than the memory budget holds) before any work is done.
  virtual Result generate(const Request& request) = 0;

  // The logits of every prompt position (checking against a reference). Positions whose KV comes
  // from the prefix cache get theirs from the hidden state stored with it; the rest are computed.
  // Engines that only generate (test doubles recording requests) need not provide it: the default
  // throws std::logic_error.
  virtual LogitsResult prompt_logits(std::span<const int32_t> prompt);
};

}  // namespace flashfix
