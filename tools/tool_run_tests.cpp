// run_tests: the configured test command in the sandbox, its output parsed into failure records.
#include "tools/sandboxed_shell.h"
#include "tools/test_report.h"
#include "tools/tool_support.h"

namespace flashfix::tools {
namespace {

class RunTests : public BasicTool {
 public:
  RunTests()
      : BasicTool("run_tests",
                  "Run the project's configured test command in the sandbox and report the result: passed or failed, "
                  "each failure with test name, file, line and message, and the end of the output.",
                  {{"type", "object"}, {"properties", nlohmann::ordered_json::object()}, {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json&, ToolContext& ctx) const override {
    if (ctx.test_command.empty())
      throw ToolError("no test command is configured for this task; use run with the project's test command instead");
    auto outcome = run_in_sandbox(ctx.workspace, ctx.policy, ctx.test_command, true);
    if (!outcome.ran) throw ToolError(outcome.headline);
    TestReport report = parse_test_output(outcome.stdout_text, outcome.exit_code, ctx.max_output_chars / 2);
    if (outcome.status != "exited") {
      report.passed = false;
      report.status = outcome.status;
    }
    std::string text = "$ " + ctx.test_command + "\n" + outcome.headline + "\n" + report.summary();
    if (!report.passed) text += "--- output ---\n" + report.output_tail;
    nlohmann::json data = report.to_json();
    data["wall_ms"] = outcome.data["wall_ms"];
    return {true, text, data};
  }
};

}  // namespace

std::unique_ptr<Tool> make_run_tests_tool() { return std::make_unique<RunTests>(); }

}  // namespace flashfix::tools
