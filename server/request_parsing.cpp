#include "server/request_parsing.h"

#include <random>

#include "server/api_error.h"

namespace flashfix::server {
namespace {

using ojson = nlohmann::ordered_json;

const char* type_name(const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::null: return "null";
    case ojson::value_t::boolean: return "boolean";
    case ojson::value_t::string: return "string";
    case ojson::value_t::array: return "array";
    case ojson::value_t::object: return "object";
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned: return "integer";
    case ojson::value_t::number_float: return "number";
    default: return "unknown";
  }
}

ApiError wrong_type(const std::string& param, const char* expected, const ojson& got) {
  return invalid_request("'" + param + "' must be " + expected + ", got " + type_name(got), param);
}

// Optional fields: absent and null both mean "not given", as in OpenAI's API.
const ojson* field(const ojson& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const ojson& v, const std::string& param) {
  if (!v.is_string()) throw wrong_type(param, "a string", v);
  return v.get<std::string>();
}

double get_number(const ojson& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) throw wrong_type(param, "a number", v);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw invalid_request("'" + param + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), param);
  return x;
}

int64_t get_integer(const ojson& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) throw wrong_type(param, "an integer", v);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
    throw invalid_request("'" + param + "' is out of range", param);
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw invalid_request("'" + param + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), param);
  return x;
}

bool get_bool(const ojson& v, const std::string& param) {
  if (!v.is_boolean()) throw wrong_type(param, "a boolean", v);
  return v.get<bool>();
}

// Message content: a string, or an array of {"type":"text","text":..} parts (concatenated).
std::string content_text(const ojson& v, const std::string& param) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) throw wrong_type(param, "a string or an array of content parts", v);
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const ojson& part = v[i];
    if (!part.is_object()) throw wrong_type(p, "an object", part);
    const ojson* type = field(part, "type");
    if (!type) throw invalid_request("'" + p + ".type' is required", p + ".type");
    const std::string t = get_string(*type, p + ".type");
    if (t != "text") throw invalid_request("content part type '" + t + "' is not supported (text only)", p + ".type");
    const ojson* txt = field(part, "text");
    if (!txt) throw invalid_request("'" + p + ".text' is required", p + ".text");
    text += get_string(*txt, p + ".text");
  }
  return text;
}

ToolCall parse_tool_call(const ojson& v, const std::string& param) {
  if (!v.is_object()) throw wrong_type(param, "an object", v);
  ToolCall call;
  if (const ojson* id = field(v, "id")) call.id = get_string(*id, param + ".id");
  if (const ojson* type = field(v, "type"); type && get_string(*type, param + ".type") != "function")
    throw invalid_request("'" + param + ".type' must be \"function\"", param + ".type");
  const ojson* fn = field(v, "function");
  if (!fn || !fn->is_object()) throw invalid_request("'" + param + ".function' must be an object", param + ".function");
  const ojson* name = field(*fn, "name");
  if (!name) throw invalid_request("'" + param + ".function.name' is required", param + ".function.name");
  call.name = get_string(*name, param + ".function.name");
  // Arguments arrive as a JSON string (OpenAI); an object is accepted too, as several clients send one.
  if (const ojson* args = field(*fn, "arguments")) {
    if (args->is_string()) {
      ojson parsed = ojson::parse(args->get<std::string>(), nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded() || !parsed.is_object())
        throw invalid_request("'" + param + ".function.arguments' must be a JSON object encoded as a string", param + ".function.arguments");
      call.arguments = std::move(parsed);
    } else if (args->is_object()) {
      call.arguments = *args;
    } else {
      throw wrong_type(param + ".function.arguments", "a string", *args);
    }
  }
  return call;
}

ChatMessage parse_message(const ojson& v, const std::string& param) {
  if (!v.is_object()) throw wrong_type(param, "an object", v);
  ChatMessage m;
  const ojson* role = field(v, "role");
  if (!role) throw invalid_request("'" + param + ".role' is required", param + ".role");
  m.role = get_string(*role, param + ".role");
  if (m.role == "developer") m.role = "system";  // OpenAI's newer name for the system role
  if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
    throw invalid_request("'" + param + ".role' must be one of system, developer, user, assistant, tool; got '" + m.role + "'",
                          param + ".role");
  const ojson* content = field(v, "content");
  if (content) m.content = content_text(*content, param + ".content");
  if (const ojson* name = field(v, "name")) m.name = get_string(*name, param + ".name");
  if (m.role == "assistant") {
    if (const ojson* r = field(v, "reasoning_content")) m.reasoning_content = get_string(*r, param + ".reasoning_content");
    if (const ojson* calls = field(v, "tool_calls")) {
      if (!calls->is_array()) throw wrong_type(param + ".tool_calls", "an array", *calls);
      for (size_t i = 0; i < calls->size(); ++i)
        m.tool_calls.push_back(parse_tool_call((*calls)[i], param + ".tool_calls[" + std::to_string(i) + "]"));
    }
    if (!content && m.tool_calls.empty())
      throw invalid_request("'" + param + "' (assistant) needs content or tool_calls", param + ".content");
  } else if (!content) {
    throw invalid_request("'" + param + ".content' is required for role " + m.role, param + ".content");
  }
  if (m.role == "tool") {
    const ojson* id = field(v, "tool_call_id");
    if (!id) throw invalid_request("'" + param + ".tool_call_id' is required for role tool", param + ".tool_call_id");
    m.tool_call_id = get_string(*id, param + ".tool_call_id");
  }
  return m;
}

// Tools: [{"type":"function","function":{"name":..,"description":..,"parameters":{JSON Schema object}}}].
ojson parse_tools(const ojson& v) {
  if (!v.is_array()) throw wrong_type("tools", "an array", v);
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = "tools[" + std::to_string(i) + "]";
    const ojson& t = v[i];
    if (!t.is_object()) throw wrong_type(p, "an object", t);
    const ojson* type = field(t, "type");
    if (!type || get_string(*type, p + ".type") != "function")
      throw invalid_request("'" + p + ".type' must be \"function\"", p + ".type");
    const ojson* fn = field(t, "function");
    if (!fn || !fn->is_object()) throw invalid_request("'" + p + ".function' must be an object", p + ".function");
    const ojson* name = field(*fn, "name");
    if (!name) throw invalid_request("'" + p + ".function.name' is required", p + ".function.name");
    if (get_string(*name, p + ".function.name").empty())
      throw invalid_request("'" + p + ".function.name' must not be empty", p + ".function.name");
    if (const ojson* d = field(*fn, "description")) get_string(*d, p + ".function.description");
    if (const ojson* params = field(*fn, "parameters"); params && !params->is_object())
      throw wrong_type(p + ".function.parameters", "a JSON Schema object", *params);
  }
  return v;
}

void parse_tool_choice(const ojson& v, ChatRequest& r) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "auto") r.tool_choice = ToolChoice::Auto;
    else if (s == "none") r.tool_choice = ToolChoice::None;
    else if (s == "required") r.tool_choice = ToolChoice::Required;
    else throw invalid_request("'tool_choice' must be \"auto\", \"none\", \"required\" or a function object", "tool_choice");
    return;
  }
  if (!v.is_object()) throw wrong_type("tool_choice", "a string or an object", v);
  const ojson* fn = field(v, "function");
  const ojson* name = fn && fn->is_object() ? field(*fn, "name") : nullptr;
  if (!name) throw invalid_request("'tool_choice.function.name' is required", "tool_choice.function.name");
  r.tool_choice = ToolChoice::Named;
  r.tool_choice_name = get_string(*name, "tool_choice.function.name");
}

std::vector<std::string> parse_stop(const ojson& v) {
  if (v.is_string()) return v.get<std::string>().empty() ? std::vector<std::string>{} : std::vector<std::string>{v.get<std::string>()};
  if (!v.is_array()) throw wrong_type("stop", "a string or an array of strings", v);
  if (v.size() > 4) throw invalid_request("'stop' takes at most 4 sequences", "stop");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string s = get_string(v[i], "stop[" + std::to_string(i) + "]");
    if (!s.empty()) out.push_back(std::move(s));
  }
  return out;
}

// {"token id": bias}; the ids are checked against the vocabulary by the handler, which knows it.
std::vector<std::pair<int32_t, float>> parse_logit_bias(const ojson& v) {
  if (!v.is_object()) throw wrong_type("logit_bias", "an object of token ids to numbers", v);
  if (v.size() > 1024) throw invalid_request("'logit_bias' takes at most 1024 tokens", "logit_bias");
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, bias] : v.items()) {
    const std::string p = "logit_bias." + key;
    size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || id < 0 || id > INT32_MAX) throw invalid_request("'logit_bias' keys must be token ids, got '" + key + "'", "logit_bias");
    out.emplace_back(int32_t(id), float(get_number(bias, p, -100, 100)));
  }
  return out;
}

// Sampling: OpenAI's defaults (temperature 1, top_p 1) with the engine's top-k/min-p unless the
// client overrides them (top_k, min_p, repeat_penalty are llama.cpp-style extensions).
GenerationParams parse_generation(const ojson& b) {
  GenerationParams g;
  SamplerParams& s = g.sampling;
  s.temperature = 1.f;
  s.top_p = 1.f;
  if (const ojson* v = field(b, "temperature")) s.temperature = float(get_number(*v, "temperature", 0, 2));
  if (const ojson* v = field(b, "top_p")) {
    s.top_p = float(get_number(*v, "top_p", 0, 1));
    if (s.top_p <= 0) throw invalid_request("'top_p' must be greater than 0", "top_p");
  }
  if (const ojson* v = field(b, "top_k")) s.top_k = int(get_integer(*v, "top_k", 0, 1 << 20));
  if (const ojson* v = field(b, "min_p")) s.min_p = float(get_number(*v, "min_p", 0, 1));
  if (const ojson* v = field(b, "repeat_penalty")) {
    s.repeat_penalty = float(get_number(*v, "repeat_penalty", 0, 10));
    if (s.repeat_penalty <= 0) throw invalid_request("'repeat_penalty' must be greater than 0", "repeat_penalty");
  }
  if (const ojson* v = field(b, "seed")) {
    if (!v->is_number_integer()) throw wrong_type("seed", "an integer", *v);
    s.seed = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
  } else {
    s.seed = std::random_device{}();
  }
  // max_completion_tokens is the newer name; when both are given the newer one wins, as at OpenAI.
  if (const ojson* v = field(b, "max_tokens")) g.max_tokens = get_integer(*v, "max_tokens", 1, INT64_MAX);
  if (const ojson* v = field(b, "max_completion_tokens")) g.max_tokens = get_integer(*v, "max_completion_tokens", 1, INT64_MAX);
  if (const ojson* v = field(b, "stop")) g.stop = parse_stop(*v);
  if (const ojson* v = field(b, "logit_bias")) g.logit_bias = parse_logit_bias(*v);
  if (const ojson* v = field(b, "stream")) g.stream = get_bool(*v, "stream");
  if (const ojson* v = field(b, "stream_options")) {
    if (!v->is_object()) throw wrong_type("stream_options", "an object", *v);
    if (!g.stream) throw invalid_request("'stream_options' is only allowed with stream: true", "stream_options");
    if (const ojson* u = field(*v, "include_usage")) g.include_usage = get_bool(*u, "stream_options.include_usage");
  }
  // One choice per request: say so instead of silently returning fewer than asked.
  if (const ojson* v = field(b, "n"); v && get_integer(*v, "n", 1, 128) != 1)
    throw invalid_request("only n = 1 is supported", "n");
  if (const ojson* v = field(b, "logprobs"); v && v->is_boolean() && v->get<bool>())
    throw invalid_request("logprobs are not supported", "logprobs");
  return g;
}

std::string parse_model(const ojson& b) {
  const ojson* m = field(b, "model");
  if (!m) throw invalid_request("'model' is required", "model");
  return get_string(*m, "model");
}

}  // namespace

ojson parse_json_body(std::string_view body) {
  // Bracket depth outside strings; a cheap pre-pass so no parse or copy recurses deeper than this.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw invalid_request("the JSON body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  ojson j;
  try {
    j = ojson::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw invalid_request(std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw invalid_request(std::string("the body must be a JSON object, got ") + type_name(j));
  return j;
}

ChatRequest parse_chat_request(const ojson& b) {
  ChatRequest r;
  r.model = parse_model(b);
  const ojson* msgs = field(b, "messages");
  if (!msgs) throw invalid_request("'messages' is required", "messages");
  if (!msgs->is_array()) throw wrong_type("messages", "an array", *msgs);
  if (msgs->empty()) throw invalid_request("'messages' must not be empty", "messages");
  for (size_t i = 0; i < msgs->size(); ++i) r.messages.push_back(parse_message((*msgs)[i], "messages[" + std::to_string(i) + "]"));
  if (const ojson* t = field(b, "tools"); t && !t->empty()) r.tools = parse_tools(*t);
  if (const ojson* tc = field(b, "tool_choice")) parse_tool_choice(*tc, r);
  if (const ojson* p = field(b, "parallel_tool_calls")) r.parallel_tool_calls = get_bool(*p, "parallel_tool_calls");
  if (r.tools.is_null() && (r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Named))
    throw invalid_request("'tool_choice' requires 'tools'", "tool_choice");
  if (r.tool_choice == ToolChoice::Named) {
    bool known = false;
    for (const auto& t : r.tools) known |= t["function"]["name"] == r.tool_choice_name;
    if (!known) throw invalid_request("'tool_choice' names function '" + r.tool_choice_name + "', which is not in 'tools'", "tool_choice");
  }
  if (const ojson* kw = field(b, "chat_template_kwargs")) {
    if (!kw->is_object()) throw wrong_type("chat_template_kwargs", "an object", *kw);
    if (const ojson* th = field(*kw, "enable_thinking")) r.enable_thinking = get_bool(*th, "chat_template_kwargs.enable_thinking");
  }
  r.gen = parse_generation(b);
  return r;
}

CompletionRequest parse_completion_request(const ojson& b) {
  CompletionRequest r;
  r.model = parse_model(b);
  const ojson* p = field(b, "prompt");
  if (!p) throw invalid_request("'prompt' is required", "prompt");
  // A string, a one-element array of strings, or token ids (an array of integers).
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    r.prompt = (*p)[0].get<std::string>();
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
    for (size_t i = 0; i < p->size(); ++i)
      r.prompt_tokens.push_back(int32_t(get_integer((*p)[i], "prompt[" + std::to_string(i) + "]", 0, INT32_MAX)));
  } else {
    throw invalid_request("'prompt' must be a string, an array with one string, or an array of token ids", "prompt");
  }
  if (r.prompt.empty() && r.prompt_tokens.empty()) throw invalid_request("'prompt' must not be empty", "prompt");
  if (const ojson* e = field(b, "echo"); e && get_bool(*e, "echo")) throw invalid_request("echo is not supported", "echo");
  r.gen = parse_generation(b);
  // The legacy endpoint's default is 16 tokens.
  if (!r.gen.max_tokens) r.gen.max_tokens = 16;
  return r;
}

}  // namespace flashfix::server
