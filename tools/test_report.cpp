#include "tools/test_report.h"

#include <map>

#include "tools/line_pattern.h"
#include "tools/output_shaping.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

nlohmann::json TestReport::to_json() const {
  auto list = nlohmann::json::array();
  for (const auto& f : failures) list.push_back({{"test", f.test}, {"file", f.file}, {"line", f.line}, {"message", f.message}});
  return {{"passed", passed}, {"exit_code", exit_code}, {"status", status}, {"format", format}, {"n_passed", n_passed},
          {"n_failed", n_failed}, {"failures", list}, {"output_tail", output_tail}};
}

TestReport TestReport::from_json(const nlohmann::json& j) {
  TestReport t;
  if (!j.is_object()) {
    t.status = "error";
    return t;
  }
  auto str = [&](const char* key, const char* fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
  };
  auto num = [&](const nlohmann::json& o, const char* key, int fallback) {
    auto it = o.find(key);
    return it != o.end() && it->is_number_integer() ? it->get<int>() : fallback;
  };
  auto it = j.find("passed");
  t.passed = it != j.end() && it->is_boolean() && it->get<bool>();
  t.exit_code = num(j, "exit_code", -1);
  t.status = str("status", "error");
  t.format = str("format", "raw");
  t.n_passed = num(j, "n_passed", 0);
  t.n_failed = num(j, "n_failed", 0);
  t.output_tail = str("output_tail", "");
  if (auto f = j.find("failures"); f != j.end() && f->is_array())
    for (const auto& x : *f) {
      if (!x.is_object()) continue;
      auto field = [&](const char* key) {
        auto v = x.find(key);
        return v != x.end() && v->is_string() ? v->get<std::string>() : std::string();
      };
      t.failures.push_back({field("test"), field("file"), num(x, "line", 0), field("message")});
    }
  return t;
}

std::string TestReport::summary() const {
  constexpr size_t kShown = 30;
  std::string counts;
  if (n_passed || n_failed) counts = ": " + std::to_string(n_failed) + " failed, " + std::to_string(n_passed) + " passed";
  std::string text = (passed ? "tests passed" : status == "failed" ? "tests failed" : "tests did not finish (" + status + ")") +
                     std::string(" [") + format + counts + "]\n";
  for (size_t i = 0; i < failures.size() && i < kShown; ++i) {
    const auto& f = failures[i];
    text += std::to_string(i + 1) + ". ";
    if (!f.test.empty()) text += f.test;
    if (!f.file.empty()) text += (f.test.empty() ? "" : " at ") + f.file + (f.line ? ":" + std::to_string(f.line) : "");
    std::string message = f.message.size() > 600 ? f.message.substr(0, 600) + " [...]" : f.message;
    for (size_t p = 0; (p = message.find('\n', p)) != std::string::npos; p += 4) message.replace(p, 1, "\n   ");
    if (!message.empty()) text += "\n   " + message;
    text += "\n";
  }
  if (failures.size() > kShown) text += "[" + std::to_string(failures.size() - kShown) + " more failures not listed]\n";
  return text;
}

TestReport parse_test_output(std::string_view raw_output, int exit_code, size_t max_tail_chars) {
  std::string output = strip_ansi(raw_output);
  TestReport report;
  report.exit_code = exit_code;
  report.passed = exit_code == 0;
  report.status = report.passed ? "passed" : "failed";
  report.output_tail = truncate_middle(output, max_tail_chars);
  Lines lines = split_lines(output);

  // Test runners in order of how specific their markers are; CTest wraps GoogleTest binaries, so
  // the two are read together and the GoogleTest records (with file and line) win.
  ParsedRun ctest = parse_ctest(lines), gtest = parse_gtest(lines);
  std::vector<std::pair<const char*, ParsedRun>> runners;
  runners.emplace_back("pytest", parse_pytest(lines));
  runners.emplace_back("unittest", parse_unittest(lines));
  if (ctest.detected) {
    if (gtest.detected) {
      std::map<std::string, bool> located;
      for (const auto& f : gtest.failures) located[f.test] = true;
      for (auto& f : ctest.failures)
        if (!located.count(f.test)) gtest.failures.push_back(f);
      ctest.failures = gtest.failures;
    }
    runners.emplace_back("ctest", ctest);
  } else {
    runners.emplace_back("gtest", gtest);
  }
  runners.emplace_back("cargo", parse_cargo_test(lines));
  runners.emplace_back("go", parse_go_test(lines));
  runners.emplace_back("jest", parse_jest(lines));
  runners.emplace_back("node", parse_node_test(lines));
  ParsedRun compiler = parse_compiler(lines);

  const ParsedRun* chosen = nullptr;
  report.format = "raw";
  for (const auto& [format, run] : runners)
    if (run.detected) {
      chosen = &run;
      report.format = format;
      break;
    }
  // A build that failed before any test ran: the compiler's errors are the failures.
  if ((!chosen || (chosen->failures.empty() && !report.passed)) && !compiler.failures.empty()) {
    chosen = &compiler;
    report.format = "compiler";
  }
  if (chosen) {
    report.n_passed = chosen->n_passed;
    report.n_failed = std::max<int>(chosen->n_failed, int(chosen->failures.size()));
    report.failures = chosen->failures;
  }
  return report;
}

}  // namespace flashfix::tools
