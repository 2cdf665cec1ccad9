// apply_patch: a unified diff over one or more files. Each file is patched completely or not at all;
// files are independent, so one bad hunk does not hold back the others (the result says which).
#include <filesystem>

#include "tools/tool_support.h"
#include "tools/unified_patch.h"

namespace fs = std::filesystem;

namespace flashfix::tools {
namespace {

class ApplyPatch : public BasicTool {
 public:
  ApplyPatch()
      : BasicTool("apply_patch",
                  "Apply a unified diff (as from `diff -u` or `git diff`) to the workspace. Several files, new files "
                  "(--- /dev/null) and deleted files (+++ /dev/null) are supported. A hunk whose context moved is "
                  "found nearby. Each file is changed completely or not at all.",
                  {{"type", "object"},
                   {"properties", {{"patch", {{"type", "string"}, {"minLength", 1}, {"description", "the unified diff"}}}}},
                   {"required", {"patch"}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    auto files = parse_unified_diff(string_arg(args, "patch"));
    const fs::path& root = ctx.workspace.root();
    std::string done, failed;
    auto applied = nlohmann::json::array(), rejected = nlohmann::json::array();
    for (const auto& f : files) {
      std::string name = f.deletes() ? f.old_path : f.new_path;
      try {
        std::string note = apply_file(root, f);
        done += "patched " + name + note + "\n";
        applied.push_back(name);
      } catch (const ToolError& e) {
        failed += name + ": " + e.what() + "\n";
        rejected.push_back(name);
      }
    }
    std::string text = done;
    if (!failed.empty()) text += "NOT applied (these files are unchanged):\n" + failed;
    return {failed.empty(), text, {{"applied", applied}, {"failed", rejected}}};
  }

 private:
  static std::string apply_file(const fs::path& root, const FilePatch& f) {
    std::error_code ec;
    if (f.creates()) {
      fs::path target = resolve_in_workspace(root, f.new_path);
      if (fs::exists(target, ec) && fs::file_size(target, ec) > 0)
        throw ToolError("the patch creates this file, but it already exists; patch it against its current content instead");
      TextLines file;
      std::string error;
      std::vector<std::string> notes;
      if (!apply_hunks(file, f.hunks, error, notes)) throw ToolError(error);
      write_whole_file(target, file.join());
      return " (new file, " + std::to_string(file.lines.size()) + " lines)";
    }
    fs::path source = resolve_in_workspace(root, f.old_path);
    if (!fs::is_regular_file(source, ec)) throw ToolError("no such file in the workspace");
    TextLines file = TextLines::split(read_whole_file(source));
    std::string error;
    std::vector<std::string> notes;
    if (!f.hunks.empty() && !apply_hunks(file, f.hunks, error, notes)) throw ToolError(error);
    if (f.deletes()) {
      fs::remove(source, ec);
      if (ec) throw ToolError("cannot delete: " + ec.message());
      return " (deleted)";
    }
    fs::path target = resolve_in_workspace(root, f.new_path);
    write_whole_file(target, file.join());
    std::string note = " (" + std::to_string(f.hunks.size()) + (f.hunks.size() == 1 ? " hunk" : " hunks");
    if (target != source) {
      fs::remove(source, ec);
      note += ", renamed from " + f.old_path;
    }
    for (const auto& n : notes) note += "; " + n;
    return note + ")";
  }
};

}  // namespace

std::unique_ptr<Tool> make_apply_patch_tool() { return std::make_unique<ApplyPatch>(); }

}  // namespace flashfix::tools
