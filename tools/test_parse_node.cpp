// node --test. TAP (the default when stdout is not a terminal): "not ok N - name" then a YAML block
// with location, error and stack; suites that failed only through a subtest
// (failureType: 'subtestsFailed') are not failures of their own. Spec reporter: the
// "✖ failing tests:" section repeats each failure as "test at file:line:col", "✖ name (..ms)", the
// message, then "at" frames. The line reported is the first stack frame in the user's code.
#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {
namespace {

// "TestContext.<anonymous> (/w/math.test.js:4:37)" or "at /w/x.js:4:37": file and line, skipping node internals.
bool user_frame(std::string_view line, std::string& file, int& number) {
  static const LinePattern frame("^\\s*(?:at )?(?:.*?\\()?([^\\s()]+):(\\d+):\\d+\\)?(?: \\{)?$");
  auto m = frame.match(line);
  if (!m || (*m)[1].rfind("node:", 0) == 0 || (*m)[1].find("node_modules") != std::string::npos) return false;
  file = (*m)[1];
  number = to_int((*m)[2]);
  return true;
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) s = s.substr(1, s.size() - 2);
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void parse_tap(const Lines& lines, ParsedRun& run) {
  static const LinePattern not_ok("^(\\s*)not ok \\d+ - (.*?)(?: # .*)?$");
  static const LinePattern key("^\\s*(location|failureType|error|stack): ?(.*)$");
  static const LinePattern totals("^# (pass|fail) (\\d+)$");
  for (size_t i = 0; i < lines.size(); ++i) {
    if (auto m = totals.match(lines[i])) {
      ((*m)[1] == "pass" ? run.n_passed : run.n_failed) = to_int((*m)[2]);
      continue;
    }
    auto m = not_ok.match(lines[i]);
    if (!m) continue;
    TestFailure f{(*m)[2], "", 0, ""};
    bool subtests_only = false;
    std::string location_file;
    int location_line = 0;
    // The YAML block: "  ---" to "  ...", with block scalars ("|-") continuing on deeper lines.
    std::string block_key;
    size_t key_indent = 0;
    for (size_t j = i + 1; j < lines.size(); ++j) {
      std::string_view t = trim(lines[j]);
      size_t indent = lines[j].find_first_not_of(' ');
      if (t == "...") break;
      if (t == "---") continue;
      if (!block_key.empty() && (t.empty() || indent > key_indent)) {
        if (block_key == "error" && !t.empty() && f.message.size() < 2000) f.message += (f.message.empty() ? "" : "\n") + std::string(t);
        if (block_key == "stack" && f.line == 0) user_frame(t, f.file, f.line);
        continue;
      }
      block_key.clear();
      auto k = key.match(lines[j]);
      if (!k) continue;
      std::string value = (*k)[2];
      if (value == "|-" || value == "|") {
        block_key = (*k)[1];
        key_indent = indent;
      } else if ((*k)[1] == "location") {
        static const LinePattern loc("^'?(.+):(\\d+):\\d+'?$");
        if (auto l = loc.match(value)) location_file = (*l)[1], location_line = to_int((*l)[2]);
      } else if ((*k)[1] == "failureType") {
        subtests_only = unquote(value) == "subtestsFailed";
      } else if ((*k)[1] == "error") {
        f.message = unquote(value);
      }
    }
    if (subtests_only) continue;
    if (f.line == 0) f.file = location_file, f.line = location_line;
    run.failures.push_back(f);
  }
}

void parse_spec(const Lines& lines, ParsedRun& run) {
  static const LinePattern totals("^ℹ (pass|fail) (\\d+)$");
  static const LinePattern test_at("^test at (.+):(\\d+):\\d+$");
  static const LinePattern cross("^✖ (.*?) \\([\\d.]+m?s\\)$");
  bool in_failing = false;
  TestFailure* open = nullptr;
  for (auto line : lines) {
    if (auto m = totals.match(line)) ((*m)[1] == "pass" ? run.n_passed : run.n_failed) = to_int((*m)[2]);
    if (line == "✖ failing tests:") {
      in_failing = true;
      continue;
    }
    if (!in_failing) continue;
    if (auto m = test_at.match(line)) {
      run.failures.push_back({"", (*m)[1], to_int((*m)[2]), ""});
      open = &run.failures.back();
      continue;
    }
    if (!open) continue;
    if (auto m = cross.match(line); m && open->test.empty()) {
      open->test = (*m)[1];
      continue;
    }
    std::string_view t = trim(line);
    std::string file;
    int number = 0;
    if (t.rfind("at ", 0) == 0) {
      if (user_frame(t, file, number) && open->message.find('\n') == std::string::npos) open->file = file, open->line = number;
      open = open->message.empty() ? open : nullptr;  // frames end the message; the first user frame is the line
      if (open) open->message += "\n";
    } else if (!t.empty() && open->message.size() < 2000 && open->message.find("\n") == std::string::npos) {
      open->message += (open->message.empty() ? "" : " ") + std::string(t);
    }
  }
  for (auto& f : run.failures)
    while (!f.message.empty() && f.message.back() == '\n') f.message.pop_back();
}

}  // namespace

ParsedRun parse_node_test(const Lines& lines) {
  ParsedRun run;
  bool tap = false, spec = false;
  for (auto line : lines) {
    tap |= line == "TAP version 13" || line.rfind("# Subtest: ", 0) == 0;
    spec |= line.rfind("ℹ tests ", 0) == 0 || line == "✖ failing tests:";
  }
  if (tap)
    parse_tap(lines, run);
  else if (spec)
    parse_spec(lines, run);
  run.detected = tap || spec;
  return run;
}

}  // namespace flashfix::tools
