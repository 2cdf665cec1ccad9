// Tool-call parsing: every format our models speak, malformed calls, reasoning, OpenAI messages, the
// round trip through render_chat, and the streaming parser against the one-shot parse for every way
// of cutting the text into pieces.
#include "agent/tool_calls.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/utf8.h"

namespace flashfix::agent {
namespace {

using json = nlohmann::ordered_json;

const json kTools = json::parse(R"([
  {"type": "function", "function": {"name": "read_file", "description": "Read a file.", "parameters": {"type": "object",
    "properties": {"path": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"}}, "required": ["path"]}}},
  {"type": "function", "function": {"name": "run", "description": "Run a command.", "parameters": {"type": "object",
    "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}, "shell": {"type": "boolean"},
                   "env": {"type": "object"}, "args": {"type": "array"}, "mode": {"type": "string", "enum": ["fast", "full"]}},
    "required": ["command"]}}}
])");

constexpr ChatFormat kAll[] = {ChatFormat::Qwen3, ChatFormat::Qwen3Coder, ChatFormat::Step35};

ParsedMessage parse(ChatFormat f, std::string_view text) { return parse_assistant_text(f, text, kTools); }

void expect_same(const ParsedMessage& a, const ParsedMessage& b, const std::string& where) {
  EXPECT_EQ(a.reasoning, b.reasoning) << where;
  EXPECT_EQ(a.content, b.content) << where;
  ASSERT_EQ(a.calls.size(), b.calls.size()) << where;
  for (size_t i = 0; i < a.calls.size(); ++i) {
    EXPECT_EQ(a.calls[i].call.id, b.calls[i].call.id) << where;
    EXPECT_EQ(a.calls[i].call.name, b.calls[i].call.name) << where;
    EXPECT_EQ(a.calls[i].call.arguments.dump(), b.calls[i].call.arguments.dump()) << where;
    EXPECT_EQ(a.calls[i].error, b.calls[i].error) << where;
    EXPECT_EQ(a.calls[i].raw, b.calls[i].raw) << where;
  }
}

// ---- One-shot parsing ----------------------------------------------------------------------------

TEST(ToolCalls, Qwen3JsonCallWithThinking) {
  auto m = parse(ChatFormat::Qwen3,
                 "<think>\nThe test reads a.txt.\n</think>\n\nLet me look.\n<tool_call>\n"
                 "{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.txt\", \"start\": 3}}\n</tool_call>");
  EXPECT_EQ(m.reasoning, "The test reads a.txt.");
  EXPECT_EQ(m.content, "Let me look.");
  ASSERT_EQ(m.calls.size(), 1u);
  EXPECT_EQ(m.calls[0].error, "");
  EXPECT_EQ(m.calls[0].call.id, "call_0");
  EXPECT_EQ(m.calls[0].call.name, "read_file");
  EXPECT_EQ(m.calls[0].call.arguments.dump(), R"({"path":"a.txt","start":3})");
  EXPECT_EQ(m.calls[0].raw, "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.txt\", \"start\": 3}}\n</tool_call>");
}

TEST(ToolCalls, JsonWhitespaceVariantsAndStringArguments) {
  auto m = parse(ChatFormat::Qwen3,
                 "<tool_call>{\"name\":\"run\",\"arguments\":{\"command\":\"ls\"}}</tool_call>"
                 "<tool_call>\n  {\n \"name\" : \"run\" ,\n \"arguments\" : \"{\\\"command\\\": \\\"pwd\\\"}\" }\n\n</tool_call>"
                 "<tool_call>{\"name\": \"git_diff\"}</tool_call>");
  ASSERT_EQ(m.calls.size(), 3u);
  EXPECT_EQ(m.calls[0].call.arguments.dump(), R"({"command":"ls"})");
  EXPECT_EQ(m.calls[1].error, "");
  EXPECT_EQ(m.calls[1].call.arguments.dump(), R"({"command":"pwd"})");
  EXPECT_EQ(m.calls[2].call.name, "git_diff");
  EXPECT_EQ(m.calls[2].call.arguments.dump(), "{}");
  EXPECT_EQ(m.calls[2].call.id, "call_2");
  EXPECT_EQ(m.content, "");
}

TEST(ToolCalls, XmlCallsWithTypedValues) {
  const std::string text =
      "I will run it.\n<tool_call>\n<function=run>\n<parameter=command>\nmake test\n  && echo \"<ok>\"\n\n</parameter>\n"
      "<parameter=timeout>\n2.5\n</parameter>\n<parameter=shell>\nTrue\n</parameter>\n"
      "<parameter=env>\n{\"CC\": \"gcc\"}\n</parameter>\n<parameter=args>\n[\"-j\", 2]\n</parameter>\n"
      "</function>\n</tool_call>\n<tool_call>\n<function=read_file>\n<parameter=path>\n42\n</parameter>\n"
      "<parameter=start>\n 42 \n</parameter>\n</function>\n</tool_call>";
  for (ChatFormat f : {ChatFormat::Qwen3Coder, ChatFormat::Step35, ChatFormat::Qwen3}) {
    auto m = parse(f, text);
    EXPECT_EQ(m.content, "I will run it.");
    ASSERT_EQ(m.calls.size(), 2u);
    EXPECT_EQ(m.calls[0].error, "");
    EXPECT_EQ(m.calls[0].call.name, "run");
    // Only the one newline on each side that the template adds is not part of a string value.
    EXPECT_EQ(m.calls[0].call.arguments.dump(),
              R"({"command":"make test\n  && echo \"<ok>\"\n","timeout":2.5,"shell":true,"env":{"CC":"gcc"},"args":["-j",2]})");
    EXPECT_EQ(m.calls[1].call.arguments.dump(), R"({"path":"42","start":42})");
  }
}

TEST(ToolCalls, XmlWithoutSchemaKeepsScalarsAsText) {
  auto m = parse_assistant_text(ChatFormat::Qwen3Coder,
                                "<tool_call>\n<function=other>\n<parameter=n>\n42\n</parameter>\n"
                                "<parameter=o>\n{\"a\": [1]}\n</parameter>\n</function>\n</tool_call>");
  ASSERT_EQ(m.calls.size(), 1u);
  EXPECT_EQ(m.calls[0].call.arguments.dump(), R"({"n":"42","o":{"a":[1]}})");
}

TEST(ToolCalls, MalformedCallsBecomeErrors) {
  struct Bad {
    ChatFormat format;
    std::string text, error_part;
  };
  const std::vector<Bad> cases = {
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"ls\"\n</tool_call>", "not valid JSON"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": ls}}\n</tool_call>", "column"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"arguments\": {}}\n</tool_call>", "no \"name\""},
      {ChatFormat::Qwen3, "<tool_call>\n[1, 2]\n</tool_call>", "expected <function=NAME>"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": [1]}\n</tool_call>", "must be a JSON object"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": \"{bad\"}\n</tool_call>", "must be a JSON object"},
      {ChatFormat::Qwen3, "<tool_call>\n\n</tool_call>", "empty"},
      {ChatFormat::Qwen3Coder, "<tool_call>\n<function=run>\n<parameter=command>\nls\n</function>\n</tool_call>",
       "'command' is not closed"},
      {ChatFormat::Qwen3Coder, "<tool_call>\n<function=read_file>\n<parameter=start>\nten\n</parameter>\n</function>\n</tool_call>",
       "'start' must be an integer, got \"ten\""},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=shell>\nmaybe\n</parameter>\n</function>\n</tool_call>",
       "'shell' must be a boolean"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=env>\n{\"a\": \n</parameter>\n</function>\n</tool_call>",
       "'env' must be an object"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\nls -l\n</function>\n</tool_call>", "expected <parameter=NAME> or </function>, got \"ls -l"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=command>\na\n</parameter>\n<parameter=command>\nb\n</parameter>\n</tool_call>",
       "given twice"},
      {ChatFormat::Step35, "<tool_call>\n<function=>\n</function>\n</tool_call>", "invalid function name"},
      {ChatFormat::Step35, "<tool_call>\n<function=run\n</tool_call>", "not closed with '>'"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n</function>\ntrailing\n</tool_call>", "unexpected text after </function>"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"timeout\": 1e999}}\n</tool_call>", "number overflow"},
      {ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"\xC3(\"}}\n</tool_call>", "UTF-8"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=command>\n\xE2\x82\n</parameter>\n</function>\n</tool_call>",
       "'command' is not valid UTF-8"},
      {ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=timeout>\n1e999\n</parameter>\n</function>\n</tool_call>",
       "'timeout' must be a number"},
  };
  for (const Bad& b : cases) {
    auto m = parse(b.format, "Before. " + b.text + " After.");
    ASSERT_EQ(m.calls.size(), 1u) << b.text;
    EXPECT_NE(m.calls[0].error.find(b.error_part), std::string::npos) << b.text << "\n got: " << m.calls[0].error;
    EXPECT_EQ(m.content, "Before.  After.") << b.text;
  }
}

TEST(ToolCalls, MissingClosingTagsAtTheEndAreTolerated) {
  auto a = parse(ChatFormat::Qwen3, "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"ls\"}}\n");
  ASSERT_EQ(a.calls.size(), 1u);
  EXPECT_EQ(a.calls[0].error, "");
  EXPECT_EQ(a.calls[0].call.arguments.dump(), R"({"command":"ls"})");
  auto b = parse(ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=command>\nls\n</parameter>\n");
  ASSERT_EQ(b.calls.size(), 1u);
  EXPECT_EQ(b.calls[0].error, "");
  EXPECT_EQ(b.calls[0].call.arguments.dump(), R"({"command":"ls"})");
  // A truncated value is not silently accepted.
  auto c = parse(ChatFormat::Step35, "<tool_call>\n<function=run>\n<parameter=command>\nls -");
  ASSERT_EQ(c.calls.size(), 1u);
  EXPECT_NE(c.calls[0].error.find("not closed"), std::string::npos);
  // A second <tool_call> closes an unclosed first one.
  auto d = parse(ChatFormat::Qwen3Coder,
                 "<tool_call>\n<function=run>\n<parameter=command>\nls\n</parameter>\n</function>\n"
                 "<tool_call>\n<function=run>\n<parameter=command>\npwd\n</parameter>\n</function>\n</tool_call>");
  ASSERT_EQ(d.calls.size(), 2u);
  EXPECT_EQ(d.calls[0].error, "");
  EXPECT_EQ(d.calls[1].call.arguments.dump(), R"({"command":"pwd"})");
}

TEST(ToolCalls, BareFunctionInXmlFormats) {
  const std::string text = "Running.\n<function=run>\n<parameter=command>\nls\n</parameter>\n</function>\n</tool_call>\nDone.";
  for (ChatFormat f : {ChatFormat::Qwen3Coder, ChatFormat::Step35}) {
    auto m = parse(f, text);
    ASSERT_EQ(m.calls.size(), 1u);
    EXPECT_EQ(m.calls[0].call.name, "run");
    EXPECT_EQ(m.calls[0].raw, "<function=run>\n<parameter=command>\nls\n</parameter>\n</function>");
    EXPECT_EQ(m.content, "Running.\n\n\nDone.");
  }
  auto q = parse(ChatFormat::Qwen3, text);  // Qwen3 never speaks XML without the wrapper: it is text
  EXPECT_TRUE(q.calls.empty());
}

TEST(ToolCalls, ReasoningVariants) {
  auto a = StreamParser(ChatFormat::Step35, true);
  a.feed("The prompt opened the block.\n</think>\nAnswer.");
  a.finish();
  EXPECT_EQ(a.message().reasoning, "The prompt opened the block.");
  EXPECT_EQ(a.message().content, "Answer.");
  // The same without being told: a lone </think> makes what came before reasoning.
  auto b = parse(ChatFormat::Qwen3, "The prompt opened the block.\n</think>\nAnswer.");
  EXPECT_EQ(b.reasoning, "The prompt opened the block.");
  EXPECT_EQ(b.content, "Answer.");
  // A call straight out of reasoning (no </think>) ends it.
  auto c = StreamParser(ChatFormat::Step35, true, kTools);
  c.feed("I need the file.\n<tool_call>\n<function=read_file>\n<parameter=path>\nx\n</parameter>\n</function>\n</tool_call>");
  c.finish();
  EXPECT_EQ(c.message().reasoning, "I need the file.");
  ASSERT_EQ(c.message().calls.size(), 1u);
  EXPECT_EQ(c.message().calls[0].call.name, "read_file");
  // Empty reasoning (enable_thinking=false style) and no reasoning at all.
  EXPECT_EQ(parse(ChatFormat::Qwen3, "<think>\n\n</think>\n\nHi").reasoning, "");
  EXPECT_EQ(parse(ChatFormat::Qwen3, "<think>\n\n</think>\n\nHi").content, "Hi");
  EXPECT_EQ(parse(ChatFormat::Qwen3Coder, "Just text < with > brackets <b>").content, "Just text < with > brackets <b>");
  // A second lone </think> is not reasoning any more: the tag is dropped.
  auto e = parse(ChatFormat::Qwen3, "<think>a</think>b</think>c");
  EXPECT_EQ(e.reasoning, "a");
  EXPECT_EQ(e.content, "bc");
  // Unclosed reasoning at the end.
  auto d = parse(ChatFormat::Qwen3, "<think>\nstill thinking");
  EXPECT_EQ(d.reasoning, "still thinking");
  EXPECT_EQ(d.content, "");
}

TEST(ToolCalls, LoneThinkEndResendsTheTextAsReasoning) {
  StreamParser p(ChatFormat::Qwen3, false);
  std::vector<StreamEvent> events = p.feed("I should read it.\n</thi");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, StreamEvent::Content);
  EXPECT_EQ(events[0].text, "I should read it.");
  events = p.feed("nk>\n\nReading.");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, StreamEvent::Reasoning);
  EXPECT_EQ(events[0].text, "I should read it.");
  EXPECT_EQ(events[1].kind, StreamEvent::Content);
  EXPECT_EQ(events[1].text, "Reading.");
  p.finish();
  EXPECT_EQ(p.message().reasoning, "I should read it.");
  EXPECT_EQ(p.message().content, "Reading.");
}

// ---- Round trip through the chat templates -------------------------------------------------------

TEST(ToolCalls, RoundTripThroughRenderChat) {
  std::vector<ToolCall> calls = {
      {"c1", "run", json::parse(R"({"command": "grep -n \"x\" a.c\nline2 <tag> ä", "timeout": 2.5, "shell": false,
                                   "env": {"A": "1", "B": [1, 2.25, null]}, "args": ["-l", 3, true], "mode": "full"})")},
      {"c2", "read_file", json::parse(R"({"path": "src/main.cpp", "start": 10, "end": 20})")},
      {"c3", "read_file", json::parse(R"({"path": "  padded  "})")},
  };
  for (ChatFormat f : kAll) {
    std::vector<ChatMessage> msgs = {
        {"user", "Fix it."},
        {"assistant", "Looking at the sources.", "The failure is in main.", calls},
    };
    RenderOptions opt;
    opt.add_generation_prompt = false;
    opt.append_only = true;
    const std::string prompt = render_chat(f, msgs, kTools, opt);
    const std::string head = "<|im_start|>assistant\n";
    size_t begin = prompt.rfind(head) + head.size();
    size_t end = prompt.rfind("<|im_end|>");
    auto m = parse(f, std::string_view(prompt).substr(begin, end - begin));
    if (f != ChatFormat::Qwen3Coder) {
      EXPECT_EQ(m.reasoning, "The failure is in main.");
    }
    EXPECT_EQ(m.content, "Looking at the sources.");
    ASSERT_EQ(m.calls.size(), calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(m.calls[i].error, "");
      EXPECT_EQ(m.calls[i].call.name, calls[i].name);
      EXPECT_EQ(m.calls[i].call.arguments, calls[i].arguments) << int(f);
    }
  }
}

// ---- OpenAI messages -----------------------------------------------------------------------------

TEST(ToolCalls, OpenAiMessages) {
  auto m = parse_openai_message(nlohmann::json::parse(R"({"role": "assistant", "content": "Reading.",
      "reasoning_content": " because ", "tool_calls": [
        {"id": "call_abc", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"a\", \"start\": 2}"}},
        {"id": "call_def", "type": "function", "function": {"name": "run", "arguments": "{\"command\": "}},
        {"type": "function", "function": {"name": "run", "arguments": "[1]"}},
        {"type": "function", "function": {"arguments": "{}"}},
        {"type": "function", "function": {"name": "git_diff", "arguments": ""}}]})"));
  EXPECT_EQ(m.content, "Reading.");
  EXPECT_EQ(m.reasoning, "because");
  ASSERT_EQ(m.calls.size(), 5u);
  EXPECT_EQ(m.calls[0].call.id, "call_abc");
  EXPECT_EQ(m.calls[0].call.arguments.dump(), R"({"path":"a","start":2})");  // key order kept
  EXPECT_EQ(m.calls[0].error, "");
  EXPECT_EQ(m.calls[1].call.id, "call_def");
  EXPECT_NE(m.calls[1].error.find("not valid JSON"), std::string::npos) << m.calls[1].error;
  EXPECT_EQ(m.calls[2].call.id, "call_2");
  EXPECT_NE(m.calls[2].error.find("must be a JSON object"), std::string::npos);
  EXPECT_NE(m.calls[3].error.find("no function name"), std::string::npos);
  EXPECT_EQ(m.calls[4].error, "");
  EXPECT_EQ(m.calls[4].call.arguments.dump(), "{}");

  // A server without a tool parser passes the model's text through.
  auto raw = parse_openai_message(nlohmann::json::parse(R"({"role": "assistant", "content":
      "<think>hmm</think>ok<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>"})"));
  EXPECT_EQ(raw.reasoning, "hmm");
  EXPECT_EQ(raw.content, "ok");
  ASSERT_EQ(raw.calls.size(), 1u);
  EXPECT_EQ(raw.calls[0].call.name, "run");
  auto null_content = parse_openai_message(nlohmann::json::parse(R"({"role": "assistant", "content": null})"));
  EXPECT_EQ(null_content.content, "");
  EXPECT_EQ(parse_openai_message(nlohmann::json::parse("[]")).calls.at(0).error, "the response message is not a JSON object");
}

// ---- Streaming -----------------------------------------------------------------------------------

struct Collected {
  std::string reasoning, content;
  std::vector<std::string> names, ids, args, errors;
};

void collect(Collected& c, const std::vector<StreamEvent>& events) {
  for (const StreamEvent& e : events) {
    switch (e.kind) {
      case StreamEvent::Reasoning: c.reasoning += e.text; break;
      case StreamEvent::Content: c.content += e.text; break;
      case StreamEvent::CallBegin:
        ASSERT_EQ(size_t(e.call_index), c.names.size());
        c.names.push_back(e.call_name), c.ids.push_back(e.call_id), c.args.emplace_back(), c.errors.emplace_back();
        break;
      case StreamEvent::CallArguments:
        ASSERT_EQ(size_t(e.call_index) + 1, c.args.size());
        c.args.back() += e.text;
        break;
      case StreamEvent::CallEnd:
        ASSERT_EQ(size_t(e.call_index) + 1, c.errors.size());
        c.errors.back() = e.error.empty() ? "ok" : e.error;
        break;
    }
  }
}

// The events tell the same story as the final message.
void check_events(const Collected& c, const ParsedMessage& m, const std::string& where) {
  EXPECT_EQ(c.reasoning, m.reasoning) << where;
  EXPECT_EQ(c.content, m.content) << where;
  ASSERT_EQ(c.names.size(), m.calls.size()) << where;
  for (size_t i = 0; i < m.calls.size(); ++i) {
    EXPECT_EQ(c.ids[i], m.calls[i].call.id) << where;
    EXPECT_EQ(c.names[i], m.calls[i].call.name) << where;
    EXPECT_EQ(c.errors[i], m.calls[i].error.empty() ? "ok" : m.calls[i].error) << where;
    if (m.calls[i].error.empty()) {  // XML: exactly dump(); JSON: the model's own text of the same value
      EXPECT_EQ(json::parse(c.args[i], nullptr, false), m.calls[i].call.arguments) << where << " args " << c.args[i];
      if (m.calls[i].raw.find("<function=") != std::string::npos) {
        EXPECT_EQ(c.args[i], m.calls[i].call.arguments.dump()) << where;
      }
    }
  }
}

struct StreamInput {
  ChatFormat format;
  bool in_reasoning;
  std::string text;
};
const std::vector<StreamInput> kStreamInputs = {
    {ChatFormat::Qwen3, false, "<think>\nplan: read ä\n</think>\n\nText <b> é.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": "
                        "{\"path\": \"a.txt\", \"start\": 3}}\n</tool_call>\n<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"x\"}}\n</tool_call>"},
    {ChatFormat::Qwen3, false, "Broken <tool_call>{\"name\": \"run\", \"arguments\": {bad}}</tool_call> then <tool_call>{\"name\":\"run\""},
    {ChatFormat::Qwen3Coder, false, "Sure.\n<tool_call>\n<function=run>\n<parameter=command>\nmake <x> </para\n</parameter>\n"
                             "<parameter=shell>\nfalse\n</parameter>\n</function>\n</tool_call>\n<function=read_file>\n<parameter=path>\n€\n"
                             "</parameter>\n</function></tool_call> tail <"},
    {ChatFormat::Step35, true, "reasoning 🙂 here\n</think>\n<tool_call>\n<function=read_file>\n<parameter=start>\nx\n</parameter>\n"
                         "</function>\n</tool_call><tool_call>\n<function=run>\n<parameter=command>\nls"},
    {ChatFormat::Step35, false, "<think>a</think>b</think>c<think"},
    // Found by fuzz/tool_calls_fuzz: an unbalanced string runs into the closing tag, which streaming
    // must not take for arguments.
    {ChatFormat::Qwen3, false, "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path!: \"a.txt\", \"start\": 3}}\n</tool_call>"},
    {ChatFormat::Qwen3, false, "<tool_call>{\"name\": \"run\", \"arguments\": {\"command\": \"<tool_\"}}</tool_call>"},
};

TEST(ToolCalls, StreamingMatchesOneShotForEverySplit) {
  for (const auto& [format, in_reasoning, text] : kStreamInputs) {
    StreamParser whole(format, in_reasoning, kTools);
    whole.feed(text);
    whole.finish();
    const ParsedMessage want = whole.message();
    auto run = [&, format = format, in_reasoning = in_reasoning](const std::vector<std::string_view>& pieces, const std::string& where) {
      StreamParser p(format, in_reasoning, kTools);
      Collected c;
      for (std::string_view piece : pieces) collect(c, p.feed(piece));
      collect(c, p.finish());
      expect_same(p.message(), want, where);
      check_events(c, p.message(), where);
    };
    const std::string_view t = text;
    for (size_t cut = 0; cut <= t.size(); ++cut) run({t.substr(0, cut), t.substr(cut)}, text + " cut at " + std::to_string(cut));
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < t.size(); ++i) bytes.push_back(t.substr(i, 1));
    run(bytes, text + " byte by byte");
  }
}

// A whole file written through write_file arrives in thousands of pieces; the parser must not re-read
// the call for each (quadratic: minutes for this input instead of milliseconds).
TEST(ToolCalls, JsonArgumentsStreamAsTheModelWritesThem) {
  StreamParser p(ChatFormat::Qwen3, false, kTools);
  auto texts = [](const std::vector<StreamEvent>& ev) {
    std::string s;
    for (const auto& e : ev) s += std::to_string(int(e.kind)) + ":" + e.text + e.call_name + "|";
    return s;
  };
  EXPECT_EQ(texts(p.feed("<tool_call>\n{\"name\": \"read_")), "");
  EXPECT_EQ(texts(p.feed("file\", \"arguments\"")), "2:read_file|");
  EXPECT_EQ(texts(p.feed(": {\"path\": \"caf\xC3")), "3:{\"path\": \"caf|");  // half of é waits
  EXPECT_EQ(texts(p.feed("\xA9 }\\\"\", \"start\"")), "3:\xC3\xA9 }\\\"\", \"start\"|");  // a brace in a string
  EXPECT_EQ(texts(p.feed(": 2}}\n</tool_call>")), "3:: 2}|4:|");
  p.finish();
  EXPECT_EQ(p.message().calls.at(0).call.arguments.dump(), "{\"path\":\"caf\xC3\xA9 }\\\"\",\"start\":2}");
  // What went out must be what the parse found: a repeated key is an error, not a silent choice.
  auto twice = parse(ChatFormat::Qwen3, "<tool_call>{\"name\": \"run\", \"arguments\": {}, \"arguments\": {\"command\": \"x\"}}</tool_call>");
  EXPECT_EQ(twice.calls.at(0).error, "the tool call gives \"arguments\" more than once");  // nlohmann keeps the last
  auto names = parse(ChatFormat::Qwen3, "<tool_call>{\"name\": \"run\", \"name\": \"git_diff\"}</tool_call>");
  EXPECT_EQ(names.calls.at(0).error, "the tool call gives \"name\" more than once");
  EXPECT_EQ(names.calls[0].call.name, "run");  // the one CallBegin announced
}

TEST(ToolCalls, LongCallsStreamInLinearTime) {
  std::string file;
  for (int i = 0; file.size() < 400000; ++i) file += "line " + std::to_string(i) + " <b>x</b> -> y\n";
  const std::string xml = "<tool_call>\n<function=run>\n<parameter=command>\n" + file + "\n</parameter>\n</function>\n</tool_call>";
  const std::string js = "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": " + json(file).dump() + "}}\n</tool_call>";
  for (const auto& [format, text] : {std::pair{ChatFormat::Qwen3Coder, xml}, std::pair{ChatFormat::Qwen3, js}}) {
    StreamParser p(format, false, kTools);
    size_t events = 0;
    for (size_t pos = 0; pos < text.size(); pos += 3) events += p.feed(std::string_view(text).substr(pos, 3)).size();
    events += p.finish().size();
    ASSERT_EQ(p.message().calls.size(), 1u);
    EXPECT_EQ(p.message().calls[0].error, "");
    EXPECT_EQ(p.message().calls[0].call.arguments["command"], file);
    // XML: begin, the parameter, the closing brace, end. JSON: the arguments stream as they come.
    if (format == ChatFormat::Qwen3) {
      EXPECT_GT(events, file.size() / 3 - 10);
    } else {
      EXPECT_EQ(events, 4u);
    }
  }
}

TEST(ToolCalls, StreamingEmitsPromptlyAndHoldsOnlyWhatItMust) {
  StreamParser p(ChatFormat::Qwen3Coder, false, kTools);
  auto texts = [](const std::vector<StreamEvent>& ev) {
    std::string s;
    for (const auto& e : ev) s += std::to_string(int(e.kind)) + ":" + e.text + e.call_name + "|";
    return s;
  };
  EXPECT_EQ(texts(p.feed("Hello wor")), "1:Hello wor|");
  EXPECT_EQ(texts(p.feed("ld <to")), "1:ld|");              // " <to" may start <tool_call>
  EXPECT_EQ(texts(p.feed("p> and \xE2\x82")), "1: <top> and|");  // half of €, and a maybe-trailing space
  EXPECT_EQ(texts(p.feed("\xAC")), "1: \xE2\x82\xAC|");
  EXPECT_EQ(texts(p.feed("\n<tool_call>\n<function=run>")), "2:run|");
  EXPECT_EQ(texts(p.feed("\n<parameter=command>\nls\n</parameter>\n")), "3:{\"command\":\"ls\"|");
  EXPECT_EQ(texts(p.feed("<parameter=timeout>\n1\n</parameter>\n</function>\n</tool")), "3:,\"timeout\":1|");
  EXPECT_EQ(texts(p.feed("_call>")), "3:}|4:|");
  EXPECT_EQ(texts(p.finish()), "");
  EXPECT_THROW(p.feed("x"), std::logic_error);
}

// The tail every text stream (this parser, the server's TextStream, flashfix generate) holds back.
TEST(Utf8, IncompleteTailIsHeldOnlyWhileItCanStillComplete) {
  EXPECT_EQ(incomplete_utf8_tail(""), 0u);
  EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xC3"), 1u);
  EXPECT_EQ(incomplete_utf8_tail("a\xC3\xA9"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("\xE2\x82"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("\xE2\x82\xAC"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("x\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\x80"), 0u);          // a stray continuation byte never completes
  EXPECT_EQ(incomplete_utf8_tail("a\xF8"), 0u);          // nor does a byte that is never a lead byte
  EXPECT_EQ(incomplete_utf8_tail("\xFF\x80\x80"), 0u);
}

}  // namespace
}  // namespace flashfix::agent
