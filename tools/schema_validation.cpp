#include "tools/schema_validation.h"

#include <cmath>

namespace flashfix::tools {
namespace {

std::string type_name(const nlohmann::json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();  // "string", "boolean", "array", "object", "null"
}

// A short rendering of a wrong value, so the model sees what it sent.
std::string preview(const nlohmann::json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

bool has_type(const nlohmann::json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer() || (v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>());
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  if (type == "null") return v.is_null();
  return false;
}

void check_value(const nlohmann::json& schema, const nlohmann::json& v, const std::string& where, std::string& problems) {
  auto add = [&](const std::string& p) { problems += (problems.empty() ? "" : "\n") + p; };
  if (auto t = schema.find("type"); t != schema.end() && t->is_string() && !has_type(v, *t)) {
    add(where + " must be " + (*t == "integer" || *t == "array" || *t == "object" ? "an " : "a ") + t->get<std::string>() +
        ", got " + type_name(v) + " " + preview(v));
    return;
  }
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array()) {
    bool found = false;
    for (const auto& option : *e) found = found || option == v;
    if (!found) add(where + " must be one of " + e->dump() + ", got " + preview(v));
  }
  if (v.is_number()) {
    double x = v.get<double>();
    if (auto m = schema.find("minimum"); m != schema.end() && x < m->get<double>()) add(where + " must be at least " + m->dump() + ", got " + preview(v));
    if (auto m = schema.find("maximum"); m != schema.end() && x > m->get<double>()) add(where + " must be at most " + m->dump() + ", got " + preview(v));
  }
  if (v.is_string())
    if (auto m = schema.find("minLength"); m != schema.end() && v.get_ref<const std::string&>().size() < m->get<size_t>())
      add(where + " must not be empty");
  if (v.is_array())
    if (auto items = schema.find("items"); items != schema.end())
      for (size_t i = 0; i < v.size(); ++i) check_value(*items, v[i], where + "[" + std::to_string(i) + "]", problems);
  if (v.is_object() && schema.contains("properties")) {
    const auto& props = schema["properties"];
    if (auto req = schema.find("required"); req != schema.end())
      for (const auto& name : *req)
        if (!v.contains(name.get<std::string>())) add("missing required argument '" + name.get<std::string>() + "'");
    bool closed = schema.value("additionalProperties", true) == false;
    for (const auto& [key, value] : v.items()) {
      auto p = props.find(key);
      if (p != props.end()) {
        check_value(*p, value, "argument '" + key + "'", problems);
      } else if (closed) {
        std::string known;
        for (const auto& [name, _] : props.items()) known += (known.empty() ? "" : ", ") + name;
        add("unknown argument '" + key + "' (this tool takes: " + (known.empty() ? "no arguments" : known) + ")");
      }
    }
  }
}

}  // namespace

std::string validate_arguments(const nlohmann::json& schema, const nlohmann::json& args) {
  if (!args.is_object()) return "arguments must be a JSON object, got " + type_name(args) + " " + preview(args);
  std::string problems;
  check_value(schema, args, "arguments", problems);
  return problems;
}

}  // namespace flashfix::tools
