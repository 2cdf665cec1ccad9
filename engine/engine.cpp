// The engine: a scheduler thread runs every request in flight as one sequence over a shared paged
// KV store, a batched step at a time (continuous batching). Callers block in generate() while the
// scheduler admits their request, reuses its longest cached prefix, feeds the rest of its prompt in
// chunks alongside the other sequences' decode tokens, and samples. A single request is simply the
// only sequence in the batch.
#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include <xxhash.h>

#include "engine/backend.h"
#include "engine/block_pool.h"
#include "engine/cpu_time.h"
#include "engine/draft_control.h"
#include "engine/kv_disk_cache.h"
#include "engine/prefix_cache.h"

namespace flashfix {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

constexpr int64_t B = kKvBlockTokens;
// Tokens per step over all sequences: decode tokens first, prompt chunks fill the rest, so a long
// prompt delays the others' next token by at most one micro-batch.
constexpr int64_t kStepTokens = kMaxUbatchTokens;

int64_t blocks_for(int64_t positions) { return (positions + B - 1) / B; }

// Everything besides the weights that decides what a KV row holds; the disk key adds the file hash.
std::string kv_identity(const ModelConfig& c) {
  std::string s = "flashfix-kv-f32 v1 block " + std::to_string(B) + " " + c.arch + " layers " + std::to_string(c.n_layer) +
                  " embd " + std::to_string(c.n_embd) + " hd " + std::to_string(c.head_dim) + "/" + std::to_string(c.v_head_dim) +
                  " window " + std::to_string(c.sliding_window) + " eps " + std::to_string(c.rms_eps);
  for (const LayerConfig& L : c.layers) {  // MTP layers too: their K/V rows are part of a Full block
    const RopeConfig& r = L.rope;
    s += " [" + std::string(L.mtp ? "mtp " : "") + std::to_string(L.n_head_kv) + (L.sliding ? "s " : "f ") + std::to_string(r.n_rot) + " " +
         std::to_string(r.freq_base) + " " + std::to_string(r.freq_scale) + " " + std::to_string(r.ext_factor) + " " +
         std::to_string(r.attn_factor) + " " + std::to_string(r.beta_fast) + " " + std::to_string(r.beta_slow) + " " +
         std::to_string(r.n_ctx_orig) + (r.use_freq_factors ? " ff]" : "]");
  }
  return s;
}

struct Job {
  const Request* request = nullptr;  // null for prompt_logits
  std::span<const int32_t> prompt;
  int64_t max_tokens = 0;
  float* all_logits = nullptr;       // prompt_logits: every position's row
  Result result;
  std::exception_ptr error;
  bool done = false;
  Clock::time_point submitted = Clock::now();
};

struct Seq {
  Job* job;
  std::vector<int32_t> tokens;  // the prompt, then each accepted token (the last one still to be fed)
  int64_t n_prompt = 0, computed = 0;
  BlockTable table;
  std::vector<uint64_t> chain;  // hashes of the whole blocks indexed so far
  int64_t cap[2] = {0, 0}, held[2] = {0, 0};  // most blocks it may hold at once, and holds now
  std::optional<Sampler> sampler;
  std::vector<float> logits;
  int64_t step_len = 0;
  bool decoding = false;
  Clock::time_point admitted, decode_start;
  // Speculative decoding: the sources, their controller, and this step's verify run (the token to
  // feed, then the drafts of source `drafted_by`, which was asked for `asked` tokens).
  std::vector<std::unique_ptr<DraftSource>> drafts;
  std::optional<DraftControl> control;
  std::vector<int32_t> run;
  int drafted_by = -1, asked = 0;
  double propose_s = 0;
  std::vector<int32_t> shadow;  // a cheap source's unverified guess at this step's token (draft_control.h)
  int shadowed_by = -1;         // that source; -1: none
};

class BatchEngine final : public Engine {
 public:
  BatchEngine(const std::string& path, const EngineOptions& options) : options_(options) {
    if (options_.n_ctx <= 0) throw std::invalid_argument("the context size must be positive");
    if (options_.max_sequences <= 0) throw std::invalid_argument("max_sequences must be positive");
    model_ = Model::load(path);
    const ModelConfig& c = model_->config();
    tokenizer_ = Tokenizer::from_gguf(model_->file());
    if (tokenizer_->n_vocab() > c.n_vocab)
      throw std::runtime_error(path + ": the tokenizer has " + std::to_string(tokenizer_->n_vocab()) +
                               " tokens but the model's embedding only " + std::to_string(c.n_vocab));
    backend_ = make_backend(*model_, options_.backend, options_.threads, options_.repack_weights);
    choose_draft_sources();
    for (int il = 0; il < c.n_layer; ++il)
      if (c.layers[size_t(il)].sliding) window_ = c.sliding_window;

    const uint64_t pair = backend_->kv_block_bytes(KvKind::Full) + (window_ ? backend_->kv_block_bytes(KvKind::Sliding) : 0);
    const int64_t n_blocks = options_.kv_budget_bytes ? int64_t(options_.kv_budget_bytes / pair) : 2 * blocks_for(options_.n_ctx);
    if (n_blocks < 1)
      throw std::invalid_argument("the KV budget of " + std::to_string(options_.kv_budget_bytes) + " bytes is below one block (" +
                                  std::to_string(pair) + " bytes for " + std::to_string(B) + " positions)");
    store_ = backend_->new_kv_store(n_blocks, window_ ? n_blocks : 0);
    pool_.emplace(n_blocks, window_ ? n_blocks : 0);
    const std::string identity = kv_identity(c);
    if (options_.prefix_cache && !options_.cache_dir.empty())
      disk_.emplace(options_.cache_dir, path, identity, options_.cache_dir_max_bytes);
    const uint64_t root = disk_ ? disk_->key() : XXH3_64bits(identity.data(), identity.size());
    cache_.emplace(*store_, *pool_, root, window_, disk_ ? &*disk_ : nullptr);
    scheduler_ = std::thread([this] { run(); });
  }

  ~BatchEngine() override {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    scheduler_.join();
    if (disk_) cache_->flush();  // the final prefixes outlive the process
  }

  const Model& model() const override { return *model_; }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const EngineOptions& options() const override { return options_; }

  Result generate(const Request& r) override {
    if (r.max_tokens < 0) throw std::invalid_argument("max_tokens must not be negative");
    Job job;
    job.request = &r;
    job.prompt = r.prompt;
    job.max_tokens = r.max_tokens;
    submit(job, r.stop);
    return std::move(job.result);
  }

  LogitsResult prompt_logits(std::span<const int32_t> prompt) override {
    LogitsResult out;
    out.logits.resize(prompt.size() * size_t(model_->config().n_vocab));
    Job job;
    job.prompt = prompt;
    job.all_logits = out.logits.data();
    submit(job, {});
    out.prompt_tokens = job.result.prompt_tokens;
    out.cached_tokens = job.result.cached_tokens;
    out.computed_tokens = job.result.computed_tokens;
    return out;
  }

 private:
  // Validates, queues and waits for the scheduler to finish the job.
  void submit(Job& job, std::stop_token stop) {
    const int64_t n = int64_t(job.prompt.size());
    if (n == 0) throw std::invalid_argument("the prompt is empty");
    for (int32_t t : job.prompt)
      if (t < 0 || t >= model_->config().n_vocab)
        throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
    if (n + job.max_tokens > options_.n_ctx)
      throw std::length_error("the prompt (" + std::to_string(n) + " tokens) plus max_tokens (" + std::to_string(job.max_tokens) +
                              ") exceeds the context of " + std::to_string(options_.n_ctx));
    const int64_t need[2] = {blocks_for(n + job.max_tokens), sliding_cap(n + job.max_tokens)};
    for (KvKind k : {KvKind::Full, KvKind::Sliding})
      if (need[int(k)] > pool_->total(k))
        throw std::length_error("the request needs " + std::to_string(need[int(k)]) + " KV blocks of " + std::to_string(B) +
                                " positions but the memory budget holds " + std::to_string(pool_->total(k)) +
                                " (raise the KV budget)");
    job.result.prompt_tokens = n;
    // Wakes the scheduler so a cancelled request leaves the queue (constructed unlocked: it may run at once).
    std::stop_callback wake(stop, [this] { std::lock_guard lk(mu_); work_cv_.notify_all(); });
    std::unique_lock lk(mu_);
    queue_.push_back(&job);
    work_cv_.notify_all();
    done_cv_.wait(lk, [&] { return job.done; });
    if (job.error) std::rethrow_exception(job.error);
  }

  // Which sources every sequence drafts with; an explicit source the model cannot run is an error.
  void choose_draft_sources() {
    if (options_.draft_max < 0 || options_.draft_max > kMaxDraftTokens)
      throw std::invalid_argument("the most drafted tokens per step must be 0.." + std::to_string(kMaxDraftTokens) + ", not " +
                                  std::to_string(options_.draft_max));
    if (options_.draft == DraftMode::None || options_.draft_max == 0) return;
    std::string why;
    const bool mtp = mtp_supported(*backend_, &why);
    if (options_.draft == DraftMode::Mtp && !mtp) throw std::invalid_argument("cannot draft with MTP: " + why);
    draft_mtp_ = mtp && options_.draft != DraftMode::Context;
    draft_context_ = options_.draft == DraftMode::Context || options_.draft == DraftMode::Auto;
  }

  // A sequence that starts decoding gets its draft sources (none for prompt_logits).
  void start_drafting(Seq& s) {
    const Request* r = s.job->request;
    if (!r || options_.draft_max == 0) return;
    const DraftSetup setup{*backend_, *store_, options_.n_ctx};
    if (r->draft_source) {
      s.drafts.push_back(r->draft_source());
      if (!s.drafts.back()) throw std::invalid_argument("the request's draft source factory returned nothing");
    } else {
      if (draft_mtp_) s.drafts.push_back(make_mtp_draft(setup));
      if (draft_context_) s.drafts.push_back(make_context_draft(setup));
    }
    if (s.drafts.empty()) return;
    s.control.emplace(int(s.drafts.size()), options_.draft_max, options_.draft_always);
    for (const auto& d : s.drafts) s.job->result.drafts.push_back({std::string(d->name())});
  }

  // This step's run of a decoding sequence: its last token, then drafts when they pay. base: tokens
  // the step runs without this sequence's drafts.
  void plan_decode_run(Seq& s, int64_t base, int64_t budget) {
    s.run.assign(1, s.tokens.back());
    s.drafted_by = s.shadowed_by = -1;
    if (!s.control) return;
    // Drafts past max_tokens could never be emitted (and admission reserved no room for them).
    const int64_t room = std::min(budget - 1, s.job->max_tokens - int64_t(s.job->result.tokens.size()) - 1);
    DraftChoice choice = s.control->choose(costs_, base, room);
    try {
      for (int attempt = 0; attempt < 2 && choice.source >= 0; ++attempt) {
        ensure_blocks(s, s.computed, s.computed + 1 + choice.k);
        const DraftContext ctx{s.tokens, s.computed, &s.table, store_.get()};
        const double t0 = process_cpu_seconds();
        if (choice.shadow) {
          s.shadow.clear();
          s.drafts[size_t(choice.source)]->propose(ctx, 1, s.shadow);
          s.propose_s = process_cpu_seconds() - t0;
          if (s.shadow.size() == 1) s.shadowed_by = choice.source;
          return;
        }
        s.drafts[size_t(choice.source)]->propose(ctx, choice.k, s.run);
        const double seconds = process_cpu_seconds() - t0;
        if (int64_t(s.run.size()) > 1 + choice.k)
          throw std::logic_error("draft source " + std::string(s.drafts[size_t(choice.source)]->name()) + " proposed more tokens than asked");
        if (s.run.size() > 1) {
          s.drafted_by = choice.source, s.asked = choice.k, s.propose_s = seconds;
          return;
        }
        s.control->record(choice.source, choice.k, 0, 0, seconds);  // nothing to propose: another source may
        choice = s.control->choose(costs_, base, room, choice.source);
      }
    } catch (...) {  // the request fails after this step (advance), the others go on
      s.job->error = std::current_exception();
      s.run.resize(1);
      s.drafted_by = -1;
    }
  }

  int64_t sliding_cap(int64_t positions) const {
    return window_ ? std::min(blocks_for(positions), blocks_for(window_ - 1 + kStepTokens) + 1) : 0;
  }

  static bool cancelled(const Job& j) { return j.request && j.request->stop.stop_requested(); }

  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      work_cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_ && queue_.empty() && active_.empty()) return;
      admit(lk);
      if (active_.empty()) continue;
      lk.unlock();
      step();
      lk.lock();
    }
  }

  void complete(Job& job) {
    {
      std::lock_guard lk(mu_);
      job.done = true;
    }
    done_cv_.notify_all();
  }

  // Moves queued jobs into the batch while sequences and KV blocks allow, first come first served.
  void admit(std::unique_lock<std::mutex>& lk) {
    for (auto it = queue_.begin(); it != queue_.end();) {  // cancelled while waiting
      if (!cancelled(**it)) { ++it; continue; }
      (*it)->result.finish = FinishReason::Cancelled;
      (*it)->done = true;
      it = queue_.erase(it);
      done_cv_.notify_all();
    }
    while (!queue_.empty() && int64_t(active_.size()) < options_.max_sequences) {
      Job& job = *queue_.front();
      Seq s;
      s.job = &job;
      s.tokens.assign(job.prompt.begin(), job.prompt.end());
      s.n_prompt = int64_t(s.tokens.size());
      s.cap[0] = blocks_for(s.n_prompt + job.max_tokens);
      s.cap[1] = sliding_cap(s.n_prompt + job.max_tokens);
      int64_t cached = 0;
      if (options_.prefix_cache) cached = cache_->acquire(s.tokens, s.n_prompt - 1, s.table, s.chain);
      for (int k = 0; k < 2; ++k)
        for (int32_t b : k ? s.table.sliding : s.table.full) s.held[k] += b >= 0;
      const bool fits = s.cap[0] - s.held[0] <= pool_->unclaimed(KvKind::Full) &&
                        s.cap[1] - s.held[1] <= pool_->unclaimed(KvKind::Sliding);
      if (!fits) {
        release(s);
        if (!active_.empty()) return;  // running sequences will give blocks back
        job.error = std::make_exception_ptr(std::length_error("the request does not fit the KV memory budget"));
        job.done = true;
        queue_.pop_front();
        done_cv_.notify_all();
        continue;
      }
      for (int k = 0; k < 2; ++k) pool_->reserve(KvKind(k), s.cap[k] - s.held[k]);
      queue_.pop_front();
      s.computed = cached;
      job.result.cached_tokens = cached;
      job.result.computed_tokens = s.n_prompt - cached;
      s.admitted = Clock::now();
      if (job.request) s.sampler.emplace(job.request->sampling);
      lk.unlock();
      try {
        if (job.all_logits && cached > 0) backend_->logits_from_hidden(*store_, s.table, 0, cached, job.all_logits);
      } catch (...) {
        job.error = std::current_exception();
      }
      active_.push_back(std::move(s));
      if (job.error) finish(std::prev(active_.end()), FinishReason::Length, false);
      lk.lock();
    }
  }

  int32_t take_block(Seq& s, KvKind k) {
    const int32_t b = cache_->allocate(k);
    if (b < 0) throw std::logic_error("KV block pool exhausted despite the reservation");
    pool_->unreserve(k, 1);
    ++s.held[int(k)];
    return b;
  }

  // Blocks for positions [from, to): every whole-context block, and the sliding-window ones.
  void ensure_blocks(Seq& s, int64_t from, int64_t to) {
    for (int64_t b = from / B; b <= (to - 1) / B; ++b) {
      if (int64_t(s.table.full.size()) <= b) s.table.full.push_back(take_block(s, KvKind::Full));
      if (int64_t(s.table.sliding.size()) <= b) s.table.sliding.push_back(-1);
      if (window_ && s.table.sliding[size_t(b)] < 0) s.table.sliding[size_t(b)] = take_block(s, KvKind::Sliding);
    }
  }

  // One batched forward over every active sequence, then sampling for those that produced logits.
  void step() {
    for (auto it = active_.begin(); it != active_.end();) {
      auto next = std::next(it);
      if (cancelled(*it->job)) finish(it, FinishReason::Cancelled, true);
      it = next;
    }
    if (active_.empty()) return;

    const int64_t V = model_->config().n_vocab;
    std::vector<BatchRun>& runs = runs_;
    std::vector<Seq*>& in_batch = in_batch_;
    runs.clear(), in_batch.clear();
    int64_t budget = kStepTokens;
    int64_t decoding_left = std::ranges::count_if(active_, [](const Seq& s) { return s.decoding; });
    bool prefill = false;
    try {
      for (int pass = 0; pass < 2; ++pass)  // decode tokens first, then prompt chunks in arrival order
        for (Seq& s : active_) {
          if (s.decoding != (pass == 0) || budget == 0) continue;
          if (s.decoding) {
            // Tokens of this step so far, this one's own, and one per decoding sequence still to come.
            plan_decode_run(s, kStepTokens - budget + decoding_left, budget);
            --decoding_left;
            s.step_len = int64_t(s.run.size());
            budget -= s.step_len;
            ensure_blocks(s, s.computed, s.computed + s.step_len);
            s.logits.resize(size_t(s.step_len * V));
            runs.push_back({&s.table, s.computed, s.run, 0, s.logits.data()});
            in_batch.push_back(&s);
            continue;
          }
          s.step_len = std::min(budget, int64_t(s.tokens.size()) - s.computed);
          if (s.step_len <= 0) continue;
          budget -= s.step_len;
          prefill = true;
          ensure_blocks(s, s.computed, s.computed + s.step_len);
          BatchRun r{&s.table, s.computed, std::span<const int32_t>(s.tokens).subspan(size_t(s.computed), size_t(s.step_len)),
                     s.step_len, nullptr};
          const bool reaches_end = s.computed + s.step_len == int64_t(s.tokens.size());
          if (s.job->all_logits) {
            r.logits_from = 0, r.logits = s.job->all_logits + s.computed * V;
          } else if (reaches_end) {
            s.logits.resize(size_t(V));
            r.logits_from = s.step_len - 1, r.logits = s.logits.data();
          }
          runs.push_back(r);
          in_batch.push_back(&s);
        }
      const uint64_t bytes0 = backend_->weight_bytes_read();
      const double t0 = process_cpu_seconds();
      backend_->forward(*store_, runs);
      const double seconds = process_cpu_seconds() - t0;
      const uint64_t bytes = backend_->weight_bytes_read() - bytes0;
      // Decode-only steps teach the draft controller what a step of n tokens costs.
      if (!prefill) costs_.observe(kStepTokens - budget, seconds, double(bytes));
      for (Seq* s : in_batch)
        if (s->decoding) s->job->result.decode_weight_bytes += bytes;
    } catch (...) {
      const auto error = std::current_exception();
      for (auto it = active_.begin(); it != active_.end();) {
        auto next = std::next(it);
        if (std::ranges::find(in_batch, &*it) != in_batch.end()) it->job->error = error, finish(it, FinishReason::Length, false);
        it = next;
      }
      return;
    }

    for (auto it = active_.begin(); it != active_.end();) {
      auto next = std::next(it);
      Seq& s = *it;
      if (std::ranges::find(in_batch, &s) != in_batch.end()) advance(it);
      it = next;
    }
  }

  // Positions [0, s.computed) hold accepted tokens' KV: index the whole blocks among them and drop
  // sliding blocks behind the window. Rows past s.computed (rejected drafts) are never published.
  void settle(Seq& s) {
    if (options_.prefix_cache)
      while (int64_t(s.chain.size() + 1) * B <= s.computed) cache_->publish_block(s.tokens, s.table, s.chain);
    if (window_)
      for (int64_t b = 0; (b + 1) * B <= s.computed - window_ + 1; ++b)
        if (int32_t& blk = s.table.sliding[size_t(b)]; blk >= 0) {
          pool_->unref(KvKind::Sliding, std::exchange(blk, -1));
          --s.held[1];
          pool_->reserve(KvKind::Sliding, 1);
        }
  }

  // After a step: settle what it computed, then sample. A verify run's rows are sampled in order
  // exactly as plain decoding would sample them; while the sample equals the next draft, that draft's
  // row was computed on the right token, so it is kept and the next row is sampled too.
  void advance(std::list<Seq>::iterator it) {
    Seq& s = *it;
    Job& job = *s.job;
    if (job.error) return finish(it, FinishReason::Length, false);
    const bool verify = s.decoding;
    s.computed += verify ? 1 : s.step_len;
    settle(s);
    if (s.computed < int64_t(s.tokens.size())) return;  // more prompt to go

    if (!s.decoding) {
      s.decoding = true;
      job.result.prefill_ms = ms_since(s.admitted);
      s.decode_start = Clock::now();
      try {
        start_drafting(s);
      } catch (...) {
        job.error = std::current_exception();
        return finish(it, FinishReason::Length, false);
      }
    }
    if (!job.request || int64_t(job.result.tokens.size()) == job.max_tokens) return finish(it, FinishReason::Length, true);
    const Request& r = *job.request;
    const int64_t V = model_->config().n_vocab;
    const int64_t rows = verify ? int64_t(s.run.size()) : 1;
    ++job.result.sampling_passes;
    DraftStats* stats = verify && s.drafted_by >= 0 ? &job.result.drafts[size_t(s.drafted_by)] : nullptr;
    if (stats) ++stats->passes, stats->drafted += rows - 1;
    int accepted = 0;
    try {
      for (int64_t i = 0; i < rows; ++i) {
        const std::span<float> logits(s.logits.data() + i * V, size_t(V));
        if (r.constrain) r.constrain(logits);
        const int32_t tok = s.sampler->sample(logits, s.tokens);
        if (s.shadowed_by >= 0) s.control->record(s.shadowed_by, 1, 1, tok == s.shadow[0], s.propose_s);
        if (job.result.tokens.empty() && job.result.ttft_ms == 0) job.result.ttft_ms = ms_since(job.submitted);
        const bool end = (!r.ignore_eog && tokenizer_->is_eog(tok)) || std::ranges::find(r.stop_tokens, tok) != r.stop_tokens.end();
        if (r.on_token && !r.on_token(tok)) return finish(it, FinishReason::Cancelled, true);
        if (end) {
          job.result.stop_token = tok;
          return finish(it, FinishReason::Stop, true);
        }
        job.result.tokens.push_back(tok);
        // The last token's KV is computed only if a later prompt extends it.
        if (int64_t(job.result.tokens.size()) == job.max_tokens) return finish(it, FinishReason::Length, true);
        s.tokens.push_back(tok);
        if (i + 1 == rows || tok != s.run[size_t(i + 1)]) break;
        ++s.computed;  // the draft was right: its row is this token's KV
        ++accepted, ++stats->accepted;
        settle(s);
      }
      if (stats) {
        s.control->record(s.drafted_by, s.asked, int(rows - 1), accepted, s.propose_s);
        s.drafts[size_t(s.drafted_by)]->accepted(accepted);
      }
    } catch (...) {
      job.error = std::current_exception();
      finish(it, FinishReason::Length, false);
    }
  }

  // Gives the sequence's blocks back (its last partial block stays indexed for a continuation).
  void release(Seq& s) {
    for (int k = 0; k < 2; ++k)
      for (int32_t b : k ? s.table.sliding : s.table.full)
        if (b >= 0) pool_->unref(KvKind(k), b);
    s.table = {};
  }

  void finish(std::list<Seq>::iterator it, FinishReason why, bool keep_tail) {
    Seq& s = *it;
    if (keep_tail && options_.prefix_cache) cache_->publish_tail(s.tokens, s.computed, s.table, s.chain);
    release(s);
    for (int k = 0; k < 2; ++k) pool_->unreserve(KvKind(k), s.cap[k] - s.held[k]);
    Job& job = *s.job;
    job.result.finish = why;
    if (s.decoding) job.result.decode_ms = ms_since(s.decode_start);
    active_.erase(it);
    complete(job);
  }

  EngineOptions options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  int64_t window_ = 0;  // sliding window of the model's sliding layers; 0: none
  std::unique_ptr<KvStore> store_;
  std::optional<BlockPool> pool_;
  std::optional<KvDiskCache> disk_;
  std::optional<PrefixCache> cache_;
  bool draft_mtp_ = false, draft_context_ = false;  // the engine's draft sources (a request may bring its own)
  StepCosts costs_;

  std::mutex mu_;  // guards queue_, stopping_ and Job::done; the rest belongs to the scheduler thread
  std::condition_variable work_cv_, done_cv_;
  std::deque<Job*> queue_;
  bool stopping_ = false;
  std::list<Seq> active_;
  std::vector<BatchRun> runs_;  // the step being built (kept: a decode step allocates nothing new)
  std::vector<Seq*> in_batch_;
  std::thread scheduler_;
};

}  // namespace

LogitsResult Engine::prompt_logits(std::span<const int32_t>) {
  throw std::logic_error("this engine does not compute prompt logits");
}

std::unique_ptr<Engine> Engine::open(const std::string& model_path, const EngineOptions& options) {
  return std::make_unique<BatchEngine>(model_path, options);
}

}  // namespace flashfix
