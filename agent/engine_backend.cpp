// The embedded engine as a model backend. Each turn re-renders the whole conversation in the model's
// own chat format, append-only, so the engine's prefix cache finds everything but the new messages.
// Generation runs on a worker thread; the calling thread turns tokens into stream events, so the
// live view is called on the caller's thread and never stalls the engine's batched steps.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <future>
#include <mutex>
#include <optional>

#include "agent/call_constraint.h"
#include "agent/model_backend.h"

namespace flashfix::agent {
namespace {

using ojson = nlohmann::ordered_json;

// Tokens handed from the engine thread to the calling thread.
struct TokenQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<int32_t> tokens;
  bool done = false;
};

// The vocabulary trie behind constrained decoding takes a while to build for a large vocabulary;
// every backend over the same engine (a batch's concurrent tasks) shares one.
std::shared_ptr<const TokenTrie> shared_trie(const Tokenizer& tok) {
  static std::mutex mu;
  static std::map<const Tokenizer*, std::weak_ptr<const TokenTrie>> cache;
  std::lock_guard lock(mu);
  std::shared_ptr<const TokenTrie> trie = cache[&tok].lock();
  if (!trie) cache[&tok] = trie = build_token_trie(tok);
  return trie;
}

// After a call the templates allow no suffix: only whitespace, another call or the end of the turn.
// Enforcing that keeps the turn exactly what its append-only re-render will be (content first, then
// calls), so the next turn's prompt extends this one and the prefix cache hits.
std::vector<int32_t> after_call_tokens(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (tok.is_eog(id)) {
      ids.push_back(id);
      continue;
    }
    const std::string piece = tok.token_to_piece(id, /*render_special=*/true);
    if (!piece.empty() && piece.find_first_not_of(" \t\r\n") == std::string::npos) ids.push_back(id);
  }
  for (const char* text : {"<|im_end|>", "<tool_call>"})
    if (auto id = tok.find_token(text)) ids.push_back(*id);
  return ids;
}

void keep_only(std::span<float> logits, const std::vector<int32_t>& ids) {
  thread_local std::vector<float> kept;
  kept.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) kept[i] = logits[size_t(ids[i])];
  std::fill(logits.begin(), logits.end(), -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < ids.size(); ++i) logits[size_t(ids[i])] = kept[i];
}

class EngineBackend final : public ModelBackend {
 public:
  EngineBackend(Engine& engine, GenerationSettings settings)
      : engine_(engine),
        settings_(settings),
        format_(detect_chat_format(engine.model().config().arch, engine.tokenizer().chat_template())) {
    // Every format ends a turn with <|im_end|>; the tokenizer may not count it as end-of-generation.
    if (auto im_end = engine.tokenizer().find_token("<|im_end|>")) stop_tokens_.push_back(*im_end);
    if (settings_.constrained) {
      trie_ = shared_trie(engine.tokenizer());
      after_call_ = after_call_tokens(engine.tokenizer());
    }
  }

  std::string describe() const override {
    const auto& c = engine_.model().config();
    return "engine:" + (c.name.empty() ? c.arch : c.name);
  }

  ModelTurn complete(const std::vector<ChatMessage>& messages, const ojson& tools, const StreamSink* sink,
                     std::stop_token stop) override {
    // A required call starts in the prompt: the text the format renders between the generation
    // prompt and the first call's opening tag, that tag included.
    const bool forced = settings_.tool_choice == ToolChoice::Required && !tools.empty();
    const std::string opener = forced ? call_opener(messages, tools) : std::string();
    Request req;
    req.prompt = render(messages, tools, opener);
    const int64_t room = engine_.options().n_ctx - int64_t(req.prompt.size());
    if (room <= 0)
      throw ContextOverflow("the conversation (" + std::to_string(req.prompt.size()) + " tokens) fills the context of " +
                            std::to_string(engine_.options().n_ctx) + " tokens");
    req.max_tokens = std::min(settings_.max_tokens, room);
    req.sampling = settings_.sampling;
    req.stop_tokens = stop_tokens_;
    req.stop = stop;

    // The constraint advances with every sampled token on the engine thread, before the next step.
    std::optional<CallConstraint> constraint;
    if (settings_.constrained && !tools.empty()) {
      constraint.emplace(engine_.tokenizer(), trie_, format_, tools);
      if (!opener.empty()) constraint->accept_text(opener);
      req.constrain = [&](std::span<float> logits) {
        constraint->apply(logits);
        if (!constraint->in_call() && constraint->calls_completed() > 0) keep_only(logits, after_call_);
      };
    }
    TokenQueue queue;
    std::atomic<bool> abandoned = false;  // the caller left (its live view threw): stop generating
    req.on_token = [&](int32_t tok) {
      if (constraint) constraint->accept(tok);
      std::lock_guard lock(queue.mu);
      queue.tokens.push_back(tok);
      queue.cv.notify_one();
      return !abandoned.load();
    };

    auto generation = std::async(std::launch::async, [&] {
      struct Done {  // wakes the pump however generate() ends
        TokenQueue& q;
        ~Done() {
          std::lock_guard lock(q.mu);
          q.done = true;
          q.cv.notify_one();
        }
      } done{queue};
      return engine_.generate(req);
    });
    struct Abandon {  // declared after the future: runs first when an exception unwinds, so it ends soon
      std::atomic<bool>& flag;
      ~Abandon() { flag = true; }
    } abandon_on_exit{abandoned};

    // Step-3.5's generation prompt already opened the think block.
    StreamParser parser(format_, format_ == ChatFormat::Step35, tools);
    auto deliver = [&](const std::vector<StreamEvent>& events) {
      if (sink && sink->on_event)
        for (const StreamEvent& e : events) sink->on_event(e);
    };
    deliver(parser.feed(opener));
    for (;;) {
      std::unique_lock lock(queue.mu);
      queue.cv.wait(lock, [&] { return queue.done || !queue.tokens.empty(); });
      if (queue.tokens.empty()) break;
      const int32_t tok = queue.tokens.front();
      queue.tokens.pop_front();
      lock.unlock();
      if (std::ranges::find(stop_tokens_, tok) != stop_tokens_.end() || engine_.tokenizer().is_eog(tok)) continue;
      deliver(parser.feed(engine_.tokenizer().token_to_piece(tok)));
    }
    deliver(parser.finish());

    Result res;
    try {
      res = generation.get();
    } catch (const std::exception& e) {
      throw BackendError(std::string("engine: ") + e.what());
    }
    ModelTurn turn;
    turn.raw = opener + engine_.tokenizer().decode(res.tokens);
    turn.message = parser.message();
    turn.stats.prompt_tokens = res.prompt_tokens;
    turn.stats.cached_tokens = res.cached_tokens;
    turn.stats.generated_tokens = int64_t(res.tokens.size());
    turn.stats.ttft_ms = res.ttft_ms;
    turn.stats.prefill_ms = res.prefill_ms;
    turn.stats.decode_ms = res.decode_ms;
    switch (res.finish) {
      case FinishReason::Length: turn.stats.finish = "length"; break;
      case FinishReason::Cancelled: turn.stats.finish = "cancelled"; break;
      case FinishReason::Stop: turn.stats.finish = turn.message.calls.empty() ? "stop" : "tool_calls"; break;
    }
    return turn;
  }

 private:
  std::string render_text(const std::vector<ChatMessage>& messages, const ojson& tools, bool generation_prompt) const {
    RenderOptions opt;
    opt.add_generation_prompt = generation_prompt;
    opt.append_only = true;
    try {
      if (format_ == ChatFormat::Qwen3) return render_chat(format_, messages, tools, opt);
      // The XML formats cannot render a malformed call whose arguments are not an object (its text
      // is lost either way; the error observation after it tells the story).
      std::vector<ChatMessage> copy = messages;
      for (ChatMessage& m : copy)
        for (ToolCall& c : m.tool_calls)
          if (!c.arguments.is_object()) c.arguments = ojson::object();
      return render_chat(format_, copy, tools, opt);
    } catch (const std::exception& e) {
      throw BackendError(std::string("rendering the conversation failed: ") + e.what());
    }
  }

  // What an assistant turn that only calls a tool renders to after the generation prompt, up to and
  // including the call's opening tag ("<tool_call>"): derived from the renderer, so the forced
  // opening is exactly what the next turn's append-only render repeats.
  std::string call_opener(const std::vector<ChatMessage>& messages, const ojson& tools) const {
    const std::string prompt = render_text(messages, tools, true);
    std::vector<ChatMessage> with_call = messages;
    with_call.push_back({.role = "assistant", .tool_calls = {{.name = function_name(tools[0])}}});
    const std::string turn = render_text(with_call, tools, false);
    const size_t tag = turn.find("<tool_call>", prompt.size());
    if (!turn.starts_with(prompt) || tag == std::string::npos)
      throw BackendError("the chat format cannot start an assistant turn with a tool call");
    return turn.substr(prompt.size(), tag + std::string_view("<tool_call>").size() - prompt.size());
  }

  static std::string function_name(const ojson& tool) {
    const ojson& fn = tool.contains("function") ? tool["function"] : tool;
    return fn.value("name", "tool");
  }

  std::vector<int32_t> render(const std::vector<ChatMessage>& messages, const ojson& tools, const std::string& opener) const {
    const std::string text = render_text(messages, tools, true) + opener;
    const Tokenizer& tok = engine_.tokenizer();
    // Specials are added by hand: add_special could also append an EOS, which ends a prompt.
    std::vector<int32_t> ids = tok.encode(text, /*parse_special=*/true, /*add_special=*/false);
    // Step's template starts with {{bos_token}}; others get a BOS only where the model asks for one.
    if (auto bos = tok.bos(); bos && (tok.add_bos_default() || format_ == ChatFormat::Step35)) ids.insert(ids.begin(), *bos);
    return ids;
  }

  Engine& engine_;
  GenerationSettings settings_;
  ChatFormat format_;
  std::vector<int32_t> stop_tokens_;
  std::shared_ptr<const TokenTrie> trie_;
  std::vector<int32_t> after_call_;  // what may follow a closed call (after_call_tokens)
};

}  // namespace

std::unique_ptr<ModelBackend> make_engine_backend(Engine& engine, GenerationSettings settings) {
  return std::make_unique<EngineBackend>(engine, settings);
}

}  // namespace flashfix::agent
