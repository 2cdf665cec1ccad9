#include "agent/call_constraint.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/token_trie.h"
#include "agent/tool_schema.h"
#include "agent/utf8.h"
#include "engine/json_text.h"

namespace flashfix::agent {
namespace {

// ---- Grammar tables ------------------------------------------------------------------------------

// Tags tracked inside free text. All start with '<' and hold no other '<', so a partial match is
// just "how many chars of which tags", and a '<' always restarts it.
constexpr std::string_view kPatterns[] = {"<tool_call>", "</tool_call>", "</function>", "</parameter>", "<function="};
enum PatternBit : uint8_t { PToolCall = 1, PToolCallEnd = 2, PFunctionEnd = 4, PParameterEnd = 8, PFunction = 16 };

enum Literal : uint8_t { LJsonHead, LJsonMid, LJsonTail, LXmlHead, LNewline, LArameter, LUnction, LXmlTail, LParamEnd, LTrue, LFalse, LNull };
constexpr std::string_view kLiterals[] = {
    "\n{\"name\": \"", ", \"arguments\": {", "}\n</tool_call>", "\n<function=", "\n", "arameter=", "function>",
    "\n</tool_call>", "\n</parameter>\n", "true", "false", "null"};

enum class Phase : uint8_t {
  Out,            // no call open: watching for the trigger
  Lit,            // matching kLiterals[lit], then `next`
  Name,           // choosing the tool name
  JKeyOrClose,    // after `{` of the arguments
  JKeyStart,      // after `,`: a key must follow
  Key,            // choosing a parameter name (JSON: after its `"`; XML: after `<parameter=`)
  JColon,
  JValue,         // JSON value of the current parameter (value machine or enum choice)
  JCommaOrClose,
  XParamOrEnd,    // `<parameter=` or `</function>`
  XParamOrEnd2,   // after that `<`
  XFree,          // free-text value up to </parameter>
  XValue,         // typed value (value machine or enum choice)
};
enum class Next : uint8_t { None, Name, Key, JKeyOrClose, XParamOrEnd, XValue, XmlTail, Finish };

// The value machine: one JSON value, nested containers on a small stack.
enum class V : uint8_t { Start, Str, Num, Lit, ObjKeyOrClose, ObjKey, Colon, ArrFirst, After, Done };
enum class N : uint8_t { Sign, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits };
enum ChoiceKind : uint8_t { CNames, CKeys, CEnum };

constexpr int kMaxDepth = 16;

struct State {
  Phase phase = Phase::Out;
  Next next = Next::None;
  uint8_t lit = 0;
  uint16_t lit_pos = 0;
  // Trigger / forbidden-tag / terminator tracking over free text.
  uint8_t pat_len = 0, pat_mask = 0;
  // Choice among sorted candidates [lo, hi) sharing their first clen bytes.
  uint8_t choice = CNames;
  uint16_t lo = 0, hi = 0, clen = 0;
  // The call.
  bool bare = false;
  int16_t tool = -1, param = -1;
  uint64_t used = 0;
  // The value.
  V v = V::Start;
  ValueType top = ValueType::Any;
  N num = N::Int;
  bool int_only = false, is_key = false;
  uint8_t depth = 0, ws = 0, esc = 0, hex0 = 0, utf_need = 0, utf_lo = 0, utf_hi = 0, vlit = 0, vlit_pos = 0, exp_digits = 0;
  uint32_t count = 0;  // bytes of the current string / chars of the current number
  uint8_t frame_obj[kMaxDepth];  // 1: object, 0: array
  uint16_t frame_items[kMaxDepth];
  uint32_t completed = 0;
};

struct Cand {
  std::string text;
  int id;
};

struct ParamG {
  ValueType type;
  std::vector<Cand> enums;  // sorted; empty: no enum
};

struct ToolG {
  std::vector<Cand> keys;  // sorted; id = parameter index
  std::vector<ParamG> params;
  uint64_t required = 0;
  uint64_t all = 0;
};

bool is_space(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

enum class R : uint8_t { Ok, Reject, Ended };  // Ended: the value finished before this byte

class Grammar {
 public:
  Grammar(ChatFormat format, const ToolSpecs& specs, const ConstraintLimits& lim) : xml_(format != ChatFormat::Qwen3), lim_(lim) {
    lim_.max_depth = std::min<uint32_t>(lim_.max_depth, kMaxDepth);
    for (size_t t = 0; t < specs.tools.size(); ++t) {
      const ToolSpec& spec = specs.tools[t];
      if (spec.params.size() > 64)
        throw std::invalid_argument("call constraint: tool '" + spec.name + "' has more than 64 parameters");
      names_.push_back({tag_name(spec.name), int(t)});
      ToolG g;
      for (size_t p = 0; p < spec.params.size(); ++p) {
        const ParamSpec& ps = spec.params[p];
        g.keys.push_back({tag_name(ps.name), int(p)});
        ParamG pg{ps.type, {}};
        for (size_t e = 0; e < ps.enum_values.size(); ++e) {
          const auto& ev = ps.enum_values[e];
          // JSON: the value's JSON text. XML: the raw text the parser reads back, then the closer.
          std::string text = !xml_ ? ev.dump() : (ev.is_string() ? ev.get<std::string>() : ev.dump()) + "\n</parameter>";
          pg.enums.push_back({std::move(text), int(e)});
        }
        std::sort(pg.enums.begin(), pg.enums.end(), [](const Cand& a, const Cand& b) { return a.text < b.text; });
        g.params.push_back(std::move(pg));
        if (ps.required) g.required |= uint64_t(1) << p;
        g.all |= uint64_t(1) << p;
      }
      std::sort(g.keys.begin(), g.keys.end(), [](const Cand& a, const Cand& b) { return a.text < b.text; });
      tools_.push_back(std::move(g));
    }
    std::sort(names_.begin(), names_.end(), [](const Cand& a, const Cand& b) { return a.text < b.text; });
  }

  bool has_tools() const { return !names_.empty(); }

  // A name as the grammar spells it, up to its closing byte: `read_file>` in a tag, `read_file"`
  // (escaped as JSON) after a quote.
  std::string tag_name(const std::string& name) const {
    return xml_ ? name + ">" : json_text(nlohmann::json(name)).substr(1);
  }

  // Is the state inside value text where every plain-text token of up to max_len bytes is allowed
  // and changes nothing but the text's length? (TokenTrie's json_text / xml_text.)
  enum class Text : uint8_t { No, JsonString, Xml };
  Text text_kind(const State& s, uint32_t max_len) const {
    if (s.utf_need || s.pat_len || uint64_t(s.count) + max_len >= lim_.max_string_bytes) return Text::No;
    if (s.phase == Phase::XFree) return Text::Xml;
    if ((s.phase == Phase::JValue || s.phase == Phase::XValue) && s.v == V::Str && s.esc == 0) return Text::JsonString;
    return Text::No;
  }

  // Feeds one byte; false when no well-formed call (or free text outside one) can contain it here.
  bool step(State& s, uint8_t c) const {
    while (true) {
      R r = step_once(s, c);
      if (r == R::Ok) return true;
      if (r == R::Reject) return false;
      // R::Ended: the value machine finished before c; step_once has moved the phase on.
    }
  }

 private:
  bool xml_;
  ConstraintLimits lim_;
  std::vector<Cand> names_;
  std::vector<ToolG> tools_;

  uint8_t forbidden(const State& s) const { return PToolCall | PToolCallEnd | (s.bare ? PFunctionEnd : 0); }

  // Tag tracking: returns the bit of a tag completed by c, else 0.
  static uint8_t track(State& s, uint8_t c, uint8_t patterns) {
    if (s.pat_len > 0) {
      uint8_t m = 0;
      for (int b = 0; b < 5; ++b)
        if ((s.pat_mask >> b & 1) && kPatterns[b].size() > s.pat_len && uint8_t(kPatterns[b][s.pat_len]) == c) m |= uint8_t(1 << b);
      if (m) {
        ++s.pat_len;
        s.pat_mask = m;
        for (int b = 0; b < 5; ++b)
          if ((m >> b & 1) && kPatterns[b].size() == s.pat_len) {
            s.pat_len = 0;
            return uint8_t(1 << b);
          }
        return 0;
      }
      s.pat_len = 0;
    }
    if (c == '<') s.pat_len = 1, s.pat_mask = patterns;
    return 0;
  }

  const std::vector<Cand>& choices(const State& s) const {
    if (s.choice == CNames) return names_;
    if (s.choice == CKeys) return tools_[size_t(s.tool)].keys;
    return tools_[size_t(s.tool)].params[size_t(s.param)].enums;
  }
  bool usable(const State& s, const Cand& cand) const { return s.choice != CKeys || !(s.used >> cand.id & 1); }

  void start_choice(State& s, ChoiceKind kind) const {
    s.choice = kind;
    s.lo = 0;
    s.hi = uint16_t(choices(s).size());
    s.clen = 0;
  }
  // Is one candidate complete at the current length?
  bool chosen(const State& s) const {
    const auto& cands = choices(s);
    for (uint16_t i = s.lo; i < s.hi && s.clen > 0; ++i)
      if (cands[i].text.size() == s.clen && usable(s, cands[i])) return true;
    return false;
  }
  // Narrows the candidates by c (false, and s untouched, when none goes on with c); sets `done` to the chosen candidate's id once one is complete.
  bool choose(State& s, uint8_t c, int& done) const {
    const auto& cands = choices(s);
    uint16_t lo = s.hi, hi = s.lo;
    bool any = false;
    for (uint16_t i = s.lo; i < s.hi; ++i) {
      const Cand& cand = cands[i];
      if (cand.text.size() > s.clen && uint8_t(cand.text[s.clen]) == c) {
        lo = std::min(lo, i), hi = uint16_t(i + 1);
        any = any || usable(s, cand);
      }
    }
    if (!any) return false;
    s.lo = lo, s.hi = hi, ++s.clen;
    done = -1;
    for (uint16_t i = lo; i < hi; ++i)
      if (cands[i].text.size() == s.clen && usable(s, cands[i])) done = cands[i].id;
    return true;
  }

  void literal(State& s, Literal lit, Next next) const {
    s.phase = Phase::Lit;
    s.lit = lit;
    s.lit_pos = 0;
    s.next = next;
  }

  void start_call(State& s, bool bare) const {
    s.bare = bare;
    s.tool = s.param = -1;
    s.used = 0;
    s.pat_len = 0;
    if (bare) {
      start_choice(s, CNames);
      s.phase = Phase::Name;
    } else {
      literal(s, xml_ ? LXmlHead : LJsonHead, Next::Name);
    }
  }

  void enter(State& s, Next next) const {
    switch (next) {
      case Next::None: break;
      case Next::Name:
        start_choice(s, CNames);
        s.phase = Phase::Name;
        break;
      case Next::JKeyOrClose:
        s.phase = Phase::JKeyOrClose;
        s.ws = 0;
        break;
      case Next::XParamOrEnd: s.phase = Phase::XParamOrEnd; break;
      case Next::Key:
        start_choice(s, CKeys);
        s.phase = Phase::Key;
        break;
      case Next::XValue: start_xml_value(s); break;
      case Next::XmlTail:
        if (s.bare) {
          enter(s, Next::Finish);
        } else {
          literal(s, LXmlTail, Next::Finish);
        }
        break;
      case Next::Finish:
        s.phase = Phase::Out;
        s.pat_len = 0;
        ++s.completed;
        break;
    }
  }

  const ParamG& param(const State& s) const { return tools_[size_t(s.tool)].params[size_t(s.param)]; }
  bool required_done(const State& s) const { return (tools_[size_t(s.tool)].required & ~s.used) == 0; }
  bool params_left(const State& s) const { return (tools_[size_t(s.tool)].all & ~s.used) != 0; }

  void start_value(State& s, ValueType top) const {
    s.v = V::Start;
    s.top = top;
    s.depth = 0;
    s.ws = 0;
  }

  void start_json_value(State& s) const {
    s.phase = Phase::JValue;
    s.v = V::Start;  // the enum branch reads it: V::Done there means "chosen"
    if (!param(s).enums.empty()) {
      start_choice(s, CEnum);
    } else {
      start_value(s, param(s).type);
    }
  }

  void start_xml_value(State& s) const {
    const ParamG& p = param(s);
    s.v = V::Start;  // the enum branch reads it: V::Done there means "chosen"
    if (!p.enums.empty()) {
      s.phase = Phase::XValue;
      start_choice(s, CEnum);
    } else if (p.type == ValueType::String || p.type == ValueType::Any) {
      s.phase = Phase::XFree;
      s.count = 0;
      s.utf_need = 0;
      s.pat_len = 0;
    } else {
      s.phase = Phase::XValue;
      start_value(s, p.type);
    }
  }

  // Whitespace between JSON tokens, at most max_space in a row.
  enum class Sp : uint8_t { No, Yes, Over };
  Sp space(State& s, uint8_t c) const {
    if (!is_space(c)) {
      s.ws = 0;
      return Sp::No;
    }
    if (s.ws >= lim_.max_space) return Sp::Over;
    ++s.ws;
    return Sp::Yes;
  }

  // A UTF-8 byte inside text; false when it breaks the encoding (nlohmann rejects such strings).
  static bool utf8(State& s, uint8_t c) {
    if (s.utf_need) {
      if (c < s.utf_lo || c > s.utf_hi) return false;
      --s.utf_need;
      s.utf_lo = 0x80, s.utf_hi = 0xBF;
      return true;
    }
    const int need = utf8_lead(c, s.utf_lo, s.utf_hi);
    if (need < 0) return false;
    s.utf_need = uint8_t(need);
    return true;
  }

  void value_done(State& s) const {
    if (s.depth == 0) {
      s.v = V::Done;
    } else {
      ++s.frame_items[s.depth - 1];
      s.v = V::After;
      s.ws = 0;
    }
  }

  // Starts a value with c (after whitespace was skipped).
  R value_start(State& s, uint8_t c) const {
    const bool top = s.depth == 0;
    const ValueType t = top ? s.top : ValueType::Any;
    auto allowed = [&](ValueType want) { return t == ValueType::Any || t == want; };
    if (c == '"' && allowed(ValueType::String)) {
      s.v = V::Str, s.is_key = false, s.count = 0, s.esc = 0, s.utf_need = 0, s.pat_len = 0;
      return R::Ok;
    }
    if ((c == '{' || c == '[') && allowed(c == '{' ? ValueType::Object : ValueType::Array)) {
      if (s.depth >= lim_.max_depth) return R::Reject;
      s.frame_obj[s.depth] = c == '{';
      s.frame_items[s.depth] = 0;
      ++s.depth;
      s.v = c == '{' ? V::ObjKeyOrClose : V::ArrFirst;
      s.ws = 0;
      return R::Ok;
    }
    if ((c == '-' || is_digit(c)) && (allowed(ValueType::Number) || (top && t == ValueType::Integer))) {
      s.v = V::Num, s.int_only = top && t == ValueType::Integer, s.count = 1, s.exp_digits = 0;
      s.num = c == '-' ? N::Sign : c == '0' ? N::Zero : N::Int;
      return R::Ok;
    }
    int lit = c == 't' && allowed(ValueType::Boolean) ? LTrue : c == 'f' && allowed(ValueType::Boolean) ? LFalse
              : c == 'n' && allowed(ValueType::Null) ? LNull : -1;
    if (lit < 0) return R::Reject;
    s.v = V::Lit, s.vlit = uint8_t(lit), s.vlit_pos = 1;
    return R::Ok;
  }

  R number(State& s, uint8_t c) const {
    const uint32_t max = s.int_only ? 18 : lim_.max_number_chars;  // 18 digits: always an int64
    const bool room = s.count < max;
    auto take = [&](N next) {
      s.num = next;
      ++s.count;
      return R::Ok;
    };
    switch (s.num) {
      case N::Sign:
        if (c == '0') return take(N::Zero);
        if (is_digit(c)) return take(N::Int);
        return R::Reject;
      case N::Zero:
      case N::Int:
        if (s.num == N::Int && is_digit(c) && room) return take(N::Int);
        if (!s.int_only && room && c == '.') return take(N::Dot);
        if (!s.int_only && room && (c == 'e' || c == 'E')) return take(N::Exp);
        break;
      case N::Dot: return is_digit(c) ? take(N::Frac) : R::Reject;
      case N::Frac:
        if (is_digit(c) && room) return take(N::Frac);
        if (room && (c == 'e' || c == 'E')) return take(N::Exp);
        break;
      case N::Exp:
        if (c == '+' || c == '-') return take(N::ExpSign);
        [[fallthrough]];
      case N::ExpSign:
        if (is_digit(c)) return ++s.exp_digits, take(N::ExpDigits);
        return R::Reject;
      case N::ExpDigits:
        if (is_digit(c) && s.exp_digits < 2) return ++s.exp_digits, take(N::ExpDigits);  // no overflow to inf
        break;
    }
    value_done(s);  // the number ended before c
    return R::Ended;
  }

  R string_byte(State& s, uint8_t c) const {
    if (s.esc == 1) {
      if (c == 'u') {
        s.esc = 2;
        return R::Ok;
      }
      if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't') return R::Reject;
      s.esc = 0, ++s.count;
      return R::Ok;
    }
    if (s.esc >= 2) {  // \uXXXX; surrogates (\uD800-\uDFFF) are refused: a lone one does not parse
      if (!is_hex(c)) return R::Reject;
      const uint8_t lower = uint8_t(c | 0x20);
      if (s.esc == 2) s.hex0 = lower;
      if (s.esc == 3 && s.hex0 == 'd' && (lower == '8' || lower == '9' || lower >= 'a')) return R::Reject;
      if (++s.esc == 6) s.esc = 0, ++s.count;
      return R::Ok;
    }
    if (s.utf_need) {
      if (!utf8(s, c)) return R::Reject;
      ++s.count;
      return R::Ok;
    }
    if (s.count >= lim_.max_string_bytes && c != '"') return R::Reject;  // at the limit: only the closing quote
    if (c == '"') {
      if (s.is_key) {
        s.v = V::Colon;
        s.ws = 0;
      } else {
        value_done(s);
      }
      return R::Ok;
    }
    if (c < 0x20) return R::Reject;
    if (c == '\\') {
      s.esc = 1, s.pat_len = 0;
      return R::Ok;
    }
    if (!utf8(s, c)) return R::Reject;
    if (track(s, c, forbidden(s))) return R::Reject;
    ++s.count;
    return R::Ok;
  }

  // One byte of the current JSON value.
  R value_byte(State& s, uint8_t c) const {
    switch (s.v) {
      case V::Start: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over) return R::Reject;
        return value_start(s, c);
      }
      case V::Str: return string_byte(s, c);
      case V::Num: {
        R r = number(s, c);
        // Inside a container the number's end is not the value's: the container takes c.
        return r == R::Ended && s.v != V::Done ? value_byte(s, c) : r;
      }
      case V::Lit: {
        std::string_view lit = kLiterals[s.vlit];
        if (uint8_t(lit[s.vlit_pos]) != c) return R::Reject;
        if (++s.vlit_pos == lit.size()) value_done(s);
        return R::Ok;
      }
      case V::ObjKeyOrClose:
      case V::ObjKey: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over) return R::Reject;
        if (c == '}' && s.v == V::ObjKeyOrClose) {
          --s.depth;
          value_done(s);
          return R::Ok;
        }
        if (c != '"') return R::Reject;
        s.v = V::Str, s.is_key = true, s.count = 0, s.esc = 0, s.utf_need = 0, s.pat_len = 0;
        return R::Ok;
      }
      case V::Colon: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over || c != ':') return R::Reject;
        s.v = V::Start;
        s.ws = 0;
        return R::Ok;
      }
      case V::ArrFirst: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over) return R::Reject;
        if (c == ']') {
          --s.depth;
          value_done(s);
          return R::Ok;
        }
        return value_start(s, c);
      }
      case V::After: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over) return R::Reject;
        const bool obj = s.frame_obj[s.depth - 1];
        if (c == (obj ? '}' : ']')) {
          --s.depth;
          value_done(s);
          return R::Ok;
        }
        if (c != ',' || s.frame_items[s.depth - 1] >= lim_.max_items) return R::Reject;
        s.v = obj ? V::ObjKey : V::Start;
        s.ws = 0;
        return R::Ok;
      }
      case V::Done: return R::Ended;
    }
    return R::Reject;
  }

  R step_once(State& s, uint8_t c) const {
    switch (s.phase) {
      case Phase::Out: {
        if (!has_tools()) return R::Ok;  // nothing to call: no call can open
        const uint8_t hit = track(s, c, PToolCall | (xml_ ? PFunction : 0));
        if (hit) start_call(s, hit == PFunction);
        return R::Ok;
      }
      case Phase::Lit: {
        std::string_view lit = kLiterals[s.lit];
        if (uint8_t(lit[s.lit_pos]) != c) return R::Reject;
        if (++s.lit_pos == lit.size()) enter(s, s.next);
        return R::Ok;
      }
      case Phase::Name: {
        int done;
        if (!choose(s, c, done)) return R::Reject;
        if (done >= 0) {
          s.tool = int16_t(done);
          if (xml_) {
            literal(s, LNewline, Next::XParamOrEnd);
          } else {
            literal(s, LJsonMid, Next::JKeyOrClose);
          }
        }
        return R::Ok;
      }
      case Phase::JKeyOrClose:
      case Phase::JKeyStart: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over) return R::Reject;
        if (c == '}' && s.phase == Phase::JKeyOrClose && required_done(s)) {
          literal(s, LJsonTail, Next::Finish);
          return R::Ok;
        }
        if (c != '"' || !params_left(s)) return R::Reject;
        start_choice(s, CKeys);
        s.phase = Phase::Key;
        return R::Ok;
      }
      case Phase::Key: {
        int done;
        if (!choose(s, c, done)) return R::Reject;
        if (done >= 0) {
          s.param = int16_t(done);
          s.used |= uint64_t(1) << done;
          if (xml_) {
            literal(s, LNewline, Next::XValue);
          } else {
            s.phase = Phase::JColon;
            s.ws = 0;
          }
        }
        return R::Ok;
      }
      case Phase::JColon: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over || c != ':') return R::Reject;
        start_json_value(s);
        return R::Ok;
      }
      case Phase::JValue:
      case Phase::XValue: {
        if (!param(s).enums.empty()) {
          if (s.clen == 0 && s.phase == Phase::JValue) {  // whitespace before a JSON enum value
            Sp sp = space(s, c);
            if (sp == Sp::Yes) return R::Ok;
            if (sp == Sp::Over) return R::Reject;
          }
          int done;
          if (choose(s, c, done)) {
            // The XML enum text includes its </parameter>; a JSON one (say 1 of [1, 10]) ends only
            // when the next byte cannot extend it.
            if (done >= 0 && s.phase == Phase::XValue) literal(s, LNewline, Next::XParamOrEnd);
            return R::Ok;
          }
          if (s.phase == Phase::JValue && chosen(s)) {
            after_value(s);
            return R::Ended;
          }
          return R::Reject;
        }
        R r = value_byte(s, c);
        if (r == R::Ended) after_value(s);
        return r;
      }
      case Phase::JCommaOrClose: {
        Sp sp = space(s, c);
        if (sp == Sp::Yes) return R::Ok;
        if (sp == Sp::Over) return R::Reject;
        if (c == '}' && required_done(s)) {
          literal(s, LJsonTail, Next::Finish);
          return R::Ok;
        }
        if (c != ',' || !params_left(s)) return R::Reject;
        s.phase = Phase::JKeyStart;
        s.ws = 0;
        return R::Ok;
      }
      case Phase::XParamOrEnd:
        if (c != '<') return R::Reject;
        s.phase = Phase::XParamOrEnd2;
        return R::Ok;
      case Phase::XParamOrEnd2:
        if (c == 'p' && params_left(s)) {
          literal(s, LArameter, Next::Key);
          return R::Ok;
        }
        if (c == '/' && required_done(s)) {
          literal(s, LUnction, Next::XmlTail);
          return R::Ok;
        }
        return R::Reject;
      case Phase::XFree: {
        if (s.utf_need) return utf8(s, c) ? (++s.count, R::Ok) : R::Reject;
        if (s.count >= lim_.max_string_bytes) {
          // At the limit only the way to </parameter> stays open.
          const bool on_way = s.pat_len > 0 && (s.pat_mask & PParameterEnd);
          const uint8_t want = on_way ? uint8_t(kPatterns[3][s.pat_len]) : uint8_t('<');
          if (c != want) return R::Reject;
        }
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return R::Reject;
        if (!utf8(s, c)) return R::Reject;
        const uint8_t hit = track(s, c, forbidden(s) | PParameterEnd);
        if (hit == PParameterEnd) {
          literal(s, LNewline, Next::XParamOrEnd);
          return R::Ok;
        }
        if (hit) return R::Reject;
        ++s.count;
        return R::Ok;
      }
    }
    return R::Reject;
  }

  void after_value(State& s) const {
    if (s.phase == Phase::JValue) {
      s.phase = Phase::JCommaOrClose;
      s.ws = 0;
    } else {
      literal(s, LParamEnd, Next::XParamOrEnd);
    }
  }
};

}  // namespace

// ---- The constraint ----------------------------------------------------------------------------

struct CallConstraint::Impl {
  std::shared_ptr<const TokenTrie> trie;
  Grammar grammar;
  State state;
  int32_t n_vocab;
  std::vector<int32_t> tag_tokens;      // special tokens whose text is one of the grammar's tags
  std::vector<int32_t> trigger_tokens;  // plain tokens that contain a whole opening tag
  std::vector<int32_t> by_first_byte[256];
  mutable std::vector<State> path;      // trie walk: the state after each byte of the current prefix
  mutable std::vector<uint8_t> allowed;

  Impl(std::shared_ptr<const TokenTrie> t, ChatFormat format, const ToolSpecs& specs, const ConstraintLimits& lim)
      : trie(std::move(t)), grammar(format, specs, lim), n_vocab(int32_t(trie->pieces.size())) {
    const bool xml = format != ChatFormat::Qwen3;
    for (int32_t id = 0; id < n_vocab; ++id) {
      const std::string& piece = trie->pieces[size_t(id)];
      if (!trie->plain[size_t(id)]) {
        for (std::string_view tag : {"<tool_call>", "</tool_call>", "<function=", "</function>", "<parameter=", "</parameter>"})
          if (piece == tag) tag_tokens.push_back(id);
        continue;
      }
      by_first_byte[uint8_t(piece[0])].push_back(id);
      if (piece.find("<tool_call>") != std::string::npos || (xml && piece.find("<function=") != std::string::npos))
        trigger_tokens.push_back(id);
    }
    path.resize(size_t(trie->max_depth) + 1);
    allowed.resize(size_t(n_vocab));
  }

  bool is_tag_token(int32_t id) const { return std::find(tag_tokens.begin(), tag_tokens.end(), id) != tag_tokens.end(); }

  // Would the token's whole text be accepted from the current state?
  bool fits(int32_t id) const {
    State s = state;
    for (char c : trie->pieces[size_t(id)])
      if (!grammar.step(s, uint8_t(c))) return false;
    return true;
  }

  // Marks the trie's tokens whose whole text the grammar accepts from the current state.
  void walk(const TokenTrie::Trie& t) const {
    path[0] = state;
    for (size_t i = 0; i < t.nodes.size();) {
      const TokenTrie::Node& node = t.nodes[i];
      State& s = path[node.depth];
      s = path[node.depth - 1];
      if (!grammar.step(s, node.byte)) {
        i = node.end;
        continue;
      }
      for (uint32_t k = node.tok_begin; k < node.tok_end; ++k) allowed[size_t(t.tokens[k])] = 1;
      ++i;
    }
  }

  // Fills `allowed`; returns false when the mask is a no-op (outside a call, nothing to refuse).
  bool compute() const {
    if (state.phase == Phase::Out) {
      // Free text, except tokens that would open a call and go on with text the call cannot have.
      bool any_refused = false;
      std::fill(allowed.begin(), allowed.end(), 1);
      auto check = [&](int32_t id) {
        if (!fits(id)) allowed[size_t(id)] = 0, any_refused = true;
      };
      for (int32_t id : trigger_tokens) check(id);
      for (int32_t id : tag_tokens) check(id);
      if (state.pat_len > 0) {
        for (int b = 0; b < 5; ++b)
          if ((state.pat_mask >> b & 1) && kPatterns[b].size() > state.pat_len)
            for (int32_t id : by_first_byte[uint8_t(kPatterns[b][state.pat_len])]) check(id);
      }
      return any_refused;
    }
    switch (grammar.text_kind(state, trie->max_depth)) {
      case Grammar::Text::JsonString:
        std::copy(trie->json_text.begin(), trie->json_text.end(), allowed.begin());
        walk(trie->json_special);
        break;
      case Grammar::Text::Xml:
        std::copy(trie->xml_text.begin(), trie->xml_text.end(), allowed.begin());
        walk(trie->xml_special);
        break;
      case Grammar::Text::No:
        std::fill(allowed.begin(), allowed.end(), 0);
        walk(trie->all);
        break;
    }
    for (int32_t id : tag_tokens)
      if (fits(id)) allowed[size_t(id)] = 1;
    return true;
  }

  void advance(std::string_view text, const char* what) {
    State s = state;
    for (char c : text)
      if (!grammar.step(s, uint8_t(c)))
        throw std::invalid_argument(std::string("call constraint: ") + what + " " +
                                    json_text(nlohmann::json(std::string(text))) +
                                    " cannot continue the tool call here");
    state = s;
  }
};

CallConstraint::CallConstraint(const Tokenizer& tok, ChatFormat format, const nlohmann::ordered_json& openai_tools)
    : CallConstraint(tok, build_token_trie(tok), format, openai_tools) {}

CallConstraint::CallConstraint(const Tokenizer& tok, std::shared_ptr<const TokenTrie> trie, ChatFormat format,
                               const nlohmann::ordered_json& openai_tools, const ConstraintLimits& limits) {
  if (!trie || trie->pieces.size() != size_t(tok.n_vocab()))
    throw std::invalid_argument("call constraint: the token trie does not belong to this tokenizer");
  impl_ = std::make_unique<Impl>(std::move(trie), format, read_tool_specs(openai_tools), limits);
}

CallConstraint::~CallConstraint() = default;

void CallConstraint::apply(std::span<float> logits) const {
  // A model may have more output rows than its tokenizer has tokens (padding): those ids have no text
  // and cannot be part of a call.
  if (logits.size() < size_t(impl_->n_vocab))
    throw std::invalid_argument("call constraint: " + std::to_string(logits.size()) + " logits for a vocabulary of " +
                                std::to_string(impl_->n_vocab));
  if (!impl_->compute()) return;
  bool any = false;
  for (size_t i = 0; i < size_t(impl_->n_vocab); ++i) {
    if (impl_->allowed[i]) {
      any = true;
    } else {
      logits[i] = -std::numeric_limits<float>::infinity();
    }
  }
  if (in_call()) std::fill(logits.begin() + impl_->n_vocab, logits.end(), -std::numeric_limits<float>::infinity());
  if (!any) throw std::logic_error("call constraint: no token can continue the tool call (the vocabulary cannot spell a needed byte)");
}

void CallConstraint::accept(int32_t token) {
  if (token < 0) throw std::invalid_argument("call constraint: negative token id " + std::to_string(token));
  if (token >= impl_->n_vocab) {  // a padding row: no text, harmless outside a call
    if (in_call()) throw std::invalid_argument("call constraint: token " + std::to_string(token) + " (no text) inside a tool call");
    return;
  }
  if (in_call() && !impl_->trie->plain[size_t(token)] && !impl_->is_tag_token(token))
    throw std::invalid_argument("call constraint: special token " + std::to_string(token) + " inside a tool call");
  impl_->advance(impl_->trie->pieces[size_t(token)], "token");
}

void CallConstraint::accept_text(std::string_view text) { impl_->advance(text, "text"); }

bool CallConstraint::in_call() const { return impl_->state.phase != Phase::Out; }

void CallConstraint::reset() { impl_->state = State{}; }

std::vector<int32_t> CallConstraint::allowed_tokens() const {
  std::vector<int32_t> out;
  if (!impl_->compute()) std::fill(impl_->allowed.begin(), impl_->allowed.end(), 1);
  for (int32_t i = 0; i < impl_->n_vocab; ++i)
    if (impl_->allowed[size_t(i)]) out.push_back(i);
  return out;
}

bool CallConstraint::allows(int32_t token) const {
  if (token < 0) return false;
  if (token >= impl_->n_vocab) return !in_call();
  if (in_call() && !impl_->trie->plain[size_t(token)] && !impl_->is_tag_token(token)) return false;
  return impl_->fits(token);
}

int CallConstraint::calls_completed() const { return int(impl_->state.completed); }

}  // namespace flashfix::agent
