#include "cli/terminal_view.h"

#include <cstdio>
#include <sstream>

#include "cli/run_outputs.h"

namespace flashfix::cli {

namespace {
constexpr const char* kDim = "2";
constexpr const char* kBold = "1";
constexpr const char* kRed = "31";
constexpr const char* kGreen = "32";
constexpr const char* kYellow = "33";
constexpr const char* kCyan = "36";
constexpr int kResultLines = 8;  // head of each tool result shown; the model sees all of it
}  // namespace

TerminalView::TerminalView(bool color, int max_turns) : color_(color), max_turns_(max_turns) {}

std::string TerminalView::paint(const char* code, const std::string& text) const {
  return color_ ? "\033[" + std::string(code) + "m" + text + "\033[0m" : text;
}

void TerminalView::end_stream_line() {
  if (mid_line_) std::fputc('\n', stdout);
  mid_line_ = false;
}

void TerminalView::on_stream(const agent::StreamEvent& e) {
  using K = agent::StreamEvent::Kind;
  // A call's name and its arguments share one line; any other change of kind starts a new one.
  bool same_group = e.kind == last_kind_ || (last_kind_ == K::CallBegin && e.kind == K::CallArguments);
  if (!same_group) end_stream_line();
  last_kind_ = e.kind;
  switch (e.kind) {
    case K::Reasoning:
      std::fputs(paint(kDim, e.text).c_str(), stdout);
      break;
    case K::Content:
      std::fputs(e.text.c_str(), stdout);
      break;
    case K::CallBegin:
      std::fputs(paint(kCyan, "→ " + e.call_name + " ").c_str(), stdout);
      ++streamed_calls_;
      break;
    case K::CallArguments:
      std::fputs(paint(kDim, e.text).c_str(), stdout);
      break;
    case K::CallEnd:
      end_stream_line();
      break;
  }
  if (!e.text.empty() || e.kind == K::CallBegin) mid_line_ = e.kind == K::CallBegin || e.text.back() != '\n';
  std::fflush(stdout);
}

agent::AgentObserver TerminalView::observer() {
  agent::AgentObserver o;
  o.on_stream = [this](const agent::StreamEvent& e) { on_stream(e); };
  o.on_tool_call = [this](const agent::ParsedCall& c) {
    end_stream_line();
    // A call already streamed with its arguments gets a short header over its result.
    bool streamed = streamed_calls_ > 0;
    if (streamed) --streamed_calls_;
    if (!c.error.empty())
      std::printf("%s\n", paint(kYellow, "✗ malformed call: " + one_line(c.error, 200)).c_str());
    else if (streamed)
      std::printf("%s\n", paint(kCyan, "● " + c.call.name).c_str());
    else
      std::printf("%s %s\n", paint(kCyan, "● " + c.call.name).c_str(), one_line(json_text(c.call.arguments), 200).c_str());
  };
  o.on_tool_result = [this](const agent::ParsedCall&, const tools::ToolResult& r) {
    std::istringstream in(r.text);
    std::string line;
    int shown = 0, total = 0;
    while (std::getline(in, line)) {
      if (shown < kResultLines) std::printf("  %s %s\n", paint(r.ok ? kDim : kRed, "│").c_str(), line.c_str()), ++shown;
      ++total;
    }
    if (total > shown) std::printf("  %s\n", paint(kDim, "│ … " + std::to_string(total - shown) + " more lines").c_str());
    std::fflush(stdout);
  };
  o.on_tests = [this](const tools::TestReport& t) {
    end_stream_line();
    std::printf("%s\n", paint(t.passed ? kGreen : kYellow, "tests: " + one_line(t.summary(), 200)).c_str());
    std::fflush(stdout);
  };
  o.on_turn = [this](int turn, const agent::TurnStats& s) {
    end_stream_line();
    total_generated_ += s.generated_tokens;
    total_prompt_ += s.prompt_tokens;
    double tok_s = s.decode_ms > 0 ? double(s.generated_tokens) * 1000.0 / s.decode_ms : 0;
    char buf[256];
    std::snprintf(buf, sizeof buf, "── turn %d/%d · %.1f tok/s · prompt %lld (cached %lld) · generated %lld · total %lld tokens ──",
                  turn, max_turns_, tok_s, (long long)s.prompt_tokens, (long long)s.cached_tokens,
                  (long long)s.generated_tokens, (long long)(total_generated_ + total_prompt_));
    std::printf("%s\n", paint(kDim, buf).c_str());
    std::fflush(stdout);
  };
  return o;
}

void TerminalView::print_diff(const std::string& diff) const {
  std::istringstream in(diff);
  std::string line;
  while (std::getline(in, line)) {
    const char* code = nullptr;
    if (line.rfind("+++", 0) == 0 || line.rfind("---", 0) == 0 || line.rfind("diff ", 0) == 0) code = kBold;
    else if (line.rfind("@@", 0) == 0) code = kCyan;
    else if (!line.empty() && line[0] == '+') code = kGreen;
    else if (!line.empty() && line[0] == '-') code = kRed;
    std::printf("%s\n", code ? paint(code, line).c_str() : line.c_str());
  }
  std::fflush(stdout);
}

}  // namespace flashfix::cli
