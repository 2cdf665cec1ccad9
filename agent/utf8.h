// UTF-8 as nlohmann::json accepts it (RFC 3629: no overlong forms, no UTF-16 surrogates, nothing past
// U+10FFFF). Model output is raw bytes; text that becomes a JSON string must pass this first.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace flashfix::agent {

// For a lead byte: how many continuation bytes follow (0 for ASCII), and the range the first of them
// must fall in (later ones are always 0x80-0xBF). -1: not a lead byte.
inline int utf8_lead(uint8_t c, uint8_t& lo, uint8_t& hi) {
  lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 0;
  if (c >= 0xC2 && c <= 0xDF) return 1;
  if (c == 0xE0) return lo = 0xA0, 2;
  if (c == 0xED) return hi = 0x9F, 2;  // U+D800-U+DFFF would follow
  if (c >= 0xE1 && c <= 0xEF) return 2;
  if (c == 0xF0) return lo = 0x90, 3;
  if (c >= 0xF1 && c <= 0xF3) return 3;
  if (c == 0xF4) return hi = 0x8F, 3;
  return -1;
}

inline bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint8_t lo, hi;
    const int need = utf8_lead(uint8_t(s[i]), lo, hi);
    if (need < 0 || i + size_t(need) >= s.size()) return false;  // not a lead byte, or cut short
    for (int k = 1; k <= need; ++k) {
      const uint8_t b = uint8_t(s[i + size_t(k)]);
      if (b < lo || b > hi) return false;
      lo = 0x80, hi = 0xBF;
    }
    i += size_t(need) + 1;
  }
  return true;
}

// Bytes at the end of s that begin a character later input may still complete (a character can
// span tokens, so streamed text holds these back). Bytes that can never start one (a stray
// continuation byte, 0xF8-0xFF) are not held: they will never complete, and the JSON writer
// replaces them.
inline size_t incomplete_utf8_tail(std::string_view s) {
  for (size_t back = 1; back <= std::min<size_t>(3, s.size()); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back for the lead
    const size_t need = c >= 0xF8 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace flashfix::agent
