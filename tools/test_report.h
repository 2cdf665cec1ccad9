// Test and build output turned into records a model can act on: which test failed, where, and why.
// parse_test_output recognises pytest, Python unittest, GoogleTest, CTest, go test, cargo test, jest, node --test
// (TAP and spec reporters) and compiler diagnostics (gcc, clang, rustc, tsc, go build); anything
// else is "raw" with the output tail only.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace flashfix::tools {

struct TestFailure {
  std::string test, file;  // either may be empty (a compiler error has no test; a crash no file)
  int line = 0;
  std::string message;
};

struct TestReport {
  bool passed = false;
  int exit_code = -1;
  std::string status;  // "passed", "failed", "timed_out", "memory_limit", "output_limit", "error"
  // "pytest", "unittest", "gtest", "ctest", "go", "cargo", "node", "jest", "compiler", "raw"
  std::string format;
  int n_passed = 0, n_failed = 0;
  std::vector<TestFailure> failures;
  std::string output_tail;  // raw output, truncated head + tail
  nlohmann::json to_json() const;
  // The inverse of to_json (as run_tests returns it in ToolResult::data); missing fields keep
  // their defaults, a non-object gives status "error".
  static TestReport from_json(const nlohmann::json& j);
  std::string summary() const;  // one line per failure after a headline, for the model to read
};

// passed is exit_code == 0: the exit status is the truth, the parse only explains it.
TestReport parse_test_output(std::string_view output, int exit_code, size_t max_tail_chars = 6000);

}  // namespace flashfix::tools
