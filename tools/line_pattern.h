// A PCRE2 pattern compiled once and matched against single lines, for the test-output parsers
// (std::regex is too slow for a megabyte of CI log).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashfix::tools {

class LinePattern {
 public:
  explicit LinePattern(std::string_view pattern);  // throws std::logic_error on a bad pattern (a bug here)
  ~LinePattern();
  LinePattern(const LinePattern&) = delete;
  LinePattern& operator=(const LinePattern&) = delete;

  // Group 0 (the whole match) then each capture group; an unset group is empty.
  std::optional<std::vector<std::string>> match(std::string_view text) const;
  bool found_in(std::string_view text) const { return match(text).has_value(); }

 private:
  void* code_;
};

std::vector<std::string_view> split_lines(std::string_view text);  // without the '\n' (and a trailing '\r')
int to_int(const std::string& digits);  // 0 when empty or out of range

}  // namespace flashfix::tools
