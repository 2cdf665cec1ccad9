#define PCRE2_CODE_UNIT_WIDTH 8
#include "tools/line_pattern.h"

#include <pcre2.h>

#include <charconv>
#include <memory>
#include <stdexcept>

namespace flashfix::tools {

LinePattern::LinePattern(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE at = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_MULTILINE, &err, &at, nullptr);
  if (!code) throw std::logic_error("bad pattern: " + std::string(pattern));
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

LinePattern::~LinePattern() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::optional<std::vector<std::string>> LinePattern::match(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_);
  // Match data per call keeps a shared pattern safe to use from several threads.
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(pcre2_match_data_create_from_pattern(code, nullptr),
                                                                          &pcre2_match_data_free);
  int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md.get(), nullptr);
  if (rc < 0) return std::nullopt;
  uint32_t groups = 0;
  pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
  std::vector<std::string> out;
  for (uint32_t i = 0; i <= groups; ++i) {
    if (int(i) < rc && ov[2 * i] != PCRE2_UNSET)
      out.emplace_back(text.substr(ov[2 * i], ov[2 * i + 1] - ov[2 * i]));
    else
      out.emplace_back();
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = end + 1;
  }
  return lines;
}

int to_int(const std::string& digits) {
  int v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  return ec == std::errc() ? v : 0;
}

}  // namespace flashfix::tools
