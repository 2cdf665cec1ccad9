// GoogleTest: "[ RUN      ] Suite.Name" opens a test, "path:line: Failure" and the lines after it
// up to the next bracketed line are one assertion, "[  FAILED  ] Suite.Name (N ms)" closes it.
#include <set>

#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_gtest(const Lines& lines) {
  static const LinePattern running("^\\[==========\\] Running \\d+ tests?");
  static const LinePattern run_line("^\\[ RUN      \\] (\\S+)");
  static const LinePattern failure("^(.+?):(\\d+): Failure$");
  static const LinePattern unknown_failure("^unknown file: Failure$");
  static const LinePattern failed("^\\[  FAILED  \\] ([A-Za-z_][\\w/.]*(?:\\.\\w+)?)(?:, where .*)? \\(\\d+ ms\\)$");
  static const LinePattern passed_total("^\\[  PASSED  \\] (\\d+) tests?\\.");
  static const LinePattern failed_total("^\\[  FAILED  \\] (\\d+) tests?, listed below:");

  ParsedRun run;
  std::string current;
  std::set<std::string> located, failed_tests;
  TestFailure* open = nullptr;  // the assertion whose message lines are being collected
  for (auto line : lines) {
    if (running.found_in(line)) run.detected = true;
    if (auto m = run_line.match(line)) {
      current = (*m)[1];
      open = nullptr;
      continue;
    }
    auto f = failure.match(line);
    if (f || unknown_failure.found_in(line)) {
      run.detected = true;
      TestFailure rec;
      rec.test = current;
      if (f) rec.file = (*f)[1], rec.line = to_int((*f)[2]);
      run.failures.push_back(rec);
      located.insert(current);
      open = &run.failures.back();
      continue;
    }
    if (!line.empty() && line[0] == '[') {
      open = nullptr;
    } else if (open && !line.empty() && open->message.size() < 2000) {
      open->message += (open->message.empty() ? "" : "\n") + std::string(line);
    }
    if (auto m = failed.match(line)) {
      run.detected = true;
      if (failed_tests.insert((*m)[1]).second && !located.count((*m)[1])) run.failures.push_back({(*m)[1], "", 0, "failed"});
    }
    if (auto m = passed_total.match(line)) run.n_passed += to_int((*m)[1]);
    if (auto m = failed_total.match(line)) run.n_failed += to_int((*m)[1]);
  }
  if (run.n_failed == 0) run.n_failed = int(failed_tests.size());
  return run;
}

}  // namespace flashfix::tools
