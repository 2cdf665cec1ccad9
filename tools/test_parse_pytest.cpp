// pytest: "FAILED nodeid - message" lines of the short summary name the failures; the traceback
// blocks ("____ test_name ____") give the line ("path.py:12: AssertionError") and "E   " message.
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
  static const LinePattern totals("^=+ (.*\\b(?:passed|failed|error|errors|skipped|deselected|no tests ran)\\b.*) in [\\d.]+s(?: \\(.*\\))? =+$");
  static const LinePattern count("(\\d+) (passed|failed|errors?)");

  ParsedRun run;
  struct Block {
    std::string file;
    int line = 0;
    std::string message;
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
        // The last location of a traceback is where it failed; earlier ones are the calls leading there.
        blocks[current].file = (*m)[1];
        blocks[current].line = to_int((*m)[2]);
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
    if (!it->second.file.empty()) f.file = it->second.file, f.line = it->second.line;
    if (f.message.empty()) f.message = it->second.message;
  }
  return run;
}

}  // namespace flashfix::tools
