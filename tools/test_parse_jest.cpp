// jest: "FAIL path/to/x.test.js" per failing file, "  ● Suite › name" per failed test followed by
// the message, a code frame and "at ... (path:line:col)"; "Tests: 1 failed, 2 passed, 3 total".
#include <cctype>

#include "tools/line_pattern.h"
#include "tools/test_parsers.h"

namespace flashfix::tools {

ParsedRun parse_jest(const Lines& lines) {
  static const LinePattern file_header("^(?:FAIL|PASS) (\\S+)");
  static const LinePattern test_header("^\\s*● (.+)$");
  static const LinePattern at_frame("^\\s+at .*?\\(?((?:[^\\s()]+)):(\\d+):\\d+\\)?$");
  static const LinePattern totals("^Tests:\\s+(.*\\d+ total)");
  static const LinePattern count("(\\d+) (failed|passed)");

  ParsedRun run;
  std::string file;
  TestFailure* open = nullptr;
  bool message_done = false;
  for (auto line : lines) {
    if (auto m = file_header.match(line)) {
      file = (*m)[1];
      open = nullptr;
      continue;
    }
    if (auto m = totals.match(line)) {
      run.detected = true;
      std::string_view rest = (*m)[1];
      while (auto c = count.match(rest)) {
        ((*c)[2] == "failed" ? run.n_failed : run.n_passed) += to_int((*c)[1]);
        rest = rest.substr(rest.find((*c)[0]) + (*c)[0].size());
      }
      continue;
    }
    if (auto m = test_header.match(line)) {
      run.detected = true;
      run.failures.push_back({(*m)[1], file, 0, ""});
      open = &run.failures.back();
      message_done = false;
      continue;
    }
    if (!open) continue;
    if (auto m = at_frame.match(line)) {
      // The first frame in the test's own file is the failing line; node_modules frames are not.
      if (open->line == 0 && (*m)[1].find("node_modules") == std::string::npos &&
          (open->file.empty() || ((*m)[1].size() >= open->file.size() &&
                                     (*m)[1].compare((*m)[1].size() - open->file.size(), open->file.size(), open->file) == 0))) {
        open->line = to_int((*m)[2]);
      }
      message_done = true;
    } else if (!message_done) {
      std::string_view text = line;
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
      if (text.empty()) {
        if (!open->message.empty() && open->message.back() == '\n' && open->message.size() >= 2 &&
            open->message[open->message.size() - 2] != '\n')
          open->message += '\n';
      } else if (text.front() == '>' || (text.size() > 1 && std::isdigit(static_cast<unsigned char>(text.front())) && text.find(" |") != std::string_view::npos)) {
        message_done = true;  // the code frame starts
      } else if (open->message.size() < 2000) {
        open->message += std::string(text) + "\n";
      }
    }
  }
  for (auto& f : run.failures)
    while (!f.message.empty() && (f.message.back() == '\n' || f.message.back() == ' ')) f.message.pop_back();
  return run;
}

}  // namespace flashfix::tools
