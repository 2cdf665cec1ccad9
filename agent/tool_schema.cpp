#include "agent/tool_schema.h"

#include <algorithm>
#include <stdexcept>

#include "engine/json_text.h"

namespace flashfix::agent {
namespace {

using json = nlohmann::ordered_json;

ValueType read_type(const json& schema) {
  auto t = schema.find("type");
  if (t == schema.end() || !t->is_string()) return ValueType::Any;
  const std::string& s = t->get_ref<const std::string&>();
  if (s == "string") return ValueType::String;
  if (s == "integer") return ValueType::Integer;
  if (s == "number") return ValueType::Number;
  if (s == "boolean") return ValueType::Boolean;
  if (s == "null") return ValueType::Null;
  if (s == "object") return ValueType::Object;
  if (s == "array") return ValueType::Array;
  return ValueType::Any;
}

// Does a JSON value have the declared type? (Any accepts everything; integral floats count as integers.)
bool has_type(const json& v, ValueType t) {
  switch (t) {
    case ValueType::Any: return true;
    case ValueType::String: return v.is_string();
    case ValueType::Integer: return v.is_number_integer() || (v.is_number_float() && v.get<double>() == double(int64_t(v.get<double>())));
    case ValueType::Number: return v.is_number();
    case ValueType::Boolean: return v.is_boolean();
    case ValueType::Null: return v.is_null();
    case ValueType::Object: return v.is_object();
    case ValueType::Array: return v.is_array();
  }
  return false;
}

std::string quoted(const std::string& text) {
  constexpr size_t kMax = 80;
  return json_text(json(text.size() <= kMax ? text : text.substr(0, kMax) + "..."));
}

}  // namespace

std::string_view type_name(ValueType t) {
  switch (t) {
    case ValueType::Any: return "any";
    case ValueType::String: return "string";
    case ValueType::Integer: return "integer";
    case ValueType::Number: return "number";
    case ValueType::Boolean: return "boolean";
    case ValueType::Null: return "null";
    case ValueType::Object: return "object";
    case ValueType::Array: return "array";
  }
  return "?";
}

const ParamSpec* ToolSpec::find(std::string_view param) const {
  for (const ParamSpec& p : params)
    if (p.name == param) return &p;
  return nullptr;
}

const ToolSpec* ToolSpecs::find(std::string_view name) const {
  for (const ToolSpec& t : tools)
    if (t.name == name) return &t;
  return nullptr;
}

ToolSpecs read_tool_specs(const json& tools) {
  ToolSpecs out;
  if (tools.is_null()) return out;
  if (!tools.is_array()) throw std::invalid_argument("tools must be an array of function objects");
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& entry = tools[i];
    const json& fn = entry.is_object() && entry.contains("function") ? entry["function"] : entry;
    if (!fn.is_object() || !fn.contains("name") || !fn["name"].is_string())
      throw std::invalid_argument("tools[" + std::to_string(i) + "] is not a function object with a string \"name\"");
    ToolSpec tool;
    tool.name = fn["name"].get<std::string>();
    if (tool.name.empty()) throw std::invalid_argument("tools[" + std::to_string(i) + "] has an empty name");
    auto params = fn.find("parameters");
    if (params != fn.end() && params->is_object()) {
      std::vector<std::string> required;
      if (auto r = params->find("required"); r != params->end() && r->is_array())
        for (const json& name : *r)
          if (name.is_string()) required.push_back(name.get<std::string>());
      if (auto props = params->find("properties"); props != params->end() && props->is_object()) {
        for (const auto& [name, schema] : props->items()) {
          ParamSpec p;
          p.name = name;
          if (schema.is_object()) {
            p.type = read_type(schema);
            if (auto e = schema.find("enum"); e != schema.end() && e->is_array() && !e->empty())
              p.enum_values.assign(e->begin(), e->end());
          }
          p.required = std::find(required.begin(), required.end(), name) != required.end();
          tool.params.push_back(std::move(p));
        }
      }
    }
    if (out.find(tool.name)) throw std::invalid_argument("tools: the name '" + tool.name + "' is declared twice");
    out.tools.push_back(std::move(tool));
  }
  return out;
}

Converted convert_xml_value(const ParamSpec* spec, const std::string& text) {
  // An enum's values are spelled as the template prints them: strings raw, anything else as JSON.
  if (spec)
    for (const json& e : spec->enum_values)
      if (e.is_string() ? e.get_ref<const std::string&>() == text : e.dump() == text) return {e, {}};
  const ValueType type = spec ? spec->type : ValueType::Any;
  if (type == ValueType::String) return {json(text), {}};
  // Typed values tolerate surrounding whitespace; the templates print booleans the Python way.
  const size_t b = text.find_first_not_of(" \t\r\n");
  const std::string t = b == std::string::npos ? std::string() : text.substr(b, text.find_last_not_of(" \t\r\n") - b + 1);
  if (type == ValueType::Boolean) {
    if (t == "true" || t == "True") return {json(true), {}};
    if (t == "false" || t == "False") return {json(false), {}};
  }
  if (type == ValueType::Null && (t == "None" || t == "null")) return {json(nullptr), {}};
  json value = json::parse(t, nullptr, /*allow_exceptions=*/false);
  if (type == ValueType::Any) {
    // Without a declared type only containers are unambiguous: "42" may well be meant as text.
    if (!value.is_discarded() && value.is_structured()) return {std::move(value), {}};
    return {json(text), {}};
  }
  if (value.is_discarded() || !has_type(value, type))
    return {{}, "parameter '" + spec->name + "' must be " + (type == ValueType::Integer || type == ValueType::Array || type == ValueType::Object ? "an " : "a ") +
                    std::string(type_name(type)) + ", got " + quoted(text)};
  if (type == ValueType::Integer && value.is_number_float()) value = int64_t(value.get<double>());
  return {std::move(value), {}};
}

}  // namespace flashfix::agent
