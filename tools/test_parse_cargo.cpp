// cargo test: "test name ... FAILED" per failed test, "---- name stdout ----" then the panic,
// "thread 'name' panicked at src/lib.rs:10:5:" with the message on the next lines (Rust 1.73+),
// or "panicked at 'message', src/lib.rs:10:5" (older).
#include <set>

#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_cargo_test(const Lines& lines) {
  static const LinePattern running("^running \\d+ tests?$");
  static const LinePattern result("^test result: \\w+\\. (\\d+) passed; (\\d+) failed");
  static const LinePattern failed_line("^test (\\S+) \\.\\.\\. FAILED$");
  static const LinePattern stdout_header("^---- (\\S+) stdout ----$");
  static const LinePattern panic_new("^thread '.*?'(?: \\(\\d+\\))? panicked at (\\S+?):(\\d+):\\d+:$");
  static const LinePattern panic_old("^thread '.*?'(?: \\(\\d+\\))? panicked at '(.*)', (\\S+?):(\\d+):\\d+$");

  ParsedRun run;
  std::set<std::string> failed, described;
  TestFailure* open = nullptr;  // a new-style panic whose message lines follow
  std::string current;
  for (auto line : lines) {
    if (running.found_in(line)) run.detected = true;
    if (auto m = result.match(line)) {
      run.detected = true;
      run.n_passed += to_int((*m)[1]);
      run.n_failed += to_int((*m)[2]);
    }
    if (auto m = failed_line.match(line)) failed.insert((*m)[1]);
    if (auto m = stdout_header.match(line)) {
      current = (*m)[1];
      open = nullptr;
      continue;
    }
    if (auto m = panic_new.match(line); m && !current.empty()) {
      run.failures.push_back({current, (*m)[1], to_int((*m)[2]), ""});
      described.insert(current);
      open = &run.failures.back();
      continue;
    }
    if (auto m = panic_old.match(line); m && !current.empty()) {
      run.failures.push_back({current, (*m)[2], to_int((*m)[3]), (*m)[1]});
      described.insert(current);
      open = nullptr;
      continue;
    }
    if (open) {
      if (line.empty() || line.rfind("note:", 0) == 0 || line == "stack backtrace:" || line.rfind("----", 0) == 0 || line == "failures:")
        open = nullptr;
      else if (open->message.size() < 2000)
        open->message += (open->message.empty() ? "" : "\n") + std::string(line);
    }
  }
  for (const auto& name : failed)
    if (!described.count(name)) run.failures.push_back({name, "", 0, "failed"});
  return run;
}

}  // namespace flashfix::tools
