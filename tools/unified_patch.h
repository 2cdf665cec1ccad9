// Unified diffs as models write them: git style (diff --git, a/ b/ prefixes, new/deleted files)
// or plain ---/+++; hunk line counts are not trusted (models miscount), the hunk body is read by
// its line prefixes. Hunks are placed by their context, searched outward from the stated line, so
// a patch against slightly moved code still applies.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tools/text_lines.h"

namespace flashfix::tools {

struct PatchHunk {
  std::string header;  // "@@ -10,6 +10,7 @@ ..."
  int old_start = 0;   // 1-based, as stated
  std::vector<std::string> before, after;  // the lines the hunk expects, and what replaces them
  bool before_has_no_final_newline = false, after_has_no_final_newline = false;
};

struct FilePatch {
  std::string old_path, new_path;  // without a/ b/; empty for /dev/null
  std::vector<PatchHunk> hunks;
  bool creates() const { return old_path.empty(); }
  bool deletes() const { return new_path.empty(); }
};

// Throws ToolError for text that is not a unified diff, naming the line.
std::vector<FilePatch> parse_unified_diff(std::string_view text);

struct HunkPlacement {
  bool applied = false;
  size_t line = 0;           // 1-based, where it went (applied) or where it was expected
  std::string how;           // "", "offset by N lines", "ignoring whitespace", "with fuzz 1"
};

// Applies every hunk to `file` in order, or none (returns false with `error` naming the hunk and
// showing the closest lines). `notes` describes hunks that needed an offset or fuzz.
bool apply_hunks(TextLines& file, const std::vector<PatchHunk>& hunks, std::string& error, std::vector<std::string>& notes);

}  // namespace flashfix::tools
