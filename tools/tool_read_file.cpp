// read_file: a file's lines with their numbers, so edits and patches can cite them.
#include <algorithm>

#include "tools/output_shaping.h"
#include "tools/tool_support.h"

namespace flashfix::tools {
namespace {

class ReadFile : public BasicTool {
 public:
  ReadFile()
      : BasicTool("read_file",
                  "Read a text file of the workspace, with line numbers. Use start_line/end_line (1-based, inclusive) "
                  "to read part of a long file.",
                  {{"type", "object"},
                   {"properties",
                    {{"path", {{"type", "string"}, {"description", "file path relative to the workspace root"}}},
                     {"start_line", {{"type", "integer"}, {"minimum", 1}, {"description", "first line to show (default 1)"}}},
                     {"end_line", {{"type", "integer"}, {"minimum", 1}, {"description", "last line to show (default: the end)"}}}}},
                   {"required", {"path"}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    auto path = resolve_in_workspace(ctx.workspace.root(), string_arg(args, "path"));
    std::string shown = display_path(ctx.workspace.root(), path);
    // Reading is whole-file; past this size the model is better served by search or run (head, sed).
    constexpr std::uintmax_t kMaxBytes = 32u << 20;
    std::error_code ec;
    if (auto size = std::filesystem::file_size(path, ec); !ec && size > kMaxBytes)
      throw ToolError(shown + " is " + std::to_string(size >> 20) + " MB, too large to read; use search, or run with head/sed");
    std::string content = read_whole_file(path);
    if (looks_binary(content))
      return {true, shown + " is a binary file (" + std::to_string(content.size()) + " bytes); not shown", {{"binary", true}}};

    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos < content.size();) {
      size_t nl = content.find('\n', pos);
      size_t end = nl == std::string::npos ? content.size() : nl;
      lines.emplace_back(content.data() + pos, end - pos);
      pos = end + 1;
    }
    long long total = static_cast<long long>(lines.size());
    long long first = int_arg(args, "start_line", 1), last = int_arg(args, "end_line", total);
    if (total == 0) return {true, shown + " is empty (0 lines)", {{"lines", 0}}};
    if (first > total)
      throw ToolError("start_line " + std::to_string(first) + " is past the end of " + shown + " (" + std::to_string(total) + " lines)");
    if (last < first) throw ToolError("end_line " + std::to_string(last) + " is before start_line " + std::to_string(first));
    last = std::min(last, total);

    // Numbers padded to the widest one shown, then a tab, like `cat -n`.
    int width = static_cast<int>(std::to_string(last).size());
    std::string body;
    for (long long i = first; i <= last; ++i) {
      std::string n = std::to_string(i);
      body += std::string(width - n.size(), ' ') + n + '\t';
      body += lines[size_t(i - 1)];
      body += '\n';
    }
    std::string header = shown + " (lines " + std::to_string(first) + "-" + std::to_string(last) + " of " + std::to_string(total) + ")\n";
    std::string text = truncate_middle(body, ctx.max_output_chars);
    if (text.size() != body.size()) text += "[the file is longer than one result; read the cut lines with start_line/end_line]\n";
    return {true, header + text, {{"lines", total}, {"start_line", first}, {"end_line", last}}};
  }
};

}  // namespace

std::unique_ptr<Tool> make_read_file_tool() { return std::make_unique<ReadFile>(); }

}  // namespace flashfix::tools
