// libFuzzer entry for the tool-call parser: any model output must parse without an exception, the
// streaming parser must end with exactly the one-shot result whatever the pieces, its events must tell
// the same story as the final message, and every call without an error must hold arguments that
// serialize as strict JSON and equal what its argument fragments spell. The first input byte picks the format, the reasoning start, whether the
// tools' schemas are known, and how the rest is cut into pieces.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/tool_calls.h"

using namespace flashfix;
using namespace flashfix::agent;

namespace {

using json = nlohmann::ordered_json;

const json& tools() {
  static const json t = json::parse(R"([
    {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object",
      "properties": {"path": {"type": "string"}, "start": {"type": "integer"}}, "required": ["path"]}}},
    {"type": "function", "function": {"name": "run", "parameters": {"type": "object",
      "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}, "shell": {"type": "boolean"},
                     "env": {"type": "object"}, "args": {"type": "array"}, "none": {"type": "null"}}}}}
  ])");
  return t;
}

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "tool_calls_fuzz: %s\ninput: %s\n", what,
               json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  std::abort();
}

bool same(const ParsedMessage& a, const ParsedMessage& b) {
  if (a.reasoning != b.reasoning || a.content != b.content || a.calls.size() != b.calls.size()) return false;
  for (size_t i = 0; i < a.calls.size(); ++i) {
    const ParsedCall &x = a.calls[i], &y = b.calls[i];
    if (x.call.id != y.call.id || x.call.name != y.call.name || x.call.arguments != y.call.arguments || x.error != y.error ||
        x.raw != y.raw)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const ChatFormat format = mode % 3 == 0 ? ChatFormat::Qwen3 : mode % 3 == 1 ? ChatFormat::Qwen3Coder : ChatFormat::Step35;
  const bool in_reasoning = mode & 4, with_tools = mode & 8;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto make = [&] { return with_tools ? StreamParser(format, in_reasoning, tools()) : StreamParser(format, in_reasoning); };

  StreamParser whole = make();
  whole.feed(text);
  whole.finish();
  const ParsedMessage& want = whole.message();

  // Pieces of 1..8 bytes from a small generator seeded by the mode byte.
  StreamParser cut = make();
  std::string reasoning, content;
  std::vector<std::string> args(want.calls.size());
  size_t begun = 0, ended = 0;
  auto take = [&](const std::vector<StreamEvent>& events) {
    for (const StreamEvent& e : events) {
      if (e.kind == StreamEvent::Reasoning) reasoning += e.text;
      if (e.kind == StreamEvent::Content) content += e.text;
      if (e.kind == StreamEvent::CallBegin && size_t(e.call_index) != begun++) fail("CallBegin out of order", text);
      if (e.kind == StreamEvent::CallArguments) {
        if (size_t(e.call_index) >= args.size() || size_t(e.call_index) + 1 != begun) fail("CallArguments for no open call", text);
        args[size_t(e.call_index)] += e.text;
      }
      if (e.kind == StreamEvent::CallEnd && size_t(e.call_index) != ended++) fail("CallEnd out of order", text);
    }
  };
  uint32_t rng = mode * 2654435761u + 1;
  for (size_t pos = 0; pos < text.size();) {
    rng = rng * 1664525u + 1013904223u;
    const size_t n = 1 + (rng >> 28) % 8;
    take(cut.feed(text.substr(pos, n)));
    pos += n;
  }
  take(cut.finish());
  if (!same(cut.message(), want)) fail("streamed result differs from the one-shot parse", text);
  // Content before a lone </think> is sent as content, then again as reasoning (tool_calls.h).
  if (reasoning != want.reasoning || !content.ends_with(want.content)) fail("text events differ from the message", text);
  if (begun != want.calls.size() || ended != want.calls.size()) fail("call events do not match the calls", text);
  for (size_t i = 0; i < want.calls.size(); ++i) {
    const ParsedCall& c = want.calls[i];
    if (!c.error.empty()) continue;
    if (!c.call.arguments.is_object() || c.call.name.empty()) fail("a call without error lacks a name or an object", text);
    (void)c.call.arguments.dump();  // strict: throws on invalid UTF-8
    if (json::parse(args[i], nullptr, false) != c.call.arguments) fail("argument fragments differ from the arguments", text);
  }

  const nlohmann::json message = nlohmann::json::parse(text, nullptr, false);
  if (!message.is_discarded()) (void)parse_openai_message(message);
  return 0;
}
