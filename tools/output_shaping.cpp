#include "tools/output_shaping.h"

#include <algorithm>
#include <cctype>

namespace flashfix::tools {
namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The end of the head: just after the last newline in the budget when one lies in its second half
// (a whole last line is worth more than a few more bytes), else the budget moved back off any
// UTF-8 continuation byte.
size_t head_end(std::string_view text, size_t budget) {
  size_t nl = text.rfind('\n', budget == 0 ? 0 : budget - 1);
  if (nl != std::string_view::npos && nl + 1 >= budget / 2) return nl + 1;
  size_t end = budget;
  while (end > 0 && is_continuation(text[end])) --end;
  return end;
}

// The start of the tail, mirrored: just after a newline in the tail's first half, else a character start.
size_t tail_start(std::string_view text, size_t budget) {
  size_t start = text.size() - budget;
  size_t nl = text.find('\n', start == 0 ? 0 : start - 1);
  if (nl != std::string_view::npos && nl + 1 <= start + budget / 2) return nl + 1;
  while (start < text.size() && is_continuation(text[start])) ++start;
  return start;
}

}  // namespace

std::string truncate_middle(std::string_view text, size_t max_chars) {
  if (text.size() <= max_chars) return std::string(text);
  // The note itself takes room; what is left splits 60/40 because the head usually says what ran
  // and the tail what happened, and both matter, but errors often come first in compiler output.
  constexpr size_t kNoteRoom = 48;
  size_t room = max_chars > kNoteRoom ? max_chars - kNoteRoom : 0;
  size_t head = head_end(text, room * 6 / 10);
  size_t tail = tail_start(text, room - std::min(room, head));
  if (tail < head) tail = head;
  std::string_view cut = text.substr(head, tail - head);
  size_t lines = std::count(cut.begin(), cut.end(), '\n');
  std::string out(text.substr(0, head));
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += "[... " + std::to_string(lines) + " lines / " + std::to_string(cut.size()) + " bytes cut ...]\n";
  out += text.substr(tail);
  return out;
}

std::string strip_ansi(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      size_t j = i + 2;
      while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == ';' || text[j] == '?')) ++j;
      if (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j]))) {
        i = j;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

bool looks_binary(std::string_view bytes) {
  return bytes.substr(0, std::min<size_t>(bytes.size(), 8000)).find('\0') != std::string_view::npos;
}

}  // namespace flashfix::tools
