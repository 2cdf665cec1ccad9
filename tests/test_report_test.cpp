// parse_test_output against real outputs of each runner and compiler (tests/data/test_reports).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tools/output_shaping.h"
#include "tools/test_report.h"

using flashfix::tools::parse_test_output;
using flashfix::tools::TestFailure;
using flashfix::tools::TestReport;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(FLASHFIX_SOURCE_DIR) + "/tests/data/test_reports/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TestReport parse(const std::string& name, int exit_code = 1) { return parse_test_output(fixture(name), exit_code); }

void expect_failure(const TestFailure& f, const std::string& test, const std::string& file, int line, const std::string& message_part) {
  EXPECT_EQ(f.test, test);
  EXPECT_EQ(f.file, file);
  EXPECT_EQ(f.line, line);
  EXPECT_NE(f.message.find(message_part), std::string::npos) << "message: " << f.message;
}

TEST(TestReport, Pytest) {
  auto r = parse("pytest_failures.txt");
  EXPECT_EQ(r.format, "pytest");
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.n_failed, 2);
  EXPECT_EQ(r.n_passed, 2);
  ASSERT_EQ(r.failures.size(), 2u);
  expect_failure(r.failures[0], "tests/test_calc.py::test_add", "tests/test_calc.py", 6, "assert -1 == 5");
  // Raised in the code under test: the test's own line, the raising line in the message, the
  // summary's "divisi..." replaced by the whole E line.
  expect_failure(r.failures[1], "tests/test_calc.py::TestDiv::test_div_zero", "tests/test_calc.py", 18,
                 "ZeroDivisionError: division by zero (raised at calc.py:6)");
}

TEST(TestReport, PytestCollectionError) {
  auto r = parse("pytest_collection_error.txt", 2);
  EXPECT_EQ(r.format, "pytest");
  ASSERT_EQ(r.failures.size(), 1u);
  expect_failure(r.failures[0], "tests/test_broken.py", "tests/test_broken.py", 1, "No module named 'nosuchmodule'");
}

TEST(TestReport, PytestQuietCounts) {
  auto r = parse_test_output("F.\nFAILED tests/test_a.py::test_x - assert 1 == 2\n1 failed, 1 passed in 0.03s\n", 1);
  EXPECT_EQ(r.format, "pytest");
  EXPECT_EQ(r.n_failed, 1);
  EXPECT_EQ(r.n_passed, 1);
  expect_failure(r.failures.at(0), "tests/test_a.py::test_x", "tests/test_a.py", 0, "assert 1 == 2");
}

TEST(TestReport, PythonUnittest) {
  auto r = parse("unittest.txt");
  EXPECT_EQ(r.format, "unittest");
  EXPECT_EQ(r.n_failed, 2);
  EXPECT_EQ(r.n_passed, 1);
  ASSERT_EQ(r.failures.size(), 2u);
  expect_failure(r.failures[0], "tests.test_calc.TestCalc.test_div_zero", "tests/test_calc.py", 13, "ZeroDivisionError: division by zero");
  expect_failure(r.failures[1], "tests.test_calc.TestCalc.test_add", "tests/test_calc.py", 7, "AssertionError: -1 != 5");
}

TEST(TestReport, GoogleTest) {
  auto r = parse("gtest_failures.txt");
  EXPECT_EQ(r.format, "gtest");
  EXPECT_EQ(r.n_passed, 1);
  EXPECT_EQ(r.n_failed, 3);
  ASSERT_EQ(r.failures.size(), 3u);
  expect_failure(r.failures[0], "Calc.Adds", "calc_test.cpp", 4, "Which is: -1");
  expect_failure(r.failures[1], "Calc.Throws", "", 0, "C++ exception with description \"boom\"");
  expect_failure(r.failures[2], "Calc.Multi", "calc_test.cpp", 8, "one plus one");
}

TEST(TestReport, CTestWithGoogleTestOutputKeepsLocations) {
  auto r = parse("ctest_output_on_failure.txt", 8);
  EXPECT_EQ(r.format, "ctest");
  EXPECT_EQ(r.n_failed, 4);
  EXPECT_EQ(r.n_passed, 1);
  ASSERT_EQ(r.failures.size(), 4u);
  expect_failure(r.failures[0], "Calc.Adds", "calc_test.cpp", 4, "Which is: -1");
  expect_failure(r.failures[3], "smoke", "", 0, "Failed");
}

TEST(TestReport, CTestPlain) {
  auto r = parse("ctest_plain.txt", 8);
  EXPECT_EQ(r.format, "ctest");
  ASSERT_EQ(r.failures.size(), 4u);
  expect_failure(r.failures[1], "Calc.Throws", "", 0, "Failed");
}

TEST(TestReport, GoTest) {
  for (const char* name : {"go_test.txt", "go_test_verbose.txt"}) {
    SCOPED_TRACE(name);
    auto r = parse(name);
    EXPECT_EQ(r.format, "go");
    // TestTable fails only through its subtests, which carry the locations.
    ASSERT_EQ(r.failures.size(), 3u);
    expect_failure(r.failures[0], "TestAdd", "calc_test.go", 7, "Add(2, 3) = -1, want 5");
    expect_failure(r.failures[1], "TestTable/pos", "calc_test.go", 21, "got 0 want 2");
    expect_failure(r.failures[2], "TestTable/neg", "calc_test.go", 21, "got 0 want -2");
    EXPECT_EQ(r.n_failed, 3);
  }
  EXPECT_EQ(parse("go_test_verbose.txt").n_passed, 1);
}

TEST(TestReport, GoBuildError) {
  auto r = parse("go_build_error.txt");
  EXPECT_EQ(r.format, "go");
  ASSERT_EQ(r.failures.size(), 1u);
  expect_failure(r.failures[0], "", "calc.go", 3, "undefined: c");
}

TEST(TestReport, CargoTest) {
  auto r = parse("cargo_test.txt", 101);
  EXPECT_EQ(r.format, "cargo");
  EXPECT_EQ(r.n_passed, 1);
  EXPECT_EQ(r.n_failed, 2);
  ASSERT_EQ(r.failures.size(), 2u);
  expect_failure(r.failures[0], "tests::adds", "src/lib.rs", 11, "assertion `left == right` failed");
  EXPECT_NE(r.failures[0].message.find("right: 5"), std::string::npos);
  EXPECT_EQ(r.failures[0].message.find("stack backtrace"), std::string::npos);
  expect_failure(r.failures[1], "tests::panics_plain", "src/lib.rs", 22, "index out of bounds");
}

TEST(TestReport, CargoBuildErrorIsRustcDiagnostics) {
  auto r = parse("cargo_build_error.txt", 101);
  EXPECT_EQ(r.format, "compiler");
  ASSERT_EQ(r.failures.size(), 2u);
  expect_failure(r.failures[0], "", "src/lib.rs", 2, "E0308: mismatched types");
  expect_failure(r.failures[1], "", "src/lib.rs", 3, "E0308: mismatched types");
}

TEST(TestReport, NodeTestTap) {
  auto r = parse("node_test_tap.txt");
  EXPECT_EQ(r.format, "node");
  EXPECT_EQ(r.n_passed, 1);
  EXPECT_EQ(r.n_failed, 2);
  // The suite that failed only through its subtest is not a failure of its own.
  ASSERT_EQ(r.failures.size(), 2u);
  expect_failure(r.failures[0], "adds numbers", "math.test.js", 4, "-1 !== 5");
  expect_failure(r.failures[1], "nested fails", "math.test.js", 6, "nested went wrong");
}

TEST(TestReport, NodeTestSpec) {
  auto r = parse("node_test_spec.txt");
  EXPECT_EQ(r.format, "node");
  EXPECT_EQ(r.n_failed, 2);
  ASSERT_EQ(r.failures.size(), 2u);
  expect_failure(r.failures[0], "adds numbers", "math.test.js", 4, "Expected values to be strictly equal");
  expect_failure(r.failures[1], "nested fails", "math.test.js", 6, "nested went wrong");
}

TEST(TestReport, Jest) {
  auto r = parse("jest.txt");
  EXPECT_EQ(r.format, "jest");
  EXPECT_EQ(r.n_failed, 2);
  EXPECT_EQ(r.n_passed, 1);
  ASSERT_EQ(r.failures.size(), 2u);
  expect_failure(r.failures[0], "add › adds positives", "src/math.test.js", 4, "Expected: 5");
  EXPECT_NE(r.failures[0].message.find("Received: -1"), std::string::npos);
  EXPECT_EQ(r.failures[0].message.find("describe"), std::string::npos) << "the code frame is not the message";
  expect_failure(r.failures[1], "throws", "src/math.test.js", 11, "kaboom");
  EXPECT_EQ(r.output_tail.find('\x1b'), std::string::npos) << "colour codes are stripped";
}

TEST(TestReport, CompilerDiagnostics) {
  auto gcc = parse("gcc_errors.txt");
  EXPECT_EQ(gcc.format, "compiler");
  ASSERT_EQ(gcc.failures.size(), 3u);
  expect_failure(gcc.failures[0], "", "main.cpp", 4, "conversion from");
  expect_failure(gcc.failures[2], "", "main.cpp", 6, "expected");
  EXPECT_EQ(gcc.n_failed, 3);

  auto clang = parse("clang_errors.txt");
  ASSERT_EQ(clang.failures.size(), 3u) << "notes are not errors";
  expect_failure(clang.failures[1], "", "main.cpp", 5, "undeclared identifier 'undefined_fn'");

  auto ld = parse("ld_error.txt");
  ASSERT_EQ(ld.failures.size(), 1u);
  EXPECT_NE(ld.failures[0].message.find("undefined reference to `f()'"), std::string::npos);

  for (const char* name : {"tsc.txt", "tsc_pretty.txt"}) {
    SCOPED_TRACE(name);
    auto tsc = parse(name, 2);
    EXPECT_EQ(tsc.format, "compiler");
    ASSERT_EQ(tsc.failures.size(), 2u);
    expect_failure(tsc.failures[0], "", "src/typed.ts", 4, "TS2322: Type 'number' is not assignable");
    expect_failure(tsc.failures[1], "", "src/typed.ts", 5, "TS2304");
  }
}

TEST(TestReport, PassingRunAndRawFallback) {
  auto ok = parse_test_output("all good\n", 0);
  EXPECT_TRUE(ok.passed);
  EXPECT_EQ(ok.status, "passed");
  EXPECT_EQ(ok.format, "raw");
  auto raw = parse_test_output("something broke\n", 3);
  EXPECT_FALSE(raw.passed);
  EXPECT_EQ(raw.format, "raw");
  EXPECT_TRUE(raw.failures.empty());
  EXPECT_EQ(raw.output_tail, "something broke\n");
  // The exit status decides, whatever the text says.
  EXPECT_FALSE(parse_test_output(fixture("go_test.txt").substr(0, 10), 1).passed);
}

TEST(TestReport, LongOutputKeepsHeadAndTailWithNote) {
  std::string out;
  for (int i = 0; i < 5000; ++i) out += "line " + std::to_string(i) + "\n";
  auto r = parse_test_output(out, 1, 2000);
  EXPECT_LE(r.output_tail.size(), 2000u);
  EXPECT_EQ(r.output_tail.rfind("line 0\n", 0), 0u);
  EXPECT_NE(r.output_tail.find("line 4999\n"), std::string::npos);
  EXPECT_NE(r.output_tail.find(" lines / "), std::string::npos);
  EXPECT_NE(r.output_tail.find(" bytes cut ...]"), std::string::npos);
}

TEST(TestReport, AMegabyteOfOutputParsesQuickly) {
  // The sandbox keeps up to 1 MiB per stream; every parser reads all of it.
  std::string out = "[==========] Running 20000 tests from 1 test suite.\n";
  for (int i = 0; i < 20000; ++i) {
    out += "[ RUN      ] Big.Case" + std::to_string(i) + "\n";
    if (i % 1000 == 7) out += "big_test.cpp:" + std::to_string(i) + ": Failure\nValue of: x\n";
    out += "[       OK ] Big.Case" + std::to_string(i) + " (0 ms)\n";
  }
  auto start = std::chrono::steady_clock::now();
  auto r = parse_test_output(out, 1);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(out.size(), 1000000u);
  EXPECT_EQ(r.format, "gtest");
  EXPECT_EQ(r.failures.size(), 20u);
  EXPECT_LT(secs, 1.0);
  std::printf("parse of %zu bytes: %.3f s\n", out.size(), secs);
}

TEST(TestReport, ToJsonCarriesEveryField) {
  auto j = parse("pytest_failures.txt").to_json();
  EXPECT_EQ(j["format"], "pytest");
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_EQ(j["failures"][0]["line"], 6);
  EXPECT_EQ(j["failures"][0]["file"], "tests/test_calc.py");
  EXPECT_TRUE(j.contains("output_tail"));
}

TEST(TestReport, FromJsonInvertsToJson) {
  auto r = parse("cargo_test.txt", 101);
  auto back = TestReport::from_json(r.to_json());
  EXPECT_EQ(back.to_json(), r.to_json());
  EXPECT_EQ(TestReport::from_json(nullptr).status, "error");
  auto partial = TestReport::from_json({{"passed", true}, {"failures", {{{"test", "t"}, {"line", "x"}}, 7}}});
  EXPECT_TRUE(partial.passed);
  ASSERT_EQ(partial.failures.size(), 1u);
  EXPECT_EQ(partial.failures[0].test, "t");
  EXPECT_EQ(partial.failures[0].line, 0);
}

TEST(OutputShaping, TruncateMiddle) {
  using flashfix::tools::truncate_middle;
  EXPECT_EQ(truncate_middle("short", 100), "short");
  std::string text;
  for (int i = 0; i < 100; ++i) text += "row " + std::to_string(i) + "\n";
  std::string cut = truncate_middle(text, 300);
  EXPECT_LE(cut.size(), 300u);
  EXPECT_EQ(cut.rfind("row 0\n", 0), 0u);
  EXPECT_EQ(cut.substr(cut.size() - 7), "row 99\n");
  // Line boundaries: no partial rows on either side of the note.
  size_t note = cut.find("[... ");
  ASSERT_NE(note, std::string::npos);
  EXPECT_EQ(cut[note - 1], '\n');
  // The counts are exact.
  size_t lines_cut = std::stoul(cut.substr(note + 5));
  size_t kept_lines = 0;
  for (char c : cut) kept_lines += c == '\n';
  EXPECT_EQ(kept_lines - 1 + lines_cut, 100u);
  // A single long line is cut without splitting a UTF-8 sequence.
  std::string utf8;
  for (int i = 0; i < 400; ++i) utf8 += "\xc3\xa9";  // é
  std::string u = truncate_middle(utf8, 200);
  EXPECT_NE(u.find("bytes cut"), std::string::npos);
  for (size_t i = 0; i + 1 < u.size(); ++i) {
    if (static_cast<unsigned char>(u[i]) == 0xc3) {
      EXPECT_EQ(static_cast<unsigned char>(u[i + 1]), 0xa9);
    }
  }
  EXPECT_EQ(flashfix::tools::strip_ansi("\x1b[31mred\x1b[0m plain"), "red plain");
}

}  // namespace
