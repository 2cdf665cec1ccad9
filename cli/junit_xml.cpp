#include "cli/junit_xml.h"

#include <cstdio>

#include "cli/run_outputs.h"

namespace flashfix::cli {

namespace {

// Length of a valid UTF-8 sequence at s[i], or 0 (overlong forms, surrogates and values past
// U+10FFFF are invalid, as are U+FFFE/U+FFFF which XML forbids).
size_t valid_utf8_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) return 0;
  return len;
}

std::string attr(const char* name, std::string_view value) { return std::string(" ") + name + "=\"" + xml_escape(value) + "\""; }

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len = valid_utf8_length(text, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    char c = text[i];
    if (len == 1) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        case '\t': case '\n': out += c; break;
        case '\r': out += "&#13;"; break;  // kept, but as a reference so parsers do not normalise it away
        default:
          if (static_cast<unsigned char>(c) < 0x20) out += "\xEF\xBF\xBD";
          else out += c;
      }
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string junit_xml(const agent::AgentResult& result, const JunitInfo& info) {
  const tools::TestReport& tests = result.final_tests;
  bool fixed = result.outcome == agent::Outcome::Fixed;

  std::string agent_case = "    <testcase" + attr("name", "fix: " + (info.task.empty() ? "make the test command pass" : info.task)) +
                           attr("classname", "flashfix") + attr("time", seconds_text(result.seconds)) + ">\n";
  if (!fixed)
    agent_case += "      <failure" + attr("message", std::string(agent::to_string(result.outcome)) + ": " + first_line(result.reason)) +
                  attr("type", agent::to_string(result.outcome)) + ">" + xml_escape(result.reason) + "</failure>\n";
  agent_case += "      <system-out>" + xml_escape(result.diff) + "</system-out>\n    </testcase>\n";

  std::string cases;
  int n_cases = 0, n_failures = 0;
  for (const auto& f : tests.failures) {
    std::string name = !f.test.empty() ? f.test : !f.file.empty() ? f.file + ":" + std::to_string(f.line) : "test command";
    cases += "    <testcase" + attr("name", name) + attr("classname", f.file.empty() ? tests.format : f.file);
    if (!f.file.empty()) cases += attr("file", f.file);
    if (f.line > 0) cases += attr("line", std::to_string(f.line));
    cases += ">\n      <failure" + attr("message", first_line(f.message)) + attr("type", tests.format) + ">" +
             xml_escape(f.message) + "</failure>\n    </testcase>\n";
    ++n_cases, ++n_failures;
  }
  if (tests.passed || tests.failures.empty()) {
    // No per-test records: the test command as a whole is the case.
    cases += "    <testcase" + attr("name", info.test_command) + attr("classname", tests.format.empty() ? "raw" : tests.format) + ">\n";
    if (!tests.passed) {
      cases += "      <failure" + attr("message", "the test command " + (tests.status.empty() ? "failed" : tests.status) +
                                                  " (exit " + std::to_string(tests.exit_code) + ")") +
               attr("type", tests.status) + ">" + xml_escape(tests.output_tail) + "</failure>\n";
      ++n_failures;
    }
    cases += "      <system-out>" + xml_escape(tests.output_tail) + "</system-out>\n    </testcase>\n";
    ++n_cases;
  }

  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites" + attr("name", "flashfix") +
                    attr("tests", std::to_string(n_cases + 1)) + attr("failures", std::to_string(n_failures + (fixed ? 0 : 1))) +
                    attr("time", seconds_text(result.seconds)) + ">\n";
  xml += "  <testsuite" + attr("name", "flashfix") + attr("tests", "1") + attr("failures", fixed ? "0" : "1") +
         attr("errors", "0") + attr("skipped", "0") + attr("time", seconds_text(result.seconds)) + ">\n" + agent_case + "  </testsuite>\n";
  xml += "  <testsuite" + attr("name", "tests: " + info.test_command) + attr("tests", std::to_string(n_cases)) +
         attr("failures", std::to_string(n_failures)) + attr("errors", "0") + attr("skipped", "0") + ">\n";
  xml += "    <properties>\n      <property" + attr("name", "format") + attr("value", tests.format) + "/>\n      <property" +
         attr("name", "passed") + attr("value", std::to_string(tests.n_passed)) + "/>\n      <property" + attr("name", "failed") +
         attr("value", std::to_string(tests.n_failed)) + "/>\n    </properties>\n";
  xml += cases;
  // With per-test records the raw output is not in any case: keep it at the suite level.
  if (!tests.failures.empty()) xml += "    <system-out>" + xml_escape(tests.output_tail) + "</system-out>\n";
  xml += "  </testsuite>\n</testsuites>\n";
  return xml;
}

}  // namespace flashfix::cli
