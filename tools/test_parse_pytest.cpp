// pytest: "FAILED nodeid - message" lines of the short summary name the failures; the traceback
// blocks ("____ test_name ____") give the line ("path.py:12: AssertionError") and "E   " message.
#include <algorithm>
#include <map>

#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_pytest(const Lines& lines) {
  static const LinePattern session("^=+ test session starts =+$");
  static const LinePattern summary_line("^(FAILED|ERROR) (\\S+?)(?: - (.*))?$");
  static const LinePattern block("^_{3,} (?:ERROR (?:at \\w+ of |collecting ))?(.+?) _{3,}$");
  static const LinePattern location("^(\\S+\\.py):(\\d+): (.*)$");
  static const LinePattern error_line("^E\\s+(.*)$");
  // "=== 2 failed, 2 passed in 0.07s ===", or bare under -q; counts only, so cargo's "test result:" line cannot pass.
  static const LinePattern totals("^(?:=+ )?((?:\\d+ [a-z]+(?:, )?)+|no tests ran) in [\\d.]+s(?: \\(.*\\))?(?: =+)?$");
  static const LinePattern count("(\\d+) (passed|failed|errors?)");

  ParsedRun run;
  struct Block {
    std::vector<std::pair<std::string, int>> locations;  // the traceback's "path.py:N:" lines, outermost first
    std::string message;                                 // the first "E   " line
  };
  std::map<std::string, Block> blocks;  // by the block's title: "test_add", "TestCalc.test_div", a path
  std::string current;
  for (auto line : lines) {
    if (session.found_in(line)) run.detected = true;
    if (auto m = block.match(line)) {
      current = (*m)[1];
      blocks[current];
      continue;
    }
    if (!current.empty()) {
      if (auto m = location.match(line)) {
        blocks[current].locations.emplace_back((*m)[1], to_int((*m)[2]));
      } else if (auto m = error_line.match(line); m && blocks[current].message.empty()) {
        blocks[current].message = (*m)[1];
      }
    }
    if (auto m = summary_line.match(line); m && (*m)[2].find(".py") != std::string::npos) {
      run.detected = true;
      TestFailure f;
      f.test = (*m)[2];
      f.message = (*m)[3];
      f.file = f.test.substr(0, f.test.find("::"));
      run.failures.push_back(f);
    }
    if (auto m = totals.match(line)) {
      run.detected = true;
      std::string_view rest = (*m)[1];
      while (auto c = count.match(rest)) {
        int n = to_int((*c)[1]);
        if ((*c)[2] == "passed") run.n_passed += n;
        else run.n_failed += n;
        rest = rest.substr(rest.find((*c)[0]) + (*c)[0].size());
      }
    }
  }
  // Join each summary record with its traceback block: the block title is the node id's part
  // after the file, with "::" written as "." (classes).
  for (auto& f : run.failures) {
    std::string title = f.test.find("::") == std::string::npos ? f.test : f.test.substr(f.test.find("::") + 2);
    for (size_t p; (p = title.find("::")) != std::string::npos;) title.replace(p, 2, ".");
    auto it = blocks.find(title);
    if (it == blocks.end()) it = blocks.find(f.test);  // collection errors are titled by path
    if (it == blocks.end()) continue;
    const Block& b = it->second;
    // The summary cuts long messages with "..."; the traceback's E line has it whole.
    if (f.message.empty() || (f.message.size() > 3 && f.message.compare(f.message.size() - 3, 3, "...") == 0 && !b.message.empty()))
      f.message = b.message;
    // The line in the test's own file is the test's failing line; where the exception was raised
    // (deeper, maybe in the code under test) goes into the message.
    if (b.locations.empty()) continue;
    auto in_test = std::find_if(b.locations.rbegin(), b.locations.rend(), [&](const auto& l) { return l.first == f.file; });
    const auto& chosen = in_test != b.locations.rend() ? *in_test : b.locations.back();
    f.file = chosen.first;
    f.line = chosen.second;
    if (chosen != b.locations.back())
      f.message += " (raised at " + b.locations.back().first + ":" + std::to_string(b.locations.back().second) + ")";
  }
  return run;
}

}  // namespace flashfix::tools
