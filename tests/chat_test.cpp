// Chat formatting tests.
//
// The expected prompts in tests/data/chat/<case>.<format>.txt are rendered from the real Jinja
// templates in ../shared/templates, not written by hand. Regenerate them after editing a case with
//     /usr/bin/python3 tests/data/chat/make_fixtures.py /work/shared/templates
// (Debian's python3-jinja2; the script mirrors transformers' Jinja environment).
#include "engine/chat.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashfix {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

// Must equal STEP_BOS in make_fixtures.py.
const std::string kStepBos = "<｜begin▁of▁sentence｜>";
const fs::path kDataDir = fs::path(FLASHFIX_SOURCE_DIR) / "tests/data/chat";

struct Format {
  ChatFormat format;
  const char* name;  // fixture suffix
};
constexpr Format kFormats[] = {
    {ChatFormat::Qwen3, "qwen3"}, {ChatFormat::Qwen3Coder, "qwen3coder"}, {ChatFormat::Step35, "step35"}};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has(const json& list, std::string_view name) {
  for (const auto& s : list) {
    if (s.get<std::string>() == name) return true;
  }
  return false;
}

struct Case {
  std::string name;
  std::vector<ChatMessage> messages;
  json tools;
  json formats;            // formats the case is rendered with
  json append_only_differs;  // formats where the template rewrites history (see chat.h)
  RenderOptions options;
};

ChatMessage to_message(const json& m) {
  ChatMessage msg{m.at("role"), m.value("content", ""), m.value("reasoning_content", ""), {},
                  m.value("tool_call_id", ""), m.value("name", "")};
  for (const auto& tc : m.value("tool_calls", json::array())) {
    const json& fn = tc.at("function");
    msg.tool_calls.push_back({tc.value("id", ""), fn.at("name"), fn.at("arguments")});
  }
  return msg;
}

std::vector<Case> load_cases() {
  std::vector<Case> cases;
  for (const auto& entry : fs::directory_iterator(kDataDir)) {
    if (entry.path().extension() != ".json") continue;
    json j = json::parse(read_file(entry.path()));
    if (!j.contains("messages")) continue;  // shared tool lists
    Case c;
    c.name = entry.path().stem().string();
    for (const auto& m : j["messages"]) c.messages.push_back(to_message(m));
    c.tools = j.value("tools", json());
    if (c.tools.is_string()) c.tools = json::parse(read_file(kDataDir / c.tools.get<std::string>()));
    c.formats = j.value("formats", json{"qwen3", "qwen3coder", "step35"});
    c.append_only_differs = j.value("append_only_differs", json::array());
    c.options.add_generation_prompt = j.value("add_generation_prompt", true);
    c.options.enable_thinking = j.value("enable_thinking", true);
    cases.push_back(std::move(c));
  }
  return cases;
}

RenderOptions options_for(const Case& c, const Format& f, bool append_only, bool generation_prompt) {
  RenderOptions o = c.options;
  o.append_only = append_only;
  o.add_generation_prompt = generation_prompt;
  if (f.format == ChatFormat::Step35) o.bos_text = kStepBos;
  return o;
}

std::vector<ChatMessage> first(const std::vector<ChatMessage>& msgs, size_t n) {
  return {msgs.begin(), msgs.begin() + n};
}

TEST(Chat, MatchesRealTemplates) {
  const auto cases = load_cases();
  ASSERT_GE(cases.size(), 12u);
  int compared = 0;
  for (const Case& c : cases) {
    for (const Format& f : kFormats) {
      if (!has(c.formats, f.name)) continue;
      SCOPED_TRACE(c.name + "." + f.name);
      const std::string expected = read_file(kDataDir / (c.name + "." + f.name + ".txt"));
      const bool gen = c.options.add_generation_prompt;
      EXPECT_EQ(render_chat(f.format, c.messages, c.tools, options_for(c, f, false, gen)), expected);
      // Append-only rendering is the template's own wherever the template does not rewrite history.
      const std::string append_only = render_chat(f.format, c.messages, c.tools, options_for(c, f, true, gen));
      if (has(c.append_only_differs, f.name)) {
        EXPECT_NE(append_only, expected);
      } else {
        EXPECT_EQ(append_only, expected);
      }
      ++compared;
    }
  }
  EXPECT_GE(compared, 36);
}

// The property the prefix cache relies on, over every fixture conversation and format: each added
// message only appends text, and a generation prompt is a prefix of the assistant turn answering it.
TEST(Chat, AppendOnlyRenderingOnlyAppends) {
  for (const Case& c : load_cases()) {
    for (const Format& f : kFormats) {
      if (!has(c.formats, f.name)) continue;
      SCOPED_TRACE(c.name + "." + f.name);
      // Starts at one message: the first one decides the system header (a system message or not).
      std::string prev = render_chat(f.format, first(c.messages, 1), c.tools, options_for(c, f, true, false));
      for (size_t n = 2; n <= c.messages.size(); ++n) {
        const auto msgs = first(c.messages, n);
        const std::string cur = render_chat(f.format, msgs, c.tools, options_for(c, f, true, false));
        EXPECT_TRUE(cur.starts_with(prev)) << "message " << n - 1 << " rewrote earlier text:\n" << cur;
        if (c.messages[n - 1].role == "assistant") {
          const std::string prompt =
              render_chat(f.format, first(c.messages, n - 1), c.tools, options_for(c, f, true, true));
          EXPECT_TRUE(cur.starts_with(prompt)) << "generation prompt is not a prefix of message " << n - 1;
        }
        prev = cur;
      }
    }
  }
}

const Case& find_case(const std::vector<Case>& cases, std::string_view name) {
  for (const Case& c : cases) {
    if (c.name == name) return c;
  }
  throw std::runtime_error("no case " + std::string(name));
}

// Why append-only exists: the templates drop earlier reasoning once a new user query arrives.
TEST(Chat, TemplateModeRewritesHistoryAppendOnlyKeepsReasoning) {
  const auto cases = load_cases();
  const Case& c = find_case(cases, "multi_turn");
  const auto before = first(c.messages, 3);  // ..., user, assistant with reasoning
  const auto after = first(c.messages, 4);   // + the next user query
  for (const Format& f : {kFormats[0], kFormats[2]}) {
    SCOPED_TRACE(f.name);
    const std::string t3 = render_chat(f.format, before, c.tools, options_for(c, f, false, false));
    const std::string t4 = render_chat(f.format, after, c.tools, options_for(c, f, false, false));
    EXPECT_NE(t3.find("Simple arithmetic."), std::string::npos);
    EXPECT_EQ(t4.find("Simple arithmetic."), std::string::npos);
    EXPECT_FALSE(t4.starts_with(t3));
    const std::string a4 = render_chat(f.format, after, c.tools, options_for(c, f, true, false));
    EXPECT_NE(a4.find("<think>\nSimple arithmetic.\n</think>\n"), std::string::npos);
    EXPECT_EQ(a4, render_chat(f.format, before, c.tools, options_for(c, f, true, false)) +
                      "<|im_start|>user\nAnd times 3?<|im_end|>\n");
  }
}

// Consecutive tool results share one turn: append-only leaves a trailing group open until
// something follows, and otherwise renders it exactly as the template does.
TEST(Chat, AppendOnlyLeavesTrailingToolGroupOpen) {
  const auto cases = load_cases();
  const Case& c = find_case(cases, "tool_group_open");
  const Format& coder = kFormats[1];  // no reasoning, so the closer is the only difference
  const std::string open = render_chat(coder.format, c.messages, c.tools, options_for(c, coder, true, false));
  const std::string closed = render_chat(coder.format, c.messages, c.tools, options_for(c, coder, false, false));
  EXPECT_TRUE(open.ends_with("<tool_response>\nB\n</tool_response>\n"));
  EXPECT_EQ(open + "<|im_end|>\n", closed);
  EXPECT_EQ(render_chat(coder.format, c.messages, c.tools, options_for(c, coder, true, true)),
            closed + "<|im_start|>assistant\n");
}

TEST(Chat, QwenThinkingDisabledPrefillsEmptyThinkBlock) {
  const std::vector<ChatMessage> msgs = {{.role = "user", .content = "Hi"}};
  RenderOptions o{.enable_thinking = false};
  EXPECT_EQ(render_chat(ChatFormat::Qwen3, msgs, nullptr, o),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // The answer generated after that prompt, stored without reasoning, re-renders as generated.
  auto with_answer = msgs;
  with_answer.push_back({.role = "assistant", .content = "Hello"});
  o.append_only = true;
  EXPECT_TRUE(render_chat(ChatFormat::Qwen3, with_answer, nullptr, o)
                  .ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>\n"
                             "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
}

TEST(Chat, DetectsFormat) {
  const fs::path dir = fs::path(FLASHFIX_SHARED_DIR) / "templates";
  EXPECT_EQ(detect_chat_format("qwen3", read_file(dir / "Qwen-Qwen3-0.6B.jinja")), ChatFormat::Qwen3);
  EXPECT_EQ(detect_chat_format("qwen3moe", read_file(dir / "Qwen3-Coder.jinja")), ChatFormat::Qwen3Coder);
  EXPECT_EQ(detect_chat_format("step35", read_file(dir / "StepFun3.5-Flash.jinja")), ChatFormat::Step35);
  EXPECT_EQ(detect_chat_format("", read_file(dir / "StepFun3.5-Flash.jinja")), ChatFormat::Step35);
  EXPECT_EQ(detect_chat_format("step35", ""), ChatFormat::Step35);
  EXPECT_EQ(detect_chat_format("qwen3moe", ""), ChatFormat::Qwen3);
}

TEST(Chat, RejectsBadInput) {
  const std::vector<ChatMessage> user = {{.role = "user", .content = "Hi"}};
  const RenderOptions o;
  for (const Format& f : kFormats) {
    SCOPED_TRACE(f.name);
    EXPECT_THROW(render_chat(f.format, {{.role = "robot", .content = "x"}}, nullptr, o), std::invalid_argument);
    EXPECT_THROW(render_chat(f.format, {{.role = "tool", .tool_call_id = "c1"}}, nullptr, o),
                 std::invalid_argument);
    EXPECT_THROW(render_chat(f.format, {{.role = "assistant", .tool_calls = {{.name = ""}}}}, nullptr, o),
                 std::invalid_argument);
    EXPECT_THROW(render_chat(f.format, user, json::object(), o), std::invalid_argument);
    EXPECT_THROW(render_chat(f.format, user, json::parse(R"(["read_file"])"), o), std::invalid_argument);
    EXPECT_THROW(render_chat(f.format, user, json::parse(R"([{"type": "function"}])"), o), std::invalid_argument);
    EXPECT_THROW(render_chat(f.format, user, json::parse(R"([{"function": {"name": 3}}])"), o),
                 std::invalid_argument);
    EXPECT_NO_THROW(render_chat(f.format, user, json::parse(R"([{"name": "bare"}])"), o));
    EXPECT_NO_THROW(render_chat(f.format, user, nlohmann::json::array(), o));  // sorted-key json converts
  }
  // Raw argument text is a Qwen3 (JSON call) feature; the XML formats need named parameters.
  const std::vector<ChatMessage> raw = {{.role = "assistant", .tool_calls = {{.name = "f", .arguments = "{}"}}}};
  EXPECT_NO_THROW(render_chat(ChatFormat::Qwen3, raw, nullptr, o));
  EXPECT_THROW(render_chat(ChatFormat::Qwen3Coder, raw, nullptr, o), std::invalid_argument);
  EXPECT_THROW(render_chat(ChatFormat::Step35, raw, nullptr, o), std::invalid_argument);
}

}  // namespace
}  // namespace flashfix
