#include "tools/text_lines.h"

#include <algorithm>
#include <cstdint>

namespace flashfix::tools {

TextLines TextLines::split(std::string_view text) {
  TextLines t;
  size_t crlf = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    if (nl != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1), ++crlf;
    t.lines.emplace_back(line);
    pos = end + 1;
  }
  t.final_newline = !text.empty() && text.back() == '\n';
  if (crlf * 2 > t.lines.size()) t.eol = "\r\n";
  return t;
}

std::string TextLines::join() const {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    if (i + 1 < lines.size() || final_newline) out += eol;
  }
  return out;
}

std::string normalize_whitespace(std::string_view line) {
  std::string out;
  bool space = false;
  for (char c : line) {
    if (c == ' ' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

double line_similarity(std::string_view a_raw, std::string_view b_raw) {
  std::string a = normalize_whitespace(a_raw), b = normalize_whitespace(b_raw);
  if (a == b) return 1.0;
  if (a.size() < 2 || b.size() < 2) return 0.0;
  auto bigrams = [](const std::string& s) {
    std::vector<uint16_t> v;
    for (size_t i = 0; i + 1 < s.size(); ++i) v.push_back(uint16_t(uint8_t(s[i]) << 8 | uint8_t(s[i + 1])));
    std::sort(v.begin(), v.end());
    return v;
  };
  auto x = bigrams(a), y = bigrams(b);
  size_t common = 0;
  for (size_t i = 0, j = 0; i < x.size() && j < y.size();) {
    if (x[i] == y[j]) ++common, ++i, ++j;
    else if (x[i] < y[j]) ++i;
    else ++j;
  }
  return 2.0 * double(common) / double(x.size() + y.size());
}

ClosestBlock closest_block(const std::vector<std::string>& haystack, const std::vector<std::string>& wanted) {
  ClosestBlock best;
  if (wanted.empty() || haystack.empty()) return best;
  size_t windows = haystack.size() >= wanted.size() ? haystack.size() - wanted.size() + 1 : 1;
  for (size_t start = 0; start < windows; ++start) {
    double sum = 0;
    size_t n = std::min(wanted.size(), haystack.size() - start);
    for (size_t k = 0; k < n; ++k) sum += line_similarity(haystack[start + k], wanted[k]);
    double score = sum / double(wanted.size());
    if (score > best.score) best = {start, score};
  }
  return best;
}

std::string numbered_excerpt(const std::vector<std::string>& haystack, size_t first, size_t last,
                             const std::vector<std::string>* expected) {
  last = std::min(last, haystack.size());
  int width = int(std::to_string(last).size());
  std::string out;
  for (size_t i = first; i < last; ++i) {
    bool differs = expected && (i - first >= expected->size() ||
                                normalize_whitespace((*expected)[i - first]) != normalize_whitespace(haystack[i]));
    std::string n = std::to_string(i + 1);
    out += (differs ? "!" : " ") + std::string(width - n.size(), ' ') + n + "\t" + haystack[i] + "\n";
  }
  return out;
}

}  // namespace flashfix::tools
