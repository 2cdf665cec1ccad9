// Compiler diagnostics, errors only (warnings do not fail a build): gcc/clang
// "file:line:col: error: msg" (and "fatal error:"), rustc "error[E0308]: msg" with
// "  --> file:line:col" on a following line, tsc "file(line,col): error TS2322: msg" and its pretty
// form "file:line:col - error TS2322: msg", and linker "undefined reference" errors.
#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_compiler(const Lines& lines) {
  static const LinePattern gcc("^(.+?):(\\d+):(?:\\d+:)? (?:fatal )?error: (.*)$");
  static const LinePattern rustc("^error(?:\\[(E\\d+)\\])?: (.*)$");
  static const LinePattern rust_arrow("^\\s*--> (.+?):(\\d+):\\d+$");
  static const LinePattern tsc("^(.+?)\\((\\d+),\\d+\\): error (TS\\d+): (.*)$");
  static const LinePattern tsc_pretty("^(.+?):(\\d+):\\d+ - error (TS\\d+): (.*)$");
  static const LinePattern linker("^(?:.*?: )?(undefined reference to .*|multiple definition of .*)$");

  ParsedRun run;
  TestFailure* rust_open = nullptr;  // a rustc error waiting for its "-->" line
  for (auto line : lines) {
    if (rust_open) {
      if (auto m = rust_arrow.match(line)) {
        rust_open->file = (*m)[1];
        rust_open->line = to_int((*m)[2]);
        rust_open = nullptr;
        continue;
      }
      if (line.rfind("error", 0) == 0 || line.rfind("warning", 0) == 0) rust_open = nullptr;
    }
    if (auto m = tsc.match(line)) {
      run.failures.push_back({"", (*m)[1], to_int((*m)[2]), (*m)[3] + ": " + (*m)[4]});
    } else if (auto m = tsc_pretty.match(line)) {
      run.failures.push_back({"", (*m)[1], to_int((*m)[2]), (*m)[3] + ": " + (*m)[4]});
    } else if (auto m = gcc.match(line)) {
      run.failures.push_back({"", (*m)[1], to_int((*m)[2]), (*m)[3]});
    } else if (auto m = rustc.match(line)) {
      // Summaries, not errors of their own.
      if ((*m)[2].rfind("aborting due to", 0) == 0 || (*m)[2].rfind("could not compile", 0) == 0 ||
          (*m)[2].rfind("test failed", 0) == 0) continue;
      run.failures.push_back({"", "", 0, ((*m)[1].empty() ? "" : (*m)[1] + ": ") + (*m)[2]});
      rust_open = &run.failures.back();
    } else if (auto m = linker.match(line)) {
      run.failures.push_back({"", "", 0, (*m)[1]});
    }
  }
  run.n_failed = int(run.failures.size());
  run.detected = !run.failures.empty();
  return run;
}

}  // namespace flashfix::tools
