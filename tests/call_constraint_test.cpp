// Grammar-constrained decoding: grammar details state by state on the real Qwen3 vocabulary, then
// whole calls generated token by token (random logits over the 151k vocabulary, and the tiny golden
// models' real forward pass) through apply()+accept(), which must always parse into a call that
// validates against the tool schemas, for all three formats.
#include "agent/call_constraint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "agent/tool_calls.h"
#include "agent/tool_schema.h"
#include "engine/backend.h"
#include "engine/gguf.h"
#include "engine/sampler.h"

namespace flashfix::agent {
namespace {

using json = nlohmann::ordered_json;

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "read_file", "description": "Read a file.", "parameters": {"type": "object",
    "properties": {"path": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"}}, "required": ["path"]}}},
  {"type": "function", "function": {"name": "run", "description": "Run a command.", "parameters": {"type": "object",
    "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}, "shell": {"type": "boolean"},
                   "env": {"type": "object"}, "args": {"type": "array"}, "mode": {"type": "string", "enum": ["fast", "full", "f"]},
                   "extra": {}, "level": {"type": "integer", "enum": [1, 10, 100]}},
    "required": ["command", "mode"]}}},
  {"type": "function", "function": {"name": "git_diff", "description": "Show the diff.", "parameters": {"type": "object", "properties": {}}}},
  {"type": "function", "function": {"name": "run_tests", "description": "Run the tests.", "parameters": {"type": "object",
    "properties": {"filter": {"type": "string"}}}}}
])");

constexpr ChatFormat kAll[] = {ChatFormat::Qwen3, ChatFormat::Qwen3Coder, ChatFormat::Step35};
const char* format_name(ChatFormat f) { return f == ChatFormat::Qwen3 ? "qwen3" : f == ChatFormat::Qwen3Coder ? "qwen3coder" : "step35"; }

struct Vocab {
  std::unique_ptr<Tokenizer> tok;
  std::shared_ptr<const TokenTrie> trie;
  double build_ms = 0;
};

const Vocab& vocab(const std::string& path) {
  static std::map<std::string, Vocab> cache;
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  Vocab v;
  auto file = GgufFile::open(path);
  v.tok = Tokenizer::from_gguf(*file);
  auto t0 = std::chrono::steady_clock::now();
  v.trie = build_token_trie(*v.tok);
  v.build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return cache.emplace(path, std::move(v)).first->second;
}
const Vocab& qwen3_vocab() { return vocab(std::string(FLASHFIX_SHARED_DIR) + "/vocab/ggml-vocab-qwen3.gguf"); }

// Small limits: a random walk must close its call within a few hundred bytes.
ConstraintLimits small_limits() {
  ConstraintLimits l;
  l.max_string_bytes = 12;
  l.max_number_chars = 8;
  l.max_items = 3;
  l.max_depth = 3;
  l.max_space = 2;
  return l;
}

// Is the token spelled `piece` allowed now? (Special tokens are found by their text, plain ones by
// their bytes: the vocabulary stores byte-level BPE tokens in GPT-2's byte-to-char encoding.)
bool allowed(const CallConstraint& c, const Tokenizer& tok, std::string_view piece) {
  std::optional<int32_t> id = tok.find_token(piece);
  for (int32_t i = 0; !id && i < tok.n_vocab(); ++i)
    if (tok.token_to_piece(i) == piece) id = i;
  if (!id) throw std::runtime_error("no token " + std::string(piece));
  auto a = c.allowed_tokens();
  return std::binary_search(a.begin(), a.end(), *id);
}

// Does the parsed call satisfy the tool schemas: known tool, known parameters of their declared
// types and enums, required ones present?
std::string schema_violation(const ParsedCall& pc) {
  static const ToolSpecs specs = read_tool_specs(kTools);
  if (!pc.error.empty()) return "parse error: " + pc.error;
  const ToolSpec* tool = specs.find(pc.call.name);
  if (!tool) return "unknown tool " + pc.call.name;
  for (const ParamSpec& p : tool->params)
    if (p.required && !pc.call.arguments.contains(p.name)) return "missing " + p.name;
  for (const auto& [key, value] : pc.call.arguments.items()) {
    const ParamSpec* p = tool->find(key);
    if (!p) return "unknown parameter " + key;
    bool ok = true;
    switch (p->type) {
      case ValueType::Any: break;
      case ValueType::String: ok = value.is_string(); break;
      case ValueType::Integer: ok = value.is_number_integer(); break;
      case ValueType::Number: ok = value.is_number(); break;
      case ValueType::Boolean: ok = value.is_boolean(); break;
      case ValueType::Null: ok = value.is_null(); break;
      case ValueType::Object: ok = value.is_object(); break;
      case ValueType::Array: ok = value.is_array(); break;
    }
    if (!ok) return key + " has the wrong type: " + value.dump();
    if (!p->enum_values.empty() && std::find(p->enum_values.begin(), p->enum_values.end(), value) == p->enum_values.end())
      return key + " is not in its enum: " + value.dump();
  }
  return {};
}

// ---- The grammar, state by state ------------------------------------------------------------------

TEST(CallConstraint, OutsideACallNothingIsMasked) {
  const Vocab& v = qwen3_vocab();
  CallConstraint c(*v.tok, v.trie, ChatFormat::Qwen3, kTools);
  c.accept_text("Let me look at the file first.\n");
  EXPECT_FALSE(c.in_call());
  std::vector<float> logits(size_t(v.tok->n_vocab()), 1.f);
  c.apply(logits);
  EXPECT_EQ(std::count(logits.begin(), logits.end(), 1.f), v.tok->n_vocab());
}

TEST(CallConstraint, JsonGrammarStepByStep) {
  const Vocab& v = qwen3_vocab();
  const Tokenizer& tok = *v.tok;
  CallConstraint c(tok, v.trie, ChatFormat::Qwen3, kTools);
  c.accept(*tok.find_token("<tool_call>"));
  EXPECT_TRUE(c.in_call());
  EXPECT_TRUE(allowed(c, tok, "\n"));
  EXPECT_FALSE(allowed(c, tok, "<|im_end|>"));  // the end of the turn inside a call
  EXPECT_FALSE(allowed(c, tok, "<|endoftext|>"));
  EXPECT_FALSE(allowed(c, tok, "Hello"));
  c.accept_text("\n{\"name\": \"r");
  EXPECT_TRUE(allowed(c, tok, "ead"));
  EXPECT_TRUE(allowed(c, tok, "un"));
  EXPECT_FALSE(allowed(c, tok, "m"));
  c.accept_text("ead_file\", \"arguments\": {");
  EXPECT_FALSE(allowed(c, tok, "}"));  // "path" is required
  EXPECT_TRUE(allowed(c, tok, "\""));
  EXPECT_THROW(c.accept_text("\"bogus\""), std::invalid_argument);
  c.accept_text("\"start\": ");
  EXPECT_TRUE(allowed(c, tok, "1"));
  EXPECT_TRUE(allowed(c, tok, "-"));
  EXPECT_FALSE(allowed(c, tok, "\""));  // an integer
  EXPECT_FALSE(allowed(c, tok, "t"));
  c.accept_text("12");
  EXPECT_FALSE(allowed(c, tok, "."));  // integers have no fraction
  EXPECT_FALSE(allowed(c, tok, "}"));  // still no "path"
  c.accept_text(", \"");
  EXPECT_FALSE(allowed(c, tok, "start"));  // no key twice
  c.accept_text("path\": \"src/a.c");
  EXPECT_FALSE(allowed(c, tok, "<tool_call>"));  // would end the call for the parser
  EXPECT_THROW(c.accept_text("</tool_call>"), std::invalid_argument);
  EXPECT_THROW(c.accept_text("\x01"), std::invalid_argument);      // JSON strings hold no raw control characters
  EXPECT_THROW(c.accept_text("\xC3("), std::invalid_argument);     // broken UTF-8
  EXPECT_THROW(c.accept_text("\\uD800"), std::invalid_argument);   // a lone surrogate escape does not parse
  c.accept_text("\\u00e9 \xC3\xA9\"");
  EXPECT_TRUE(allowed(c, tok, "}"));
  EXPECT_TRUE(allowed(c, tok, ","));
  c.accept_text("}}\n</tool_call");
  EXPECT_TRUE(c.in_call());
  EXPECT_TRUE(allowed(c, tok, ">"));
  c.accept_text(">");
  EXPECT_FALSE(c.in_call());
  // Enums: a value that is a prefix of another ends when the next byte cannot extend it.
  c.accept_text("<tool_call>\n{\"name\": \"run\", \"arguments\": {\"level\": 1");
  EXPECT_TRUE(allowed(c, tok, "0"));
  EXPECT_TRUE(allowed(c, tok, ","));
  EXPECT_FALSE(allowed(c, tok, "2"));
  c.accept_text("00, \"mode\": ");
  EXPECT_TRUE(allowed(c, tok, "\""));
  EXPECT_FALSE(allowed(c, tok, "1"));
  c.accept_text("\"fast\", \"command\": \"\"}}\n</tool_call");
  EXPECT_TRUE(c.in_call());
  EXPECT_TRUE(allowed(c, tok, ">"));
  c.accept_text(">");
  EXPECT_FALSE(c.in_call());
  EXPECT_EQ(c.calls_completed(), 2);
}

TEST(CallConstraint, PaddedLogitRowsAreNeverPartOfACall) {
  const Vocab& v = qwen3_vocab();
  CallConstraint c(*v.tok, v.trie, ChatFormat::Qwen3, kTools);
  const int32_t pad = v.tok->n_vocab() + 5;
  std::vector<float> logits(size_t(v.tok->n_vocab()) + 267, 1.f);  // Qwen3 models have 151936 rows
  c.apply(logits);
  EXPECT_EQ(logits[size_t(pad)], 1.f);
  EXPECT_TRUE(c.allows(pad));
  c.accept(pad);  // no text
  c.accept_text("<tool_call>");
  c.apply(logits);
  EXPECT_TRUE(std::isinf(logits[size_t(pad)]));
  EXPECT_FALSE(c.allows(pad));
  EXPECT_THROW(c.accept(pad), std::invalid_argument);
  std::vector<float> short_logits(100);
  EXPECT_THROW(c.apply(short_logits), std::invalid_argument);
}

TEST(CallConstraint, XmlGrammarStepByStep) {
  const Vocab& v = qwen3_vocab();
  const Tokenizer& tok = *v.tok;
  for (ChatFormat f : {ChatFormat::Qwen3Coder, ChatFormat::Step35}) {
    CallConstraint c(tok, v.trie, f, kTools);
    c.accept_text("Plan.\n<tool_call>\n<function=run>\n<");
    EXPECT_FALSE(allowed(c, tok, "/"));  // command and mode are required
    c.accept_text("parameter=mode>\n");
    EXPECT_TRUE(allowed(c, tok, "f"));
    EXPECT_FALSE(allowed(c, tok, "slow"));
    c.accept_text("f");
    EXPECT_TRUE(allowed(c, tok, "ast"));  // "f" is an enum value too, but "fast" and "full" go on
    EXPECT_TRUE(allowed(c, tok, "\n"));
    c.accept_text("\n</parameter>\n<parameter=timeout>\n");
    EXPECT_FALSE(allowed(c, tok, "abc"));
    c.accept_text("1.5e3\n</parameter>\n<parameter=command>\n");
    // Free text: anything but the tags that would end the call for the parser.
    EXPECT_TRUE(allowed(c, tok, "Hello"));
    EXPECT_TRUE(allowed(c, tok, "<|im_end|>") == false);
    c.accept_text("echo \"<b>\" && x < y\n</func");
    EXPECT_THROW(c.accept_text("</tool_call>"), std::invalid_argument);
    c.accept_text("tion>\n</parameter>\n<parameter=env>\n");
    EXPECT_TRUE(allowed(c, tok, "{"));
    EXPECT_FALSE(allowed(c, tok, "["));
    c.accept_text("{\"a\": [1, {\"b\": null}]}\n</parameter>\n</function>\n</tool_call>");
    EXPECT_FALSE(c.in_call());
    // A bare <function= opens a call too.
    c.accept_text("<function=git_diff>\n</function>");
    EXPECT_FALSE(c.in_call());
    EXPECT_EQ(c.calls_completed(), 2);
  }
}

TEST(CallConstraint, LimitsLeaveOnlyTheClosingText) {
  const Vocab& v = qwen3_vocab();
  const Tokenizer& tok = *v.tok;
  CallConstraint json_c(tok, v.trie, ChatFormat::Qwen3, kTools, small_limits());
  json_c.accept_text("<tool_call>\n{\"name\": \"run_tests\", \"arguments\": {\"filter\": \"abcdefghijkl");
  auto closing = json_c.allowed_tokens();
  EXPECT_FALSE(closing.empty());
  for (int32_t id : closing) EXPECT_EQ(tok.token_to_piece(id)[0], '"') << tok.token_to_piece(id);
  CallConstraint xml_c(tok, v.trie, ChatFormat::Step35, kTools, small_limits());
  xml_c.accept_text("<tool_call>\n<function=run_tests>\n<parameter=filter>\nabcdefghij\n<");
  for (int32_t id : xml_c.allowed_tokens()) {
    std::string p = tok.token_to_piece(id);
    EXPECT_TRUE(std::string_view("/parameter>\n</function>\n</tool_call>").starts_with(p) ||
                p.starts_with("/parameter>\n")) << p;
  }
}

// What a mask costs on the 151k vocabulary with the default limits, in the states that differ most:
// free text (nearly every token allowed: the whole trie is walked), a number, a choice of names.
TEST(CallConstraint, MaskCostOnTheQwen3Vocabulary) {
  const Vocab& v = qwen3_vocab();
  struct Where {
    ChatFormat format;
    const char* prefix;
  };
  const Where states[] = {
      {ChatFormat::Qwen3, "Calling <tool_c"},   // outside, a trigger half-way: only its completions are checked
      {ChatFormat::Step35, "Calling <func"},
      {ChatFormat::Qwen3, "<tool_call>"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \""},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"make -j"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"start\": 1"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=command>\nmake -j"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=env>\n{\"a\": [1, {\"b\": \"x"},
  };
  std::vector<float> logits(size_t(v.tok->n_vocab()));
  for (const Where& w : states) {
    CallConstraint c(*v.tok, v.trie, w.format, kTools);
    c.accept_text(w.prefix);
    constexpr int kReps = 20;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kReps; ++i) {
      std::fill(logits.begin(), logits.end(), 0.f);
      c.apply(logits);
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / kReps;
    size_t n_allowed = size_t(std::count(logits.begin(), logits.end(), 0.f));
    // The trie walk and its plain-text shortcut decide exactly what the grammar alone decides.
    for (int32_t id = 0; id < v.tok->n_vocab(); ++id)
      ASSERT_EQ(logits[size_t(id)] == 0.f, c.allows(id)) << w.prefix << " token " << id << " " << v.tok->token_to_piece(id);
    std::printf("mask after %-70s %7zu allowed, %.2f ms\n", nlohmann::json(w.prefix).dump().c_str(), n_allowed, ms);
    EXPECT_GT(n_allowed, 0u);
  }
}

// ---- Whole calls, token by token -------------------------------------------------------------------

struct GenStats {
  int calls = 0, tokens = 0;
  double mask_ms = 0;
};

// Generates until the call closes: next_logits fills the logits for the step (given the last token),
// the constraint masks them, pick chooses the token. Returns the text after the opening tag.
using NextLogits = std::function<void(std::vector<float>&, int32_t)>;
using Pick = std::function<int32_t(std::vector<float>&)>;
std::string generate_call(CallConstraint& c, const Tokenizer& tok, const NextLogits& next_logits, const Pick& pick,
                          GenStats& stats, int max_tokens) {
  std::vector<float> logits(size_t(tok.n_vocab()));
  std::string text;
  int32_t last = -1;
  for (int i = 0; i < max_tokens && c.in_call(); ++i) {
    next_logits(logits, last);
    auto t0 = std::chrono::steady_clock::now();
    c.apply(logits);
    stats.mask_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++stats.tokens;
    if (i % 97 == 13) {  // now and then: the mask equals the grammar's verdict token by token
      int32_t first_mismatch = -1;
      for (int32_t id = 0; id < tok.n_vocab() && first_mismatch < 0; ++id)
        if (std::isfinite(logits[size_t(id)]) != c.allows(id)) first_mismatch = id;
      EXPECT_EQ(first_mismatch, -1) << "after " << text;
    }
    last = pick(logits);
    EXPECT_TRUE(std::isfinite(logits[size_t(last)]));
    c.accept(last);
    text += tok.token_to_piece(last);
  }
  EXPECT_FALSE(c.in_call()) << "the call did not close within " << max_tokens << " tokens: " << text;
  ++stats.calls;
  return text;
}

void check_call(ChatFormat f, const std::string& text, const std::string& where) {
  auto m = parse_assistant_text(f, text, kTools);
  ASSERT_EQ(m.calls.size(), 1u) << where << "\n" << text;
  EXPECT_EQ(schema_violation(m.calls[0]), "") << where << "\n" << text;
}

SamplerParams free_sampling(uint64_t seed) {
  SamplerParams p;
  p.temperature = 1.f;
  p.top_k = 0;
  p.top_p = 1.f;
  p.min_p = 0.f;
  p.seed = seed;
  return p;
}

TEST(CallConstraint, RandomLogitsAlwaysGiveValidCallsOnTheQwen3Vocabulary) {
  const Vocab& v = qwen3_vocab();
  for (ChatFormat f : kAll) {
    GenStats stats;
    for (uint64_t seed = 1000 * uint64_t(f); seed < 1000 * uint64_t(f) + 80; ++seed) {
      CallConstraint c(*v.tok, v.trie, f, kTools, small_limits());
      c.accept_text("<tool_call>");
      // Random logits: every allowed token equally likely, so long and odd tokens come up as often
      // as the likely ones and every corner of the grammar gets walked.
      std::mt19937 rng(uint32_t(seed) * 7919u + 1);
      auto flat = [](std::vector<float>& logits, int32_t) { std::fill(logits.begin(), logits.end(), 0.f); };
      auto uniform = [&](std::vector<float>& logits) {
        std::vector<int32_t> finite;
        for (size_t i = 0; i < logits.size(); ++i)
          if (logits[i] == 0.f) finite.push_back(int32_t(i));
        return finite.at(rng() % finite.size());
      };
      std::string text = generate_call(c, *v.tok, flat, uniform, stats, 600);
      check_call(f, "<tool_call>" + text, std::string(format_name(f)) + " seed " + std::to_string(seed));
    }
    std::printf("%s, Qwen3 vocabulary (%d tokens, trie built in %.0f ms): %d calls, %d tokens, mask %.2f ms/token\n",
                format_name(f), v.tok->n_vocab(), v.build_ms, stats.calls, stats.tokens, stats.mask_ms / stats.tokens);
  }
}

TEST(CallConstraint, TinyModelsGenerateValidCalls) {
  struct Case {
    const char* model;
    ChatFormat format;
  };
  for (Case k : {Case{"tiny-qwen3moe-s11", ChatFormat::Qwen3}, Case{"tiny-qwen3moe-s11", ChatFormat::Qwen3Coder},
                 Case{"tiny-step35-s11", ChatFormat::Step35}}) {
    auto model = Model::load(std::string(FLASHFIX_SHARED_DIR) + "/golden/" + k.model + ".gguf");
    auto tok = Tokenizer::from_gguf(model->file());
    auto trie = build_token_trie(*tok);
    auto backend = make_cpu_backend(*model, 2);
    RenderOptions opt;
    std::string prompt = render_chat(k.format, {{"user", "Fix the failing test."}}, kTools, opt) + "<tool_call>";
    auto tokens = tok->encode(prompt, true, tok->add_bos_default());
    GenStats stats;
    for (uint64_t seed = 0; seed < 3; ++seed) {
      auto seq = backend->new_sequence(int64_t(tokens.size()) + 700);
      CallConstraint c(*tok, trie, k.format, kTools, small_limits());
      c.accept_text("<tool_call>");
      Sampler sampler(free_sampling(seed));
      bool first = true;
      auto model_logits = [&](std::vector<float>& logits, int32_t last) {
        if (first) {
          backend->forward(*seq, tokens, Logits::Last, logits.data());
          first = false;
        } else {
          backend->forward(*seq, std::span<const int32_t>(&last, 1), Logits::Last, logits.data());
        }
      };
      std::vector<int32_t> history;
      auto sample = [&](std::vector<float>& logits) {
        history.push_back(sampler.sample(logits, history));
        return history.back();
      };
      std::string text = generate_call(c, *tok, model_logits, sample, stats, 600);
      check_call(k.format, "<tool_call>" + text, std::string(k.model) + " " + format_name(k.format) + " seed " + std::to_string(seed));
    }
    std::printf("%s as %s: %d calls, %d tokens, mask %.3f ms/token\n", k.model, format_name(k.format), stats.calls, stats.tokens,
                stats.mask_ms / stats.tokens);
  }
}

}  // namespace
}  // namespace flashfix::agent
