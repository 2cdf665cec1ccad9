// go test: "--- FAIL: TestName (0.00s)" per failed test; "    file_test.go:12: message" lines are
// the test's t.Error output (after "=== RUN" with -v, after "--- FAIL" without). Build failures
// print "# pkg" then "./file.go:3:5: message".
#include <map>

#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_go_test(const Lines& lines) {
  static const LinePattern run_line("^=== RUN\\s+(\\S+)");
  static const LinePattern fail_line("^\\s*--- FAIL: (\\S+) \\(");
  static const LinePattern pass_line("^\\s*--- PASS: ");
  static const LinePattern log_line("^\\s+(\\S+\\.go):(\\d+): (.*)$");
  static const LinePattern package_line("^(?:ok|FAIL|---)\\s+\\S+\\s+(?:[\\d.]+s|\\(cached\\)|\\[)");
  static const LinePattern build_header("^# \\S+");
  static const LinePattern build_error("^(\\S+\\.go):(\\d+)(?::\\d+)?: (.*)$");

  ParsedRun run;
  std::string current;
  std::map<std::string, TestFailure> first_log;  // the first located message of each test
  std::vector<std::string> failed;
  bool in_build_errors = false;
  for (auto line : lines) {
    if (package_line.found_in(line)) run.detected = true;
    if (auto m = run_line.match(line)) {
      run.detected = true;
      current = (*m)[1];
    } else if (auto m = fail_line.match(line)) {
      run.detected = true;
      current = (*m)[1];
      failed.push_back(current);
    } else if (pass_line.found_in(line)) {
      ++run.n_passed;
    } else if (auto m = log_line.match(line); m && !current.empty() && !first_log.count(current)) {
      first_log[current] = {current, (*m)[1], to_int((*m)[2]), (*m)[3]};
    } else if (build_header.found_in(line)) {
      in_build_errors = true;
    } else if (auto m = build_error.match(line); m && in_build_errors) {
      run.detected = true;
      std::string file = (*m)[1];
      if (file.rfind("./", 0) == 0) file = file.substr(2);
      run.failures.push_back({"", file, to_int((*m)[2]), (*m)[3]});
    }
  }
  for (const auto& name : failed) {
    auto it = first_log.find(name);
    // A parent test fails because a subtest did; the subtest's own record carries the location.
    bool has_failed_subtest = false;
    for (const auto& other : failed) has_failed_subtest |= other.size() > name.size() && other.compare(0, name.size() + 1, name + "/") == 0;
    if (!has_failed_subtest) ++run.n_failed;  // a parent counts through its subtests
    if (it != first_log.end())
      run.failures.push_back(it->second);
    else if (!has_failed_subtest)
      run.failures.push_back({name, "", 0, "failed"});
  }
  return run;
}

}  // namespace flashfix::tools
