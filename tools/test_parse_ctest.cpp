// CTest: "The following tests FAILED:" lists "  3 - name (Failed)"; the totals line counts.
#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_ctest(const Lines& lines) {
  static const LinePattern totals("^\\d+% tests passed, (\\d+) tests? failed out of (\\d+)");
  static const LinePattern header("^The following tests FAILED:");
  static const LinePattern entry("^\\s+\\d+ - (.+?) \\(([^)]+)\\)");
  static const LinePattern progress("^\\s*\\d+/\\d+ Test\\s+#\\d+: ");

  ParsedRun run;
  bool in_list = false;
  for (auto line : lines) {
    if (progress.found_in(line)) run.detected = true;
    if (auto m = totals.match(line)) {
      run.detected = true;
      run.n_failed = to_int((*m)[1]);
      run.n_passed = to_int((*m)[2]) - run.n_failed;
    }
    if (header.found_in(line)) {
      run.detected = in_list = true;
      continue;
    }
    if (in_list) {
      if (auto m = entry.match(line))
        run.failures.push_back({(*m)[1], "", 0, (*m)[2]});
      else
        in_list = false;
    }
  }
  return run;
}

}  // namespace flashfix::tools
