// list_dir: the workspace's folders as an indented tree with sizes, ignored files left out.
#include <algorithm>
#include <cstdio>

#include "tools/output_shaping.h"
#include "tools/tool_support.h"

namespace fs = std::filesystem;

namespace flashfix::tools {
namespace {

std::string human_size(std::uintmax_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

constexpr size_t kMaxEntries = 500;

struct Listing {
  const Workspace& ws;
  fs::path root;
  int max_depth;
  std::string text;
  size_t shown = 0, ignored = 0, omitted = 0;

  // Sorted children that are not ignored: folders first, then files, each alphabetically.
  std::vector<fs::directory_entry> children(const fs::path& dir) {
    std::vector<fs::directory_entry> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const auto& e = *it;
      if (e.path().filename() == ".git") continue;
      bool is_dir = e.is_directory(ec) && !e.is_symlink(ec);
      if (ws.is_ignored(e.path().lexically_relative(root), is_dir)) {
        ++ignored;
        continue;
      }
      out.push_back(e);
    }
    std::sort(out.begin(), out.end(), [](const fs::directory_entry& a, const fs::directory_entry& b) {
      bool da = a.is_directory() && !a.is_symlink(), db = b.is_directory() && !b.is_symlink();
      if (da != db) return da;
      return a.path().filename() < b.path().filename();
    });
    return out;
  }

  void walk(const fs::path& dir, int depth) {
    for (const auto& e : children(dir)) {
      if (shown >= kMaxEntries) {
        ++omitted;
        continue;
      }
      std::error_code ec;
      std::string indent(size_t(depth) * 2, ' ');
      std::string name = e.path().filename().string();
      ++shown;
      if (e.is_symlink(ec)) {
        text += indent + name + " -> " + fs::read_symlink(e.path(), ec).string() + "\n";
      } else if (e.is_directory(ec)) {
        if (depth + 1 < max_depth) {
          text += indent + name + "/\n";
          walk(e.path(), depth + 1);
        } else {
          size_t n = 0;
          for (fs::directory_iterator it(e.path(), ec), end; !ec && it != end; it.increment(ec)) ++n;
          text += indent + name + "/ (" + std::to_string(n) + " entries, not expanded)\n";
        }
      } else {
        text += indent + name + " (" + human_size(e.file_size(ec)) + ")\n";
      }
    }
  }
};

class ListDir : public BasicTool {
 public:
  ListDir()
      : BasicTool("list_dir",
                  "List a folder of the workspace as a tree with file sizes, to the given depth. Files ignored by "
                  ".gitignore are left out.",
                  {{"type", "object"},
                   {"properties",
                    {{"path", {{"type", "string"}, {"description", "folder relative to the workspace root (default \".\")"}}},
                     {"depth", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}, {"description", "levels to expand (default 2)"}}}}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    auto dir = resolve_in_workspace(ctx.workspace.root(), string_arg(args, "path", "."));
    std::string shown = display_path(ctx.workspace.root(), dir);
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw ToolError("no such folder '" + shown + "'");
    if (!fs::is_directory(dir, ec)) throw ToolError("'" + shown + "' is a file, not a folder (use read_file)");
    Listing l{ctx.workspace, fs::canonical(ctx.workspace.root()), int(int_arg(args, "depth", 2)), {}};
    l.walk(dir, 0);
    std::string text = (shown == "." ? std::string("./") : shown + "/") + "\n" + l.text;
    if (l.shown == 0) text += "(empty)\n";
    if (l.omitted) text += "[" + std::to_string(l.omitted) + " more entries not shown; list a subfolder]\n";
    if (l.ignored) text += "[" + std::to_string(l.ignored) + " ignored entries (.gitignore) not shown]\n";
    return {true, truncate_middle(text, ctx.max_output_chars), {{"entries", l.shown}, {"ignored", l.ignored}}};
  }
};

}  // namespace

std::unique_ptr<Tool> make_list_dir_tool() { return std::make_unique<ListDir>(); }

}  // namespace flashfix::tools
