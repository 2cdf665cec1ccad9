// Python's unittest: "FAIL: test_x (pkg.module.Class.test_x)" or "ERROR: ..." between "====" rules,
// a traceback whose frame "in test_x" is the test's line, the exception as the message;
// "Ran N tests" and "FAILED (failures=1, errors=1)" count.
#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_unittest(const Lines& lines) {
  static const LinePattern header("^(?:FAIL|ERROR): (\\w+) \\((.+)\\)$");
  static const LinePattern frame("^\\s+File \"(.+)\", line (\\d+), in (.+)$");
  static const LinePattern ran("^Ran (\\d+) tests? in ");
  static const LinePattern verdict("^(?:FAILED|OK)(?: \\((.*)\\))?$");
  static const LinePattern count("(failures|errors|skipped|expected failures|unexpected successes)=(\\d+)");

  ParsedRun run;
  int total = 0, skipped = 0;
  TestFailure* open = nullptr;
  std::string method;
  bool test_frame_found = false;
  for (auto line : lines) {
    if (auto m = header.match(line)) {
      run.detected = true;
      method = (*m)[1];
      run.failures.push_back({(*m)[2], "", 0, ""});
      open = &run.failures.back();
      test_frame_found = false;
      continue;
    }
    if (auto m = ran.match(line)) {
      run.detected = true;
      total = to_int((*m)[1]);
      open = nullptr;
      continue;
    }
    if (auto m = verdict.match(line); m && total > 0) {
      std::string_view rest = (*m)[1];
      while (auto c = count.match(rest)) {
        int n = to_int((*c)[2]);
        if ((*c)[1] == "failures" || (*c)[1] == "errors") run.n_failed += n;
        if ((*c)[1] == "skipped") skipped = n;
        rest = rest.substr(rest.find((*c)[0]) + (*c)[0].size());
      }
      run.n_passed = total - run.n_failed - skipped;
      continue;
    }
    if (!open) continue;
    if (auto m = frame.match(line)) {
      // The frame of the test method is the test's line; deeper frames are the code it called.
      if (!test_frame_found) open->file = (*m)[1], open->line = to_int((*m)[2]);
      test_frame_found |= (*m)[3] == method;
      continue;
    }
    // The exception line: unindented text after the traceback, before the next rule.
    if (!line.empty() && line[0] != ' ' && line.rfind("Traceback", 0) != 0 && line.rfind("-----", 0) != 0 &&
        line.rfind("=====", 0) != 0 && open->message.size() < 2000)
      open->message += (open->message.empty() ? "" : "\n") + std::string(line);
  }
  return run;
}

}  // namespace flashfix::tools
