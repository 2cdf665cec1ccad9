#include "engine/chat.h"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <initializer_list>
#include <stdexcept>

#include "engine/json_text.h"

namespace flashfix {
namespace {

using json = nlohmann::ordered_json;

// ---- Python value formatting, as the templates see values through transformers' Jinja ----------

// Python's repr(float): shortest round-trip digits; exponent form when the decimal exponent is
// < -4 or >= 16 (nlohmann switches at 15, so its own output differs for 1e15 <= |x| < 1e16).
std::string py_float(double d) {
  if (!std::isfinite(d)) return "null";  // unreachable from parsed JSON
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, end - buf);  // e.g. "-1.25e+17"
  std::string out, digits;
  if (sci.front() == '-') {
    out = "-";
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exp = std::stoi(std::string(sci.substr(e + 1)));
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp < 0 ? "e-" : "e+";
    if (std::abs(exp) < 10) out += '0';
    return out + std::to_string(std::abs(exp));
  }
  if (exp < 0) return out + "0." + std::string(-exp - 1, '0') + digits;
  if (digits.size() <= size_t(exp) + 1) return out + digits + std::string(exp + 1 - digits.size(), '0') + ".0";
  return out + digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
}

std::string json_scalar(const json& j) {
  return j.is_number_float() ? py_float(j.get<double>())
                             : json_text(j);
}

// json.dumps(x, ensure_ascii=False) with its default ", " / ": " separators and key order kept:
// transformers' `tojson` filter.
void append_py_json(std::string& out, const json& j) {
  if (j.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : j.items()) {
      if (!first) out += ", ";
      first = false;
      out += json_text(json(key));
      out += ": ";
      append_py_json(out, value);
    }
    out += '}';
  } else if (j.is_array()) {
    out += '[';
    for (size_t i = 0; i < j.size(); ++i) {
      if (i) out += ", ";
      append_py_json(out, j[i]);
    }
    out += ']';
  } else {
    out += json_scalar(j);
  }
}

std::string py_json(const json& j) {
  std::string out;
  append_py_json(out, j);
  return out;
}

// Python repr(): what str() prints for values nested in a list or dict (e.g. a JSON-schema type
// list ["integer", "null"] rendered with `| string` becomes ['integer', 'None']-style text).
std::string py_repr(const json& j) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, quote);
    for (unsigned char c : s) {
      if (c == '\\' || c == quote) {
        out += '\\';
        out += char(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c < 0x20 || c == 0x7f) {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        out += hex;
      } else {
        out += char(c);
      }
    }
    return out + quote;
  }
  if (j.is_boolean()) return j.get<bool>() ? "True" : "False";
  if (j.is_null()) return "None";
  if (j.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + py_repr(j[i]);
    return out + "]";
  }
  if (j.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, value] : j.items()) {
      out += (first ? "" : ", ") + py_repr(json(key)) + ": " + py_repr(value);
      first = false;
    }
    return out + "}";
  }
  return json_scalar(j);
}

// Jinja's `| string` filter: Python str().
std::string py_str(const json& j) { return j.is_string() ? j.get<std::string>() : py_repr(j); }

// How the XML templates print a value: containers through tojson, scalars through `| string`.
std::string xml_value(const json& j) { return j.is_structured() ? py_json(j) : py_str(j); }

// ---- String helpers ----------------------------------------------------------------------------

constexpr std::string_view kSpace = " \t\n\r\f\v";

std::string_view trim_ws(std::string_view s) {
  size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}
std::string_view lstrip_nl(std::string_view s) {
  size_t b = s.find_first_not_of('\n');
  return b == std::string_view::npos ? std::string_view{} : s.substr(b);
}
std::string_view rstrip_nl(std::string_view s) {
  size_t e = s.find_last_not_of('\n');
  return e == std::string_view::npos ? std::string_view{} : s.substr(0, e + 1);
}
std::string_view strip_nl(std::string_view s) { return lstrip_nl(rstrip_nl(s)); }

// ---- Conversation structure shared by the templates --------------------------------------------

struct Reasoned {
  std::string_view reasoning, content;
};

// Qwen3 and Step-3.5 take reasoning from reasoning_content, else from a `<think>R</think>C` content:
// R is the text before the first </think> (after the last <think>), C the text after the last one.
Reasoned split_reasoning(const ChatMessage& m) {
  if (!m.reasoning_content.empty()) return {m.reasoning_content, m.content};
  std::string_view c = m.content;
  size_t first = c.find("</think>");
  if (first == std::string_view::npos) return {{}, c};
  std::string_view before = rstrip_nl(c.substr(0, first));
  if (size_t open = before.rfind("<think>"); open != std::string_view::npos) before.remove_prefix(open + 7);
  return {lstrip_nl(before), lstrip_nl(c.substr(c.rfind("</think>") + 8))};
}

// Index of the last real user query; user turns that only wrap a tool response do not count.
// Templates default to the last message when there is none.
std::ptrdiff_t last_query_index(const std::vector<ChatMessage>& msgs) {
  for (size_t i = msgs.size(); i-- > 0;) {
    std::string_view c = msgs[i].content;
    if (msgs[i].role == "user" && !(c.starts_with("<tool_response>") && c.ends_with("</tool_response>")))
      return std::ptrdiff_t(i);
  }
  return std::ptrdiff_t(msgs.size()) - 1;
}

bool opens_tool_group(const std::vector<ChatMessage>& msgs, size_t i) {
  return i == 0 || msgs[i - 1].role != "tool";
}

// Consecutive tool results share one turn. In append-only mode a trailing group stays open until
// something follows it (see chat.h), so adding a result never removes text.
bool closes_tool_group(const std::vector<ChatMessage>& msgs, size_t i, const RenderOptions& opt) {
  if (i + 1 < msgs.size()) return msgs[i + 1].role != "tool";
  return !opt.append_only || opt.add_generation_prompt;
}

void append_turn(std::string& out, std::string_view role, std::string_view content) {
  out.append("<|im_start|>").append(role).append("\n").append(content).append("<|im_end|>\n");
}

// A tool entry's function object: the OpenAI wrapper's "function", or the entry itself.
const json& function_of(const json& tool) {
  auto it = tool.find("function");
  return it != tool.end() ? *it : tool;
}

// `<function=NAME>` ... `</tool_call>` of the XML call format (Qwen3-Coder and Step-3.5).
void append_xml_call(std::string& out, const ToolCall& call) {
  if (!call.arguments.is_object() && !call.arguments.is_null())
    throw std::invalid_argument("chat: arguments of tool call '" + call.name +
                                "' must be a JSON object for the XML tool-call format");
  out += "<function=" + call.name + ">\n";
  if (call.arguments.is_object()) {
    for (const auto& [key, value] : call.arguments.items())
      out += "<parameter=" + key + ">\n" + xml_value(value) + "\n</parameter>\n";
  }
  out += "</function>\n</tool_call>";
}

// ---- Qwen3 (Qwen-Qwen3-0.6B.jinja) -------------------------------------------------------------

constexpr std::string_view kQwen3ToolsHead =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
constexpr std::string_view kQwen3ToolsTail =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";

// The opening system turn of the JSON-tools formats (Qwen3, Step): the system message, then the tool
// list between `head` and `tail`, one JSON object per line; or the plain system turn without tools.
void append_system_with_tools(std::string& out, const std::vector<ChatMessage>& msgs, const json& tools,
                              std::string_view head, std::string_view tail) {
  const bool has_system = !msgs.empty() && msgs[0].role == "system";
  if (!tools.empty()) {
    out += "<|im_start|>system\n";
    if (has_system) out += msgs[0].content + "\n\n";
    out += head;
    for (const auto& tool : tools) {
      out += '\n';
      append_py_json(out, tool);
    }
    out += tail;
  } else if (has_system) {
    append_turn(out, "system", msgs[0].content);
  }
}

std::string render_qwen3(const std::vector<ChatMessage>& msgs, const json& tools, const RenderOptions& opt) {
  std::string out;
  append_system_with_tools(out, msgs, tools, kQwen3ToolsHead, kQwen3ToolsTail);
  const std::ptrdiff_t last_query = last_query_index(msgs);
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    if (m.role == "user" || (m.role == "system" && i > 0)) {
      append_turn(out, m.role, m.content);
    } else if (m.role == "assistant") {
      auto [reasoning, content] = split_reasoning(m);
      const bool after_query = std::ptrdiff_t(i) > last_query;
      out += "<|im_start|>assistant\n";
      if (opt.append_only || (after_query && (i + 1 == msgs.size() || !reasoning.empty()))) {
        out.append("<think>\n").append(strip_nl(reasoning)).append("\n</think>\n\n").append(lstrip_nl(content));
      } else {
        out += content;
      }
      for (size_t k = 0; k < m.tool_calls.size(); ++k) {
        const ToolCall& call = m.tool_calls[k];
        if (k > 0 || !content.empty()) out += '\n';
        out += "<tool_call>\n{\"name\": \"" + call.name + "\", \"arguments\": ";
        out += call.arguments.is_string() ? call.arguments.get<std::string>() : py_json(call.arguments);
        out += "}\n</tool_call>";
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (opens_tool_group(msgs, i)) out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (closes_tool_group(msgs, i, opt)) out += "<|im_end|>\n";
    }
  }
  if (opt.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!opt.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

// ---- Qwen3-Coder (Qwen3-Coder.jinja) -----------------------------------------------------------

constexpr std::string_view kCoderDefaultSystem =
    "You are Qwen, a helpful AI assistant that can interact with a computer to solve tasks.";
constexpr std::string_view kCoderToolsTail =
    "\n</tools>\n\nIf you choose to call a tool ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nvalue_2\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\n"
    "Reminder:\n- Function calls MUST follow the specified format: the tool calling block MUST begin with "
    "an opening <tool_call> tag and end with a closing </tool_call> tag.\n- Required parameters MUST be "
    "specified\n- You may provide optional reasoning for your function call in natural language BEFORE "
    "the function call, but NOT after\n- If there is no function call available, answer the question like "
    "normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>";

// The template's render_extra_keys macro: schema keys it has no dedicated tag for.
void append_extra_keys(std::string& out, const json& dict, std::initializer_list<std::string_view> handled) {
  if (!dict.is_object()) return;
  for (const auto& [key, value] : dict.items()) {
    bool skip = false;
    for (std::string_view h : handled) skip = skip || key == h;
    if (!skip) out += "\n<" + key + ">" + xml_value(value) + "</" + key + ">";
  }
}

void append_coder_tool(std::string& out, const json& fn) {
  out += "\n<function>\n<name>" + py_str(fn.at("name")) + "</name>";
  if (auto d = fn.find("description"); d != fn.end())
    out.append("\n<description>").append(trim_ws(py_str(*d))).append("</description>");
  out += "\n<parameters>";
  auto params = fn.find("parameters");
  if (params != fn.end() && params->is_object()) {
    auto props = params->find("properties");
    if (props != params->end() && props->is_object()) {
      for (const auto& [name, field] : props->items()) {
        out += "\n<parameter>\n<name>" + name + "</name>";
        if (field.is_object()) {
          if (auto t = field.find("type"); t != field.end()) out += "\n<type>" + py_str(*t) + "</type>";
          if (auto d = field.find("description"); d != field.end())
            out.append("\n<description>").append(trim_ws(py_str(*d))).append("</description>");
        }
        append_extra_keys(out, field, {"name", "type", "description"});
        out += "\n</parameter>";
      }
    }
    append_extra_keys(out, *params, {"type", "properties"});
  }
  out += "\n</parameters>";
  append_extra_keys(out, fn, {"type", "name", "description", "parameters"});
  out += "\n</function>";
}

std::string render_coder(const std::vector<ChatMessage>& msgs, const json& tools, const RenderOptions& opt) {
  std::string out;
  const bool has_system = !msgs.empty() && msgs[0].role == "system";
  if (has_system || !tools.empty()) {
    out += "<|im_start|>system\n";
    out += has_system ? std::string_view(msgs[0].content) : kCoderDefaultSystem;
    if (!tools.empty()) {
      out += "\n\n# Tools\n\nYou have access to the following tools:\n\n<tools>";
      for (const auto& tool : tools) append_coder_tool(out, function_of(tool));
      out += kCoderToolsTail;
    }
    out += "<|im_end|>\n";
  }
  // The template loops over the messages after the system one; a tool result opens a user turn only
  // when there is a previous message in that loop (Jinja's loop.previtem), hence `i > begin`.
  const size_t begin = has_system ? 1 : 0;
  for (size_t i = begin; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    if (m.role == "assistant" && !m.tool_calls.empty()) {
      out += "<|im_start|>assistant";
      if (auto c = trim_ws(m.content); !c.empty()) out.append("\n").append(c).append("\n");
      for (const ToolCall& call : m.tool_calls) {
        out += "\n<tool_call>\n";
        append_xml_call(out, call);
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i > begin && opens_tool_group(msgs, i)) out += "<|im_start|>user\n";
      out += "<tool_response>\n" + m.content + "\n</tool_response>\n";
      if (closes_tool_group(msgs, i, opt)) out += "<|im_end|>\n";
    } else {
      append_turn(out, m.role, m.content);  // no reasoning: Qwen3-Coder does not think
    }
  }
  if (opt.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// ---- Step-3.5-Flash (StepFun3.5-Flash.jinja) ---------------------------------------------------

constexpr std::string_view kStepToolsHead =
    "# Tools\n\nYou have access to the following functions in JSONSchema format:\n\n<tools>";
constexpr std::string_view kStepToolsTail =
    "\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple "
    "lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow "
    "the specified format: an inner <function=...>\n...\n</function> block must be nested within "
    "<tool_call>\n...\n</tool_call> XML tags\n- Required parameters MUST be specified\n</IMPORTANT><|im_end|>\n";

std::string render_step(std::vector<ChatMessage> msgs, const json& tools, const RenderOptions& opt) {
  // llama.cpp trims every content and reasoning before rendering for this model (chat.h).
  for (ChatMessage& m : msgs) {
    m.content = trim_ws(m.content);
    m.reasoning_content = trim_ws(m.reasoning_content);
  }
  std::string out = opt.bos_text;
  append_system_with_tools(out, msgs, tools, kStepToolsHead, kStepToolsTail);
  const std::ptrdiff_t last_query = last_query_index(msgs);
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    if (m.role == "user" || (m.role == "system" && i > 0)) {
      append_turn(out, m.role == "system" && m.name == "observation" ? "observation" : m.role, m.content);
    } else if (m.role == "assistant") {
      auto [reasoning, content] = split_reasoning(m);
      out += "<|im_start|>assistant\n";
      if (opt.append_only || std::ptrdiff_t(i) > last_query)
        out.append("<think>\n").append(reasoning).append("\n</think>\n");
      out += content;
      for (const ToolCall& call : m.tool_calls) {
        out += "<tool_call>\n";
        append_xml_call(out, call);
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (opens_tool_group(msgs, i)) out += "<|im_start|>tool_response\n";
      out += "<tool_response>" + m.content + "</tool_response>";
      if (closes_tool_group(msgs, i, opt)) out += "<|im_end|>\n";
    }
  }
  if (opt.add_generation_prompt) out += "<|im_start|>assistant\n<think>\n";
  return out;
}

// ---- Input validation --------------------------------------------------------------------------

void validate(const std::vector<ChatMessage>& msgs, const json& tools) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string& role = msgs[i].role;
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw std::invalid_argument("chat: message " + std::to_string(i) + " has unknown role '" + role + "'");
    if (role == "tool" && msgs[i].content.empty())
      throw std::invalid_argument("chat: tool message " + std::to_string(i) + " has no content");
    for (const ToolCall& call : msgs[i].tool_calls) {
      if (call.name.empty())
        throw std::invalid_argument("chat: message " + std::to_string(i) + " has a tool call without a name");
    }
  }
  if (tools.is_null()) return;
  if (!tools.is_array()) throw std::invalid_argument("chat: tools must be an array of function objects");
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& fn = tools[i].is_object() ? function_of(tools[i]) : tools[i];
    auto name = fn.is_object() ? fn.find("name") : fn.end();
    if (!fn.is_object() || name == fn.end() || !name->is_string())
      throw std::invalid_argument("chat: tools[" + std::to_string(i) +
                                  "] is not a function object with a string \"name\"");
  }
}

}  // namespace

ChatFormat detect_chat_format(std::string_view arch, std::string_view chat_template) {
  // Step's template also uses the XML call syntax, so it is recognised first (by its own role).
  if (arch == "step35" || chat_template.find("<|im_start|>tool_response") != std::string_view::npos)
    return ChatFormat::Step35;
  // Same test as llama.cpp's Qwen3-Coder parser selection; Qwen3-Coder GGUFs share the qwen3moe arch.
  if (chat_template.find("<function=") != std::string_view::npos &&
      chat_template.find("<parameter=") != std::string_view::npos)
    return ChatFormat::Qwen3Coder;
  return ChatFormat::Qwen3;
}

std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages, const json& tools,
                        const RenderOptions& options) {
  validate(messages, tools);
  static const json kNoTools = json::array();
  const json& tool_list = tools.is_null() ? kNoTools : tools;
  switch (format) {
    case ChatFormat::Qwen3: return render_qwen3(messages, tool_list, options);
    case ChatFormat::Qwen3Coder: return render_coder(messages, tool_list, options);
    case ChatFormat::Step35: return render_step(messages, tool_list, options);
  }
  throw std::invalid_argument("chat: unknown chat format");
}

}  // namespace flashfix
