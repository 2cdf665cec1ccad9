// UTF-8 as nlohmann::json accepts it (RFC 3629: no overlong forms, no UTF-16 surrogates, nothing past
// U+10FFFF). Model output is raw bytes; text that becomes a JSON string must pass this first.
#pragma once
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

}  // namespace flashfix::agent
