// JUnit XML for CI dashboards from an agent run: one testsuite "flashfix" whose testcase is the fix
// itself (failed with the reason when not fixed), and one testsuite for the test command whose
// testcases are its parsed records (one per failure; one passing case for a green run; the raw
// output as one failing case when no record could be parsed).
#pragma once
#include <string>
#include <string_view>

#include "agent/agent.h"

namespace flashfix::cli {

struct JunitInfo {
  std::string test_command;
  std::string task;
};

std::string junit_xml(const agent::AgentResult& result, const JunitInfo& info);

// Text safe inside XML 1.0 attributes and elements: markup characters escaped, invalid UTF-8 and the
// control characters XML forbids (anything below 0x20 but tab, newline, return) replaced by U+FFFD.
std::string xml_escape(std::string_view text);

}  // namespace flashfix::cli
