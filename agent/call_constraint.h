// Grammar-constrained decoding of tool calls on the embedded engine.
//
// Outside a call the model is free. Once the generated text opens a call (`<tool_call>`, or for the
// XML formats a bare `<function=`), every token whose text cannot continue a well-formed call is
// masked to -inf, so what the model emits always parses (parse_assistant_text) into a known tool with
// known parameters of the declared JSON types, required ones present, enums respected:
//   Qwen3:  <tool_call>\n{"name": "TOOL", "arguments": {"p": VALUE, ...}}\n</tool_call>
//   XML:    <tool_call>\n<function=TOOL>\n<parameter=p>\nVALUE\n</parameter>\n...</function>\n</tool_call>
// (XML string values are free text; typed ones are JSON text of their type.) The automaton works on
// bytes; each vocabulary token's bytes are checked by walking a trie of all token texts alongside it,
// so a prefix shared by many tokens is checked once and a dead prefix prunes its whole subtree.
// Control tokens (and end-of-generation ones) are allowed inside a call only when their text is the
// tag the grammar expects. Text that would end the call early for the parser (`<tool_call>`,
// `</tool_call>`, `</function>` inside a value) is not allowed in values.
//
// Limits bound every unbounded construct (string length, number length, items per container,
// nesting depth, whitespace runs), so a call always closes within a bounded number of bytes: when a
// limit is reached only the closing text stays allowed. There is always at least one allowed token
// as long as the vocabulary can spell every byte (byte-level BPE and SentencePiece byte fallback can).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/chat.h"
#include "engine/tokenizer.h"

namespace flashfix::agent {

// Token texts of a vocabulary as a byte trie, built once per tokenizer and shareable between
// constraints (building it for a 151k vocabulary takes a while; a constraint per turn must not).
class TokenTrie;
std::shared_ptr<const TokenTrie> build_token_trie(const Tokenizer& tok);

struct ConstraintLimits {
  uint32_t max_string_bytes = 1 << 20;  // per string value (a whole file for write_file)
  uint32_t max_number_chars = 32;
  uint32_t max_items = 4096;            // per array / object inside an any/object/array value
  uint32_t max_depth = 16;              // nesting inside an any/object/array value (at most 16)
  uint32_t max_space = 32;              // consecutive whitespace between JSON tokens
};

// One per generation (it holds that generation's state and scratch buffers; apply() is const but not
// safe to call concurrently on one object). Many may share one TokenTrie.
class CallConstraint {
 public:
  // Throws std::invalid_argument for a malformed tools array or more than 64 parameters in a tool.
  CallConstraint(const Tokenizer& tok, ChatFormat format, const nlohmann::ordered_json& openai_tools);
  CallConstraint(const Tokenizer& tok, std::shared_ptr<const TokenTrie> trie, ChatFormat format,
                 const nlohmann::ordered_json& openai_tools, const ConstraintLimits& limits = {});
  ~CallConstraint();

  void apply(std::span<float> logits) const;  // outside a call: no-op; inside: -inf for tokens that cannot continue a well-formed call
  void accept(int32_t token);                 // advance with the token actually sampled
  // logits may be longer than the vocabulary (a model's padded output rows): inside a call those are
  // -inf; outside they are left alone and accept() takes them as no text. Throws std::logic_error if
  // no token is left (a vocabulary that cannot spell a byte the grammar needs) and
  // std::invalid_argument for a token apply() had refused.
  bool in_call() const;

  // Advance with text that is not a sampled token, e.g. a prompt that ends inside a call
  // ("...<tool_call>"). Throws std::invalid_argument if the text breaks the grammar.
  void accept_text(std::string_view text);
  // Back to the start of a new assistant turn (outside any call).
  void reset();
  // Token ids allowed in the current state (what apply() leaves finite), and the same question for
  // one token answered by running its text through the grammar alone (no trie, no shortcuts).
  std::vector<int32_t> allowed_tokens() const;
  bool allows(int32_t token) const;
  // Calls that have been closed since construction or reset().
  int calls_completed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashfix::agent
