// git_diff: what the agent changed so far, from the start or from a checkpoint.
#include "tools/output_shaping.h"
#include "tools/tool_support.h"

namespace flashfix::tools {
namespace {

class GitDiff : public BasicTool {
 public:
  GitDiff()
      : BasicTool("git_diff",
                  "Show the changes made in the workspace so far as a unified diff (from the start of the task, or "
                  "from a checkpoint id).",
                  {{"type", "object"},
                   {"properties", {{"checkpoint", {{"type", "string"}, {"description", "checkpoint id to diff against (default: the start)"}}}}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    std::string since = string_arg(args, "checkpoint");
    std::string diff;
    if (since.empty()) {
      diff = ctx.workspace.diff();
    } else {
      try {
        diff = ctx.workspace.diff_since(since);
      } catch (const std::runtime_error& e) {
        throw ToolError(e.what());
      }
    }
    if (diff.empty()) return {true, since.empty() ? "no changes since the start" : "no changes since checkpoint " + since, {{"empty", true}}};
    return {true, truncate_middle(diff, ctx.max_output_chars), {{"empty", false}}};
  }
};

}  // namespace

std::unique_ptr<Tool> make_git_diff_tool() { return std::make_unique<GitDiff>(); }

}  // namespace flashfix::tools
