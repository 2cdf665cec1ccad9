// Line-level text helpers for edit and apply_patch: splitting with the line ending remembered,
// whitespace-insensitive comparison, and finding where a block of lines almost occurs.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace flashfix::tools {

struct TextLines {
  std::vector<std::string> lines;  // without terminators (and without '\r')
  bool final_newline = true;       // the last line ends with a terminator (an empty text has none)
  std::string eol = "\n";          // "\r\n" when most lines end so; written back the same way

  static TextLines split(std::string_view text);
  std::string join() const;
};

// Leading and trailing whitespace removed, inner runs of spaces and tabs collapsed to one space.
std::string normalize_whitespace(std::string_view line);

struct ClosestBlock {
  size_t start = 0;    // index into the haystack of the first line
  double score = 0;    // 0..1: the mean over the block of each line pair's bigram Dice coefficient
};
// The window of haystack (wanted.size() lines long) most similar to wanted, line by line.
ClosestBlock closest_block(const std::vector<std::string>& haystack, const std::vector<std::string>& wanted);

// "  12\ttext" lines for haystack[first, last), for showing the model where it missed; lines that
// differ from `expected` (compared without whitespace) are marked with '!' instead of a space.
std::string numbered_excerpt(const std::vector<std::string>& haystack, size_t first, size_t last,
                             const std::vector<std::string>* expected = nullptr);

}  // namespace flashfix::tools
