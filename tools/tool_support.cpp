#include "tools/tool_support.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace flashfix::tools {

fs::path resolve_in_workspace(const fs::path& root, std::string_view relative) {
  std::string rel(relative);
  if (rel.empty()) throw ToolError("path is empty; give a path relative to the workspace root, e.g. \"src/main.c\" or \".\"");
  if (rel.find('\0') != std::string::npos) throw ToolError("path contains a NUL byte");
  fs::path p(rel);
  if (p.is_absolute())
    throw ToolError("path '" + rel + "' is absolute; give it relative to the workspace root (e.g. \"src/main.c\")");
  fs::path normal = p.lexically_normal();
  if (!normal.empty() && *normal.begin() == "..") throw ToolError("path '" + rel + "' leads outside the workspace");
  std::error_code ec;
  fs::path real_root = fs::canonical(root, ec);
  if (ec) throw ToolError("the workspace folder is gone: " + ec.message());
  auto inside = [&](const fs::path& p) {
    auto [r, q] = std::mismatch(real_root.begin(), real_root.end(), p.begin(), p.end());
    return r == real_root.end();
  };
  // Every symlink on the way must resolve inside the root. weakly_canonical alone would take a
  // dangling link (to a path that does not exist yet) at face value, and writing through it
  // would create a file outside.
  fs::path walked = real_root;
  for (const auto& part : normal) {
    if (part == ".") continue;
    walked /= part;
    auto st = fs::symlink_status(walked, ec);
    if (ec || !fs::exists(st)) break;  // the rest does not exist yet: nothing more to follow
    if (!fs::is_symlink(st)) continue;
    fs::path target = fs::canonical(walked, ec);
    if (ec) throw ToolError("path '" + rel + "' goes through a broken symlink (" + walked.filename().string() + ")");
    if (!inside(target)) throw ToolError("path '" + rel + "' leads outside the workspace (through a symlink)");
    walked = target;
  }
  fs::path real = fs::weakly_canonical(root / normal, ec);
  if (ec) throw ToolError("cannot resolve path '" + rel + "': " + ec.message());
  if (!inside(real)) throw ToolError("path '" + rel + "' leads outside the workspace (through a symlink)");
  return real;
}

std::string display_path(const fs::path& root, const fs::path& path) {
  std::error_code ec;
  fs::path real_root = fs::weakly_canonical(root, ec);
  fs::path rel = path.lexically_relative(real_root);
  if (rel.empty() || rel == ".") return ".";
  return rel.generic_string();
}

std::string read_whole_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw ToolError("'" + path.filename().string() + "' is a folder, not a file (use list_dir)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ToolError("cannot read '" + path.filename().string() + "': no such file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_whole_file(const fs::path& path, std::string_view content) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw ToolError("'" + path.filename().string() + "' is a folder; cannot write it as a file");
  fs::create_directories(path.parent_path(), ec);
  if (ec) throw ToolError("cannot create the folder for '" + path.filename().string() + "': " + ec.message());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), std::streamsize(content.size()));
  out.close();
  if (!out) throw ToolError("cannot write '" + path.filename().string() + "'");
}

std::string string_arg(const nlohmann::json& args, const char* name, std::string fallback) {
  auto it = args.find(name);
  return it != args.end() && it->is_string() ? it->get<std::string>() : fallback;
}

long long int_arg(const nlohmann::json& args, const char* name, long long fallback) {
  auto it = args.find(name);
  return it != args.end() && it->is_number() ? it->get<long long>() : fallback;
}

bool bool_arg(const nlohmann::json& args, const char* name, bool fallback) {
  auto it = args.find(name);
  return it != args.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

}  // namespace flashfix::tools
