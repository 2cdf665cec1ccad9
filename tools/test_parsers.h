// One parser per test runner or compiler family, each in its own file; test_report.cpp picks.
#pragma once
#include <string_view>
#include <vector>

#include "tools/test_report.h"

namespace flashfix::tools {

struct ParsedRun {
  bool detected = false;  // the output is this runner's
  int n_passed = 0, n_failed = 0;
  std::vector<TestFailure> failures;
};

using Lines = std::vector<std::string_view>;

ParsedRun parse_pytest(const Lines& lines);
ParsedRun parse_unittest(const Lines& lines);  // python -m unittest
ParsedRun parse_gtest(const Lines& lines);
ParsedRun parse_ctest(const Lines& lines);
ParsedRun parse_go_test(const Lines& lines);
ParsedRun parse_cargo_test(const Lines& lines);
ParsedRun parse_node_test(const Lines& lines);  // node --test: TAP and spec reporters
ParsedRun parse_jest(const Lines& lines);
ParsedRun parse_compiler(const Lines& lines);   // gcc, clang, rustc, tsc (go build: parse_go_test)

}  // namespace flashfix::tools
