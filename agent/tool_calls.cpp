#include "agent/tool_calls.h"

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <utility>

#include "agent/tool_schema.h"
#include "agent/utf8.h"
#include "engine/json_text.h"

namespace flashfix::agent {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kSpace = " \t\r\n";
constexpr std::string_view kToolCall = "<tool_call>", kToolCallEnd = "</tool_call>";
constexpr std::string_view kThink = "<think>", kThinkEnd = "</think>";
constexpr std::string_view kFunction = "<function=", kFunctionEnd = "</function>";
constexpr std::string_view kParameter = "<parameter=", kParameterEnd = "</parameter>";

bool is_space(char c) { return kSpace.find(c) != std::string_view::npos; }

size_t skip_space(std::string_view s, size_t pos) {
  while (pos < s.size() && is_space(s[pos])) ++pos;
  return pos;
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

// A short quote of model text for error messages.
std::string quote(std::string_view text) {
  constexpr size_t kMax = 80;
  std::string s(text.substr(0, kMax));
  if (text.size() > kMax) s += "...";
  return json_text(json(s));
}

// Is `rest` (the unread end of the input) a proper prefix of `tag`? Then more input may complete it.
bool partial_tag(std::string_view rest, std::string_view tag) { return rest.size() < tag.size() && tag.starts_with(rest); }

// ---- Call bodies -------------------------------------------------------------------------------

// The XML body `<function=N> (<parameter=P>V</parameter>)* </function>`, read left to right. While
// streaming (complete=false) it reads the elements that have fully arrived and stops, without an
// error, at the first that has not (or that looks wrong: the final read decides); the next read
// resumes there, so a long call costs no more than its length. The final read (complete=true) goes on
// from the same place and reports what is wrong.
class XmlReader {
 public:
  bool has_name = false;
  std::string name;
  std::vector<std::pair<std::string, json>> params;
  std::string error;

  void read(std::string_view body, bool complete, const ToolSpecs& specs) {
    auto fail = [&](std::string message) {
      if (complete) error = std::move(message);
    };
    auto rest = [&] { return body.substr(pos_); };
    if (!has_name) {
      pos_ = skip_space(body, pos_);
      if (!rest().starts_with(kFunction)) {
        if (complete || !partial_tag(rest(), kFunction))
          fail("expected <function=NAME> at the start of the tool call, got " + quote(rest()));
        return;
      }
      const size_t name_end = body.find('>', pos_ + kFunction.size());
      if (name_end == std::string_view::npos) return fail("the <function= tag is not closed with '>': " + quote(rest()));
      std::string_view n = trim(body.substr(pos_ + kFunction.size(), name_end - pos_ - kFunction.size()));
      if (n.empty() || n.find_first_of("<\n") != std::string_view::npos)
        return fail("invalid function name in " + quote(body.substr(pos_, name_end + 1 - pos_)));
      if (!valid_utf8(n)) return fail("the function name is not valid UTF-8");
      name = n;
      has_name = true;
      tool_ = specs.find(name);
      pos_ = name_end + 1;
    }
    while (!closed_) {
      pos_ = skip_space(body, pos_);
      if (pos_ == body.size()) return;  // a missing </function> at the end is tolerated
      if (rest().starts_with(kFunctionEnd)) {
        pos_ += kFunctionEnd.size();
        closed_ = true;
        break;
      }
      if (!rest().starts_with(kParameter)) {
        if (complete || !(partial_tag(rest(), kParameter) || partial_tag(rest(), kFunctionEnd)))
          fail("expected <parameter=NAME> or </function>, got " + quote(rest()));
        return;
      }
      const size_t pname_end = body.find('>', pos_ + kParameter.size());
      if (pname_end == std::string_view::npos) return fail("the <parameter= tag is not closed with '>': " + quote(rest()));
      std::string_view pname = trim(body.substr(pos_ + kParameter.size(), pname_end - pos_ - kParameter.size()));
      if (pname.empty() || pname.find_first_of("<\n") != std::string_view::npos)
        return fail("invalid parameter name in " + quote(body.substr(pos_, pname_end + 1 - pos_)));
      if (!valid_utf8(pname)) return fail("a parameter name is not valid UTF-8");
      const std::string key(pname);
      // The value ends at the first </parameter>; what was searched already is not searched again.
      const size_t value_end = body.find(kParameterEnd, std::max(pname_end + 1, value_from_));
      if (value_end == std::string_view::npos) {
        value_from_ = std::max(pname_end + 1, body.size() - std::min(body.size(), kParameterEnd.size() - 1));
        return fail("parameter '" + key + "' is not closed with </parameter>");
      }
      // The templates put one newline on each side of the value; only those are not part of it.
      std::string_view raw = body.substr(pname_end + 1, value_end - pname_end - 1);
      if (raw.starts_with('\n')) raw.remove_prefix(1);
      if (raw.ends_with('\n')) raw.remove_suffix(1);
      if (!valid_utf8(raw)) return fail("parameter '" + key + "' is not valid UTF-8");
      for (const auto& [seen, value] : params)
        if (seen == key) return fail("parameter '" + key + "' is given twice");
      Converted v = convert_xml_value(tool_ ? tool_->find(key) : nullptr, std::string(raw));
      if (!v.error.empty()) return fail(v.error);
      params.emplace_back(key, std::move(v.value));
      pos_ = value_end + kParameterEnd.size();
      value_from_ = 0;
    }
    // Streaming stops here: in a wrapped call what follows may be the start of </tool_call>.
    if (complete && skip_space(body, pos_) != body.size()) fail("unexpected text after </function>: " + quote(body.substr(skip_space(body, pos_))));
  }

 private:
  size_t pos_ = 0;         // body[0, pos_) is read
  size_t value_from_ = 0;  // where the search for the pending value's </parameter> resumes
  bool closed_ = false;    // </function> read
  const ToolSpec* tool_ = nullptr;
};

// A JSON body's name and the raw text of its "arguments" object as they arrive: the name once
// `{"name": "N"` has come through (a plain one, without escapes), the arguments once `, "arguments": {`
// follows, then byte by byte (strings and escapes followed) to the brace that closes the object.
// Bodies in another shape (arguments first, as a string) are only read when the call closes.
class JsonArgs {
 public:
  std::optional<std::string> name;

  bool found() const { return start_ != npos; }
  bool closed() const { return end_ != npos; }
  std::string_view raw(std::string_view body) const { return body.substr(start_, end_ - start_); }

  // body only grows between calls. Returns the argument text not returned before: whole UTF-8
  // characters only, unless final.
  std::string_view read(std::string_view body, bool final) {
    if (start_ == npos && !head(body)) return {};
    for (; end_ == npos && scanned_ < body.size(); ++scanned_) {
      const char c = body[scanned_];
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if ((c == '}' || c == ']') && --depth_ == 0) {
        end_ = scanned_ + 1;
      }
    }
    size_t limit = closed() ? end_ : scanned_;
    if (!final && !closed()) limit -= incomplete_utf8_tail(body.substr(sent_, limit - sent_));
    std::string_view out = body.substr(sent_, limit - sent_);
    sent_ = limit;
    return out;
  }

 private:
  static constexpr size_t npos = std::string_view::npos;
  size_t start_ = npos, end_ = npos, scanned_ = 0, sent_ = 0;
  int depth_ = 0;
  bool in_string_ = false, escape_ = false;

  bool head(std::string_view body) {
    size_t pos = 0;
    auto expect = [&](std::string_view lit) {
      pos = skip_space(body, pos);
      if (!body.substr(pos).starts_with(lit)) return false;
      pos += lit.size();
      return true;
    };
    if (!expect("{") || !expect("\"name\"") || !expect(":") || !expect("\"")) return false;
    const size_t end = body.find_first_of("\"\\", pos);
    if (end == std::string_view::npos || body[end] != '"' || end == pos) return false;
    name = std::string(body.substr(pos, end - pos));
    pos = end + 1;
    if (!expect(",") || !expect("\"arguments\"") || !expect(":")) return false;
    pos = skip_space(body, pos);
    if (pos == body.size() || body[pos] != '{') return false;
    start_ = scanned_ = sent_ = pos;
    return true;
  }
};

// The Qwen3 JSON body {"name": N, "arguments": {...}}. Arguments given as a JSON string holding an
// object (an OpenAI habit some models copy) are accepted; a missing "arguments" means none.
void parse_json_body(std::string_view body, ParsedCall& out) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    out.error = std::string("the tool call is not valid JSON (") + e.what() + "): " + quote(trim(body));
    return;
  }
  if (!j.is_object()) {
    out.error = "the tool call must be a JSON object {\"name\": ..., \"arguments\": {...}}, got " + quote(trim(body));
    return;
  }
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    out.error = "the tool call has no \"name\" string: " + quote(trim(body));
    return;
  }
  out.call.name = name->get<std::string>();
  auto args = j.find("arguments");
  if (args == j.end() || args->is_null()) return;
  if (args->is_string()) {
    json parsed = json::parse(args->get_ref<const std::string&>(), nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      out.error = "\"arguments\" of '" + out.call.name + "' must be a JSON object, got the string " + quote(args->get<std::string>());
      return;
    }
    out.call.arguments = std::move(parsed);
  } else if (args->is_object()) {
    out.call.arguments = std::move(*args);
  } else {
    out.error = "\"arguments\" of '" + out.call.name + "' must be a JSON object, got " + quote(args->dump());
  }
}

std::string args_fragment(bool first, const std::string& key, const json& value) {
  return (first ? "{" : ",") + json(key).dump() + ":" + json_text(value);
}

// Trims a stream of text on the fly: leading whitespace is dropped, whitespace that may still turn
// out to be trailing is held until something follows it.
class TrimmedText {
 public:
  explicit TrimmedText(std::string& target) : target_(&target) {}
  std::string push(std::string_view text) {
    if (!started_) {
      size_t b = text.find_first_not_of(kSpace);
      if (b == std::string_view::npos) return {};
      text.remove_prefix(b);
      started_ = true;
    }
    size_t e = text.find_last_not_of(kSpace);
    if (e == std::string_view::npos) {
      held_ += text;
      return {};
    }
    std::string out = std::move(held_);
    out += text.substr(0, e + 1);
    held_ = text.substr(e + 1);
    *target_ += out;
    return out;
  }
  void reset() { started_ = false, held_.clear(); }

 private:
  std::string* target_;
  std::string held_;
  bool started_ = false;
};

}  // namespace

// ---- The scanner ---------------------------------------------------------------------------------

struct StreamParser::Impl {
  enum class Mode { Content, Reasoning, Call, BareCall };

  ChatFormat format;
  ToolSpecs specs;
  ParsedMessage msg;
  TrimmedText content{msg.content}, reasoning{msg.reasoning};
  std::string buf;           // all text fed so far
  size_t pos = 0;            // buf[0, pos) is decided
  Mode mode = Mode::Content;
  bool finished = false;
  bool seen_reasoning = false;  // a <think> or </think> tag, or starts_in_reasoning

  // The open call.
  size_t call_start = 0, body_start = 0, search_from = 0;
  bool begun = false;        // CallBegin sent
  XmlReader xml;             // an XML body, read as it arrives
  size_t params_sent = 0;    // its parameters sent as CallArguments
  JsonArgs json_args;        // a JSON body's name and arguments, read as they arrive

  std::vector<StreamEvent> events;

  Impl(ChatFormat f, bool in_reasoning, ToolSpecs s) : format(f), specs(std::move(s)) {
    if (in_reasoning) mode = Mode::Reasoning, seen_reasoning = true;
  }
  Impl(const Impl&) = delete;  // the emitters point into msg

  bool xml_format() const { return format != ChatFormat::Qwen3; }
  int call_index() const { return int(msg.calls.size()); }
  std::string call_id() const { return "call_" + std::to_string(msg.calls.size()); }

  void emit_text(StreamEvent::Kind kind, std::string_view text) {
    std::string out = (kind == StreamEvent::Content ? content : reasoning).push(text);
    if (out.empty()) return;
    if (!events.empty() && events.back().kind == kind) {
      events.back().text += out;
    } else {
      events.push_back({kind, std::move(out)});
    }
  }

  void begin_call(size_t tag_start, size_t body, Mode m) {
    mode = m;
    call_start = tag_start;
    body_start = search_from = body;
    begun = false;
    xml = XmlReader{};
    params_sent = 0;
    json_args = JsonArgs{};
  }

  void send_begin(const std::string& name) {
    if (begun) return;
    begun = true;
    StreamEvent e{StreamEvent::CallBegin, {}};
    e.call_index = call_index();
    e.call_id = call_id();
    e.call_name = name;
    events.push_back(std::move(e));
  }

  void send_args(std::string text) {
    StreamEvent e{StreamEvent::CallArguments, std::move(text)};
    e.call_index = call_index();
    events.push_back(std::move(e));
  }

  // Streaming progress inside an unfinished call: announce it once its name is known and send each
  // XML parameter once its </parameter> has arrived.
  void progress(std::string_view body) {
    std::string_view t = trim(body);
    if (t.starts_with('{')) {
      std::string_view fragment = json_args.read(body, false);
      if (json_args.name) send_begin(*json_args.name);
      if (!fragment.empty()) send_args(std::string(fragment));
      return;
    }
    xml.read(body, false, specs);
    send_xml_progress();
  }

  void send_xml_progress() {
    if (!xml.has_name) return;
    send_begin(xml.name);
    for (; params_sent < xml.params.size(); ++params_sent)
      send_args(args_fragment(params_sent == 0, xml.params[params_sent].first, xml.params[params_sent].second));
  }

  void end_call(size_t body_end, size_t call_end) {
    std::string_view body = std::string_view(buf).substr(body_start, body_end - body_start);
    ParsedCall pc;
    pc.call.id = call_id();
    pc.raw = buf.substr(call_start, call_end - call_start);
    std::string_view t = trim(body);
    if (t.empty()) {
      pc.error = "the tool call is empty";
    } else if (t.starts_with('{')) {
      end_json_call(body, pc);
      return;
    } else {
      xml.read(body, true, specs);
      pc.call.name = xml.name;
      pc.error = xml.error;
      for (const auto& [key, value] : xml.params) pc.call.arguments[key] = value;
      if (pc.error.empty()) {
        send_xml_progress();
        send_args(params_sent == 0 ? "{}" : "}");
      }
    }
    send_end(std::move(pc));
  }

  // The arguments went out as the model wrote them (raw JSON text); what went out must be what the
  // parse found, which only a body that repeats "name" or "arguments" can break.
  void end_json_call(std::string_view body, ParsedCall& pc) {
    std::string_view rest = json_args.read(body, true);
    parse_json_body(body, pc);
    if (json_args.name && pc.call.name != *json_args.name) {
      if (pc.error.empty()) pc.error = "the tool call gives \"name\" more than once";
      pc.call.name = *json_args.name;  // the one announced
    }
    if (pc.error.empty() && json_args.found() &&
        (!json_args.closed() || json::parse(json_args.raw(body), nullptr, false) != pc.call.arguments))
      pc.error = "the tool call gives \"arguments\" more than once";
    send_begin(pc.call.name);
    if (pc.error.empty()) {
      if (json_args.found()) {
        if (!rest.empty()) send_args(std::string(rest));
      } else {
        send_args(json_text(pc.call.arguments));
      }
    }
    send_end(std::move(pc));
  }

  void send_end(ParsedCall pc) {
    send_begin(pc.call.name);  // a call that never showed its name is announced now
    StreamEvent e{StreamEvent::CallEnd, {}};
    e.call_index = call_index();
    e.error = pc.error;
    events.push_back(std::move(e));
    msg.calls.push_back(std::move(pc));
  }

  // Returns false when the input so far cannot decide more.
  bool scan_call(bool final) {
    // Wrapped: the body ends at </tool_call> or at the next <tool_call>. Bare: at </function>, kept.
    size_t end = std::string::npos, tag_len = 0;
    bool reopen = false;
    if (mode == Mode::Call) {
      size_t close = buf.find(kToolCallEnd, search_from), open = buf.find(kToolCall, search_from);
      if (open < close) {
        end = open, tag_len = kToolCall.size(), reopen = true;
      } else if (close != std::string::npos) {
        end = close, tag_len = kToolCallEnd.size();
      }
    } else if (size_t close = buf.find(kFunctionEnd, search_from); close != std::string::npos) {
      end = close + kFunctionEnd.size(), tag_len = 0;
    }
    if (end == std::string::npos) {
      if (!final) {
        // The end of the text may be the start of the closing tag: not part of the body for sure.
        std::string_view body = std::string_view(buf).substr(body_start);
        size_t held = 0;
        const std::array<std::string_view, 2> closers = mode == Mode::Call ? std::array{kToolCallEnd, kToolCall}
                                                                           : std::array{kFunctionEnd, kFunctionEnd};
        for (std::string_view tag : closers)
          for (size_t k = std::min(tag.size() - 1, body.size()); k > held; --k)
            if (body.ends_with(tag.substr(0, k))) held = k;
        progress(body.substr(0, body.size() - held));
        search_from = std::max(body_start, buf.size() - std::min(buf.size(), kToolCallEnd.size()));
        return false;
      }
      end_call(buf.size(), buf.size());
      pos = buf.size();
      mode = Mode::Content;
      return true;
    }
    end_call(end, end + tag_len);
    pos = end + tag_len;
    if (reopen) {
      begin_call(end, pos, Mode::Call);
    } else {
      mode = Mode::Content;
    }
    return true;
  }

  // A lone </think> in content: when nothing so far was reasoning or a call, the <think> was in the
  // prompt and everything before this tag was reasoning. It was streamed as content already; a
  // Reasoning event now carries it again (a caller that knows the prompt opened <think> avoids this
  // with starts_in_reasoning). Otherwise the tag is dropped.
  void lone_reasoning_end() {
    if (seen_reasoning || !msg.calls.empty()) return;
    msg.reasoning = std::move(msg.content);
    msg.content.clear();
    content.reset();
    if (!msg.reasoning.empty()) events.push_back({StreamEvent::Reasoning, msg.reasoning});
  }

  bool scan_text(bool final) {
    const auto kind = mode == Mode::Content ? StreamEvent::Content : StreamEvent::Reasoning;
    size_t lt = buf.find('<', pos);
    if (lt == std::string::npos) {
      size_t end = final ? buf.size() : buf.size() - incomplete_utf8_tail(std::string_view(buf).substr(pos));
      emit_text(kind, std::string_view(buf).substr(pos, end - pos));
      pos = end;
      return false;
    }
    emit_text(kind, std::string_view(buf).substr(pos, lt - pos));
    pos = lt;
    std::string_view rest = std::string_view(buf).substr(lt);
    auto at = [&](std::string_view tag) { return rest.starts_with(tag); };
    bool waiting = false;
    auto could_be = [&](std::string_view tag) { waiting = waiting || partial_tag(rest, tag); };
    if (at(kToolCall)) {
      begin_call(lt, lt + kToolCall.size(), Mode::Call);
      pos = lt + kToolCall.size();
      return true;
    }
    could_be(kToolCall);
    if (at(kThinkEnd)) {
      if (mode == Mode::Content) lone_reasoning_end();
      seen_reasoning = true;
      mode = Mode::Content;
      pos = lt + kThinkEnd.size();
      return true;
    }
    could_be(kThinkEnd);
    if (mode == Mode::Content) {
      if (at(kThink)) {
        mode = Mode::Reasoning;
        seen_reasoning = true;
        pos = lt + kThink.size();
        return true;
      }
      if (at(kToolCallEnd)) {  // a stray closer (e.g. after a bare <function=> call): not content
        pos = lt + kToolCallEnd.size();
        return true;
      }
      if (xml_format() && at(kFunction)) {
        begin_call(lt, lt, Mode::BareCall);
        return true;
      }
      could_be(kThink);
      could_be(kToolCallEnd);
      if (xml_format()) could_be(kFunction);
    }
    if (waiting && !final) return false;
    emit_text(kind, "<");
    pos = lt + 1;
    return true;
  }

  void scan(bool final) {
    while (pos < buf.size() || (final && (mode == Mode::Call || mode == Mode::BareCall))) {
      bool more = (mode == Mode::Call || mode == Mode::BareCall) ? scan_call(final) : scan_text(final);
      if (!more) break;
    }
  }
};

StreamParser::StreamParser(ChatFormat format, bool starts_in_reasoning)
    : impl_(std::make_unique<Impl>(format, starts_in_reasoning, ToolSpecs{})) {}
StreamParser::StreamParser(ChatFormat format, bool starts_in_reasoning, const json& tools)
    : impl_(std::make_unique<Impl>(format, starts_in_reasoning, read_tool_specs(tools))) {}
StreamParser::~StreamParser() = default;
StreamParser::StreamParser(StreamParser&&) noexcept = default;
StreamParser& StreamParser::operator=(StreamParser&&) noexcept = default;

std::vector<StreamEvent> StreamParser::feed(std::string_view piece) {
  if (impl_->finished) throw std::logic_error("StreamParser::feed after finish");
  impl_->buf += piece;
  impl_->scan(false);
  return std::exchange(impl_->events, {});
}

std::vector<StreamEvent> StreamParser::finish() {
  if (!impl_->finished) {
    impl_->finished = true;
    impl_->scan(true);
  }
  return std::exchange(impl_->events, {});
}

const ParsedMessage& StreamParser::message() const { return impl_->msg; }

ParsedMessage parse_assistant_text(ChatFormat format, std::string_view text) {
  StreamParser p(format);
  p.feed(text);
  p.finish();
  return p.message();
}

ParsedMessage parse_assistant_text(ChatFormat format, std::string_view text, const json& tools) {
  StreamParser p(format, false, tools);
  p.feed(text);
  p.finish();
  return p.message();
}

// ---- OpenAI messages -----------------------------------------------------------------------------

ParsedMessage parse_openai_message(const nlohmann::json& message) {
  ParsedMessage out;
  if (!message.is_object()) {
    ParsedCall bad;
    bad.error = "the response message is not a JSON object";
    out.calls.push_back(std::move(bad));
    return out;
  }
  std::string content;
  if (auto c = message.find("content"); c != message.end()) {
    if (c->is_string()) {
      content = c->get<std::string>();
    } else if (c->is_array()) {  // content parts: the text ones, in order
      for (const auto& part : *c)
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
          content += part["text"].get<std::string>();
    }
  }
  for (const char* key : {"reasoning_content", "reasoning"}) {
    auto r = message.find(key);
    if (r != message.end() && r->is_string() && !r->get_ref<const std::string&>().empty()) {
      out.reasoning = trim(r->get_ref<const std::string&>());
      break;
    }
  }
  if (auto calls = message.find("tool_calls"); calls != message.end() && calls->is_array()) {
    for (const auto& tc : *calls) {
      ParsedCall pc;
      pc.call.id = "call_" + std::to_string(out.calls.size());
      pc.raw = json_text(tc);
      const nlohmann::json* fn = tc.is_object() && tc.contains("function") ? &tc["function"] : nullptr;
      if (tc.is_object() && tc.contains("id") && tc["id"].is_string() && !tc["id"].get_ref<const std::string&>().empty())
        pc.call.id = tc["id"].get<std::string>();
      if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string() ||
          (*fn)["name"].get_ref<const std::string&>().empty()) {
        pc.error = "the tool call has no function name: " + quote(pc.raw);
        out.calls.push_back(std::move(pc));
        continue;
      }
      pc.call.name = (*fn)["name"].get<std::string>();
      auto args = fn->find("arguments");
      if (args == fn->end() || args->is_null()) {
        // no arguments: an empty object
      } else if (args->is_string()) {
        const std::string& text = args->get_ref<const std::string&>();
        if (!trim(text).empty()) {
          try {
            json parsed = json::parse(text);
            if (parsed.is_object()) {
              pc.call.arguments = std::move(parsed);
            } else {
              pc.error = "the arguments of '" + pc.call.name + "' must be a JSON object, got " + quote(text);
            }
          } catch (const json::exception& e) {
            pc.error = "the arguments of '" + pc.call.name + "' are not valid JSON (" + e.what() + "): " + quote(text);
          }
        }
      } else if (args->is_object()) {
        pc.call.arguments = json::parse(args->dump());
      } else {
        pc.error = "the arguments of '" + pc.call.name + "' must be a JSON object, got " + quote(args->dump());
      }
      out.calls.push_back(std::move(pc));
    }
  }
  // Raw model text passed through: its own <think> and <tool_call> blocks.
  ParsedMessage inner = parse_assistant_text(ChatFormat::Qwen3Coder, content);
  if (!inner.reasoning.empty()) out.reasoning += (out.reasoning.empty() ? "" : "\n") + inner.reasoning;
  out.content = std::move(inner.content);
  for (ParsedCall& pc : inner.calls) {
    pc.call.id = "call_" + std::to_string(out.calls.size());
    out.calls.push_back(std::move(pc));
  }
  return out;
}

}  // namespace flashfix::agent
