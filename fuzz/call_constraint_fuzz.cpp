// libFuzzer entry for the decoding constraint's grammar: the input (after a mode byte choosing the
// format and the limits) is fed byte by byte after "<tool_call>" until the grammar refuses a byte or
// the call closes. Whatever was accepted must leave at least one token allowed while the call is
// open, and a closed call must parse without error into a known tool with known parameters of the
// declared types, required ones present. Uses the real Qwen3 vocabulary (path compiled in).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "agent/call_constraint.h"
#include "agent/tool_calls.h"
#include "agent/tool_schema.h"
#include "engine/gguf.h"

using namespace flashfix;
using namespace flashfix::agent;

namespace {

using json = nlohmann::ordered_json;

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object",
    "properties": {"path": {"type": "string"}, "start": {"type": "integer"}}, "required": ["path"]}}},
  {"type": "function", "function": {"name": "run", "parameters": {"type": "object",
    "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}, "shell": {"type": "boolean"},
                   "env": {"type": "object"}, "args": {"type": "array"}, "any": {},
                   "mode": {"type": "string", "enum": ["a", "ab"]}, "level": {"enum": [1, 10]}},
    "required": ["command"]}}},
  {"type": "function", "function": {"name": "ru", "parameters": {"type": "object", "properties": {}}}}
])");

struct Fixture {
  std::unique_ptr<Tokenizer> tok;
  std::shared_ptr<const TokenTrie> trie;
  std::unique_ptr<CallConstraint> constraints[6];  // 3 formats x (default, small) limits
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    auto file = GgufFile::open(FLASHFIX_SHARED_DIR "/vocab/ggml-vocab-qwen3.gguf");
    x.tok = Tokenizer::from_gguf(*file);
    x.trie = build_token_trie(*x.tok);
    ConstraintLimits small;
    small.max_string_bytes = 6, small.max_number_chars = 4, small.max_items = 2, small.max_depth = 2, small.max_space = 1;
    const ChatFormat formats[] = {ChatFormat::Qwen3, ChatFormat::Qwen3Coder, ChatFormat::Step35};
    for (int i = 0; i < 6; ++i)
      x.constraints[i] = std::make_unique<CallConstraint>(*x.tok, x.trie, formats[i % 3], kTools, i < 3 ? ConstraintLimits{} : small);
    return x;
  }();
  return f;
}

[[noreturn]] void fail(const std::string& what, const std::string& text) {
  std::fprintf(stderr, "call_constraint_fuzz: %s\naccepted: %s\n", what.c_str(),
               json(text).dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = fixture();
  const int which = data[0] % 6;
  const ChatFormat format = which % 3 == 0 ? ChatFormat::Qwen3 : which % 3 == 1 ? ChatFormat::Qwen3Coder : ChatFormat::Step35;
  CallConstraint& c = *f.constraints[which];
  c.reset();
  std::string text = "<tool_call>";
  c.accept_text(text);
  for (size_t i = 1; i < size && c.in_call(); ++i) {
    const char b = char(data[i]);
    try {
      c.accept_text(std::string_view(&b, 1));
    } catch (const std::invalid_argument&) {
      break;  // the grammar refused the byte: what came before is the prefix under test
    }
    text += b;
  }
  if (c.in_call()) {
    if (c.allowed_tokens().empty()) fail("no token allowed inside an open call", text);
    return 0;
  }
  static const ToolSpecs specs = read_tool_specs(kTools);
  ParsedMessage m = parse_assistant_text(format, text, kTools);
  if (m.calls.size() != 1) fail("the closed call did not parse as one call", text);
  const ParsedCall& pc = m.calls[0];
  if (!pc.error.empty()) fail("the closed call has an error: " + pc.error, text);
  const ToolSpec* tool = specs.find(pc.call.name);
  if (!tool) fail("unknown tool", text);
  for (const ParamSpec& p : tool->params)
    if (p.required && !pc.call.arguments.contains(p.name)) fail("required parameter missing: " + p.name, text);
  for (const auto& [key, value] : pc.call.arguments.items()) {
    const ParamSpec* p = tool->find(key);
    if (!p) fail("unknown parameter " + key, text);
    const bool ok = p->type == ValueType::Any || (p->type == ValueType::String && value.is_string()) ||
                    (p->type == ValueType::Integer && value.is_number_integer()) || (p->type == ValueType::Number && value.is_number()) ||
                    (p->type == ValueType::Boolean && value.is_boolean()) || (p->type == ValueType::Object && value.is_object()) ||
                    (p->type == ValueType::Array && value.is_array());
    if (!ok) fail("parameter " + key + " has the wrong type: " + value.dump(), text);
    if (!p->enum_values.empty() && std::find(p->enum_values.begin(), p->enum_values.end(), value) == p->enum_values.end())
      fail("parameter " + key + " is not in its enum: " + value.dump(), text);
  }
  return 0;
}
