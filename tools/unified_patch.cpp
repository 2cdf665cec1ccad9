#include "tools/unified_patch.h"

#include <algorithm>
#include <cstdlib>

#include "tools/line_pattern.h"
#include "tools/test_parsers.h"
#include "tools/tool_support.h"

namespace flashfix::tools {
namespace {

// "a/src/x.c\t2024-01-01 ..." -> "src/x.c"; "/dev/null" -> "".
std::string header_path(std::string_view raw, char side) {
  std::string p(raw.substr(0, raw.find('\t')));
  while (!p.empty() && (p.back() == ' ' || p.back() == '\r')) p.pop_back();
  if (p.size() >= 2 && p.front() == '"' && p.back() == '"') p = p.substr(1, p.size() - 2);
  if (p == "/dev/null") return "";
  if (p.size() > 2 && p[0] == side && p[1] == '/') p = p.substr(2);
  return p;
}

}  // namespace

std::vector<FilePatch> parse_unified_diff(std::string_view text) {
  static const LinePattern hunk_header("^@@ -(\\d+)(?:,\\d+)? \\+(\\d+)(?:,\\d+)? @@");
  static const LinePattern git_header("^diff --git (\"?a/.+?\"?) (\"?b/.+\"?)$");
  Lines lines = split_lines(text);
  std::vector<FilePatch> files;
  PatchHunk* hunk = nullptr;
  char last_kind = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (auto m = git_header.match(line)) {
      files.push_back({header_path((*m)[1], 'a'), header_path((*m)[2], 'b'), {}});
      hunk = nullptr;
      continue;
    }
    if (line.rfind("--- ", 0) == 0 && i + 1 < lines.size() && lines[i + 1].rfind("+++ ", 0) == 0) {
      std::string old_path = header_path(line.substr(4), 'a'), new_path = header_path(lines[i + 1].substr(4), 'b');
      // A git header already opened this file; ---/+++ refine it (and say /dev/null for new or deleted).
      if (files.empty() || !files.back().hunks.empty() || hunk) files.push_back({});
      files.back().old_path = old_path;
      files.back().new_path = new_path;
      hunk = nullptr;
      ++i;
      continue;
    }
    if (auto m = hunk_header.match(line)) {
      if (files.empty()) throw ToolError("patch line " + std::to_string(i + 1) + ": hunk before any ---/+++ file header");
      files.back().hunks.push_back({std::string(line), to_int((*m)[1]), {}, {}});
      hunk = &files.back().hunks.back();
      last_kind = 0;
      continue;
    }
    if (!hunk) continue;  // git's "index ...", "new file mode ..." and other prose between files
    char kind = line.empty() ? ' ' : line[0];  // an empty line is empty context (editors strip the space)
    std::string body(line.empty() ? line : line.substr(1));
    if (kind == ' ') {
      hunk->before.push_back(body);
      hunk->after.push_back(body);
    } else if (kind == '-') {
      hunk->before.push_back(body);
    } else if (kind == '+') {
      hunk->after.push_back(body);
    } else if (kind == '\\') {  // "\ No newline at end of file" refers to the line above
      if (last_kind != '+') hunk->before_has_no_final_newline = true;
      if (last_kind != '-') hunk->after_has_no_final_newline = true;
      continue;
    } else {
      hunk = nullptr;  // the end of the hunk: commentary after a diff, or the next file's prose
      continue;
    }
    last_kind = kind;
  }
  // Trailing empty "context" lines are usually the blank line after a patch, not part of it.
  for (auto& f : files)
    for (auto& h : f.hunks)
      while (!h.before.empty() && !h.after.empty() && h.before.back().empty() && h.after.back().empty() && h.before.size() > 1) {
        h.before.pop_back();
        h.after.pop_back();
      }
  if (files.empty()) throw ToolError("no file headers found: the patch must be a unified diff with ---/+++ lines and @@ hunks");
  for (const auto& f : files) {
    if (f.old_path.empty() && f.new_path.empty()) throw ToolError("a file in the patch has neither an old nor a new path");
    if (f.hunks.empty() && !f.deletes())
      throw ToolError("the patch for " + (f.new_path.empty() ? f.old_path : f.new_path) + " has no @@ hunks");
  }
  return files;
}

namespace {

bool block_matches(const std::vector<std::string>& file, size_t at, const std::vector<std::string>& want, size_t skip_front,
                   size_t skip_back, bool loose) {
  size_t n = want.size() - skip_front - skip_back;
  if (at + n > file.size()) return false;
  for (size_t k = 0; k < n; ++k) {
    const std::string& a = file[at + k];
    const std::string& b = want[skip_front + k];
    if (loose ? normalize_whitespace(a) != normalize_whitespace(b) : a != b) return false;
  }
  return true;
}

// Leading and trailing context lines of a hunk (lines equal on both sides), which fuzz may drop.
size_t context_at_front(const PatchHunk& h) {
  size_t n = 0;
  while (n < h.before.size() && n < h.after.size() && h.before[n] == h.after[n]) ++n;
  return n;
}
size_t context_at_back(const PatchHunk& h) {
  size_t n = 0;
  while (n < h.before.size() && n < h.after.size() && h.before[h.before.size() - 1 - n] == h.after[h.after.size() - 1 - n]) ++n;
  return n;
}

}  // namespace

bool apply_hunks(TextLines& file, const std::vector<PatchHunk>& hunks, std::string& error, std::vector<std::string>& notes) {
  std::vector<std::string> lines = file.lines;
  bool final_newline = file.final_newline;
  long offset = 0;   // where earlier hunks landed relative to where they said
  size_t floor = 0;  // hunks apply in order and do not overlap
  for (size_t h = 0; h < hunks.size(); ++h) {
    const PatchHunk& hunk = hunks[h];
    long expected = std::max<long>(0, long(hunk.old_start) - (hunk.before.empty() ? 0 : 1) + offset);
    size_t found = std::string::npos, fuzz = 0;
    bool loose = false;
    // Exact first, then ignoring whitespace, then dropping up to two context lines at each end
    // (patch(1)'s fuzz); each searched outward from the expected line, nearest first.
    size_t front = context_at_front(hunk), back = context_at_back(hunk);
    for (size_t f = 0; f <= 2 && found == std::string::npos; ++f) {
      size_t skip_front = std::min(f, front), skip_back = std::min(f, back);
      if (f > 0 && skip_front + skip_back == 0) break;
      if (skip_front + skip_back >= hunk.before.size() && !hunk.before.empty()) break;
      for (bool l : {false, true}) {
        if (found != std::string::npos) break;
        long span = long(lines.size()) + 1, want = expected + long(skip_front);
        for (long d = 0; d <= span && found == std::string::npos; ++d)
          for (long at : {want + d, want - d}) {
            if (at < long(floor) || at > long(lines.size())) continue;
            if (block_matches(lines, size_t(at), hunk.before, skip_front, skip_back, l)) {
              found = size_t(at);
              fuzz = f;
              loose = l;
              break;
            }
          }
      }
      if (found != std::string::npos) {
        // Replace only the matched middle; the dropped context stays as the file has it.
        size_t n_before = hunk.before.size() - skip_front - skip_back;
        std::vector<std::string> repl(hunk.after.begin() + long(skip_front), hunk.after.end() - long(skip_back));
        lines.erase(lines.begin() + long(found), lines.begin() + long(found + n_before));
        lines.insert(lines.begin() + long(found), repl.begin(), repl.end());
        long moved = long(found) - long(skip_front) - expected;
        std::string how;
        if (moved != 0) how = "found " + std::to_string(std::labs(moved)) + (moved > 0 ? " lines below" : " lines above") + " the stated line";
        if (loose) how += std::string(how.empty() ? "" : ", ") + "ignoring whitespace";
        if (fuzz) how += std::string(how.empty() ? "" : ", ") + "with fuzz " + std::to_string(fuzz);
        if (!how.empty()) notes.push_back("hunk " + std::to_string(h + 1) + " (" + hunk.header + "): " + how);
        offset += moved + long(repl.size()) - long(n_before);
        floor = found + repl.size();
        bool at_end = found + repl.size() == lines.size();
        if (at_end && hunk.after_has_no_final_newline) final_newline = false;
        if (at_end && hunk.before_has_no_final_newline && !hunk.after_has_no_final_newline) final_newline = true;
      }
    }
    if (found == std::string::npos) {
      error = "hunk " + std::to_string(h + 1) + " (" + hunk.header + ") does not apply: the lines it expects at line " +
              std::to_string(hunk.old_start) + " were not found anywhere in the file";
      ClosestBlock best = closest_block(lines, hunk.before);
      if (best.score > 0.3)
        error += ". Closest lines, " + std::to_string(best.start + 1) + "-" + std::to_string(best.start + hunk.before.size()) +
                 " (lines that differ from the hunk marked '!'):\n" +
                 numbered_excerpt(lines, best.start, best.start + hunk.before.size(), &hunk.before);
      return false;
    }
  }
  file.lines = std::move(lines);
  file.final_newline = final_newline && !file.lines.empty();
  return true;
}

}  // namespace flashfix::tools
