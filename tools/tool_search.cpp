// search: a regular expression over the workspace's text files, `file:line: text` per matching line.
// Fast on large trees: ignored folders are skipped before they are entered, each file is read
// once and matched as a whole buffer by a JIT-compiled PCRE2 pattern (multiline, so ^ and $ work
// per line), and binary files are dropped after one look at their first bytes.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pcre2.h>

#include <algorithm>

#include "tools/output_shaping.h"
#include "tools/tool_support.h"

namespace fs = std::filesystem;

namespace flashfix::tools {
namespace {

constexpr std::uintmax_t kMaxFileBytes = 8u << 20;  // larger files are data, not code
constexpr size_t kMaxLineChars = 240;

struct Regex {
  pcre2_code* code = nullptr;
  pcre2_match_data* match = nullptr;
  ~Regex() {
    if (match) pcre2_match_data_free(match);
    if (code) pcre2_code_free(code);
  }
};

struct Search {
  const Workspace& ws;
  fs::path root;
  Regex& re;
  std::string glob;
  size_t max_results;
  bool honour_ignore = true;  // off when the model names an ignored folder itself
  std::string out;
  size_t hits = 0, files = 0, skipped_large = 0;
  bool more = false;

  bool glob_matches(const fs::path& rel) const {
    if (glob.empty()) return true;
    // A glob with a '/' is matched against the whole relative path ('*' crossing folders), one
    // without against the file name, as ripgrep's -g and find -name do.
    std::string subject = glob.find('/') != std::string::npos ? rel.generic_string() : rel.filename().string();
    return fnmatch(glob.c_str(), subject.c_str(), 0) == 0;
  }

  void file(const fs::path& path, const fs::path& rel) {
    // One open, one fstat, one read: on a slow file system the system calls are the whole cost.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    std::string data;
    if (fstat(fd, &st) == 0 && std::uintmax_t(st.st_size) <= kMaxFileBytes) {
      data.resize(size_t(st.st_size));
      size_t got = 0;
      while (got < data.size()) {
        ssize_t n = ::read(fd, data.data() + got, data.size() - got);
        if (n <= 0) break;
        got += size_t(n);
      }
      data.resize(got);
    } else {
      ++skipped_large;
    }
    ::close(fd);
    if (std::uintmax_t(st.st_size) > kMaxFileBytes) return;
    if (looks_binary(data)) return;
    ++files;
    size_t offset = 0, line = 1, line_pos = 0;  // line number of line_pos, counted lazily
    while (offset <= data.size()) {
      int rc = pcre2_match(re.code, reinterpret_cast<PCRE2_SPTR>(data.data()), data.size(), offset, 0, re.match, nullptr);
      if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a match limit hit on a pathological line
      size_t at = pcre2_get_ovector_pointer(re.match)[0];
      line += std::count(data.begin() + long(line_pos), data.begin() + long(at), '\n');
      size_t start = data.rfind('\n', at == 0 ? std::string::npos : at - 1);
      start = start == std::string::npos || at == 0 ? 0 : start + 1;
      size_t end = data.find('\n', at);
      if (end == std::string::npos) end = data.size();
      if (hits == max_results) {
        more = true;
        return;
      }
      ++hits;
      std::string text = data.substr(start, std::min(end - start, kMaxLineChars));
      if (!text.empty() && text.back() == '\r') text.pop_back();
      out += rel.generic_string() + ":" + std::to_string(line) + ": " + text + (end - start > kMaxLineChars ? " [...]" : "") + "\n";
      line_pos = at;
      offset = end + 1;  // one hit per line
    }
  }

  void walk(const fs::path& dir) {
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) {
      if (more) return;
      if (e.path().filename() == ".git") continue;
      auto st = e.symlink_status(ec);
      if (ec || fs::is_symlink(st)) continue;  // links may lead out of the workspace or loop
      fs::path rel = e.path().lexically_relative(root);
      bool is_dir = fs::is_directory(st);
      if (honour_ignore && ws.is_ignored(rel, is_dir)) continue;
      if (is_dir)
        walk(e.path());
      else if (fs::is_regular_file(st) && glob_matches(rel))
        file(e.path(), rel);
    }
  }
};

class SearchTool : public BasicTool {
 public:
  SearchTool()
      : BasicTool("search",
                  "Search the workspace's text files for a regular expression (PCRE syntax; ^ and $ match at line "
                  "ends). Files ignored by .gitignore and binary files are skipped. Prints file:line: text per "
                  "matching line.",
                  {{"type", "object"},
                   {"properties",
                    {{"pattern", {{"type", "string"}, {"minLength", 1}, {"description", "regular expression"}}},
                     {"path", {{"type", "string"}, {"description", "folder or file to search, relative to the root (default \".\")"}}},
                     {"glob", {{"type", "string"}, {"description", "only files whose name matches, e.g. \"*.py\" (with a '/': the relative path)"}}},
                     {"case_insensitive", {{"type", "boolean"}, {"description", "ignore case (default false)"}}},
                     {"max_results", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"description", "at most this many lines (default 100)"}}}}},
                   {"required", {"pattern"}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    std::string pattern = string_arg(args, "pattern");
    Regex re;
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    uint32_t options = PCRE2_MULTILINE | (bool_arg(args, "case_insensitive", false) ? PCRE2_CASELESS : 0);
    re.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &err_offset, nullptr);
    if (!re.code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw ToolError("invalid regular expression at offset " + std::to_string(err_offset) + ": " + reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(re.code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter where JIT is unavailable
    re.match = pcre2_match_data_create_from_pattern(re.code, nullptr);

    fs::path root = fs::canonical(ctx.workspace.root());
    auto start = resolve_in_workspace(root, string_arg(args, "path", "."));
    std::string shown = display_path(root, start);
    std::error_code ec;
    if (!fs::exists(start, ec)) throw ToolError("no such file or folder '" + shown + "'");
    Search s{ctx.workspace, root, re, string_arg(args, "glob"), size_t(int_arg(args, "max_results", 100)), true, {}};
    fs::path start_rel = start.lexically_relative(root);
    if (start_rel != "." && ctx.workspace.is_ignored(start_rel, fs::is_directory(start, ec))) s.honour_ignore = false;
    if (fs::is_directory(start, ec))
      s.walk(start);
    else
      s.file(start, start.lexically_relative(root));

    std::string text = s.hits ? s.out : "no matches for /" + pattern + "/ in " + shown + " (" + std::to_string(s.files) + " files searched)\n";
    if (s.more) text += "[stopped at " + std::to_string(s.max_results) + " matching lines; narrow the pattern, path or glob]\n";
    if (s.skipped_large) text += "[" + std::to_string(s.skipped_large) + " files over 8 MB not searched]\n";
    return {true, truncate_middle(text, ctx.max_output_chars), {{"matches", s.hits}, {"files_searched", s.files}, {"truncated", s.more}}};
  }
};

}  // namespace

std::unique_ptr<Tool> make_search_tool() { return std::make_unique<SearchTool>(); }

}  // namespace flashfix::tools
