// write_file: create or overwrite a whole file.
#include <algorithm>

#include "tools/tool_support.h"

namespace flashfix::tools {
namespace {

class WriteFile : public BasicTool {
 public:
  WriteFile()
      : BasicTool("write_file",
                  "Create a file, or replace a file's whole content. Folders are created as needed. For changing part "
                  "of an existing file prefer edit or apply_patch.",
                  {{"type", "object"},
                   {"properties",
                    {{"path", {{"type", "string"}, {"description", "file path relative to the workspace root"}}},
                     {"content", {{"type", "string"}, {"description", "the complete new content of the file"}}}}},
                   {"required", {"path", "content"}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    auto path = resolve_in_workspace(ctx.workspace.root(), string_arg(args, "path"));
    std::string shown = display_path(ctx.workspace.root(), path);
    const std::string& content = args.at("content").get_ref<const std::string&>();
    bool existed = std::filesystem::exists(path);
    write_whole_file(path, content);
    size_t lines = std::count(content.begin(), content.end(), '\n') + (!content.empty() && content.back() != '\n');
    return {true,
            std::string(existed ? "overwrote " : "created ") + shown + " (" + std::to_string(lines) + " lines, " +
                std::to_string(content.size()) + " bytes)",
            {{"path", shown}, {"created", !existed}, {"bytes", content.size()}}};
  }
};

}  // namespace

std::unique_ptr<Tool> make_write_file_tool() { return std::make_unique<WriteFile>(); }

}  // namespace flashfix::tools
