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

namespace {

// A line as compared: its whitespace-normalised text and that text's sorted character bigrams
// (similarity is their Dice coefficient: cheap, and robust to renamed identifiers and typos).
struct Profile {
  std::string text;
  std::vector<uint16_t> bigrams;
  explicit Profile(std::string_view raw) : text(normalize_whitespace(raw)) {
    for (size_t i = 0; i + 1 < text.size(); ++i) bigrams.push_back(uint16_t(uint8_t(text[i]) << 8 | uint8_t(text[i + 1])));
    std::sort(bigrams.begin(), bigrams.end());
  }
};

double similarity(const Profile& a, const Profile& b) {
  if (a.text == b.text) return 1.0;
  if (a.bigrams.empty() || b.bigrams.empty()) return 0.0;
  size_t common = 0;
  for (size_t i = 0, j = 0; i < a.bigrams.size() && j < b.bigrams.size();) {
    if (a.bigrams[i] == b.bigrams[j]) ++common, ++i, ++j;
    else if (a.bigrams[i] < b.bigrams[j]) ++i;
    else ++j;
  }
  return 2.0 * double(common) / double(a.bigrams.size() + b.bigrams.size());
}

}  // namespace

ClosestBlock closest_block(const std::vector<std::string>& haystack, const std::vector<std::string>& wanted) {
  ClosestBlock best;
  if (wanted.empty() || haystack.empty()) return best;
  // Each line profiled once: the window scan compares every window line with every wanted line.
  std::vector<Profile> hay, want;
  hay.reserve(haystack.size());
  for (const auto& l : haystack) hay.emplace_back(l);
  for (const auto& l : wanted) want.emplace_back(l);
  size_t windows = haystack.size() >= wanted.size() ? haystack.size() - wanted.size() + 1 : 1;
  for (size_t start = 0; start < windows; ++start) {
    double sum = 0;
    size_t n = std::min(wanted.size(), haystack.size() - start);
    for (size_t k = 0; k < n; ++k) sum += similarity(hay[start + k], want[k]);
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
