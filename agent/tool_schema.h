// What the call parser and the decoding constraint need to know about the tools: names, parameter
// names, their declared JSON types, enums and which are required, read from the OpenAI tools array
// (the same array render_chat takes).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace flashfix::agent {

enum class ValueType : uint8_t { Any, String, Integer, Number, Boolean, Null, Object, Array };

struct ParamSpec {
  std::string name;
  ValueType type = ValueType::Any;  // a list of types (["integer","null"]) or no "type" is Any
  std::vector<nlohmann::ordered_json> enum_values;  // empty: no enum
  bool required = false;
};

struct ToolSpec {
  std::string name;
  std::vector<ParamSpec> params;  // in schema order
  const ParamSpec* find(std::string_view param) const;
};

struct ToolSpecs {
  std::vector<ToolSpec> tools;
  const ToolSpec* find(std::string_view name) const;
};

// tools: null/empty, or an array of {"type":"function","function":{...}} or bare function objects.
// Throws std::invalid_argument for a malformed array (a programming error, not model output).
ToolSpecs read_tool_specs(const nlohmann::ordered_json& tools);

// An XML parameter's text as the value of its declared type (or the enum value it spells). spec ==
// nullptr (unknown tool or parameter) or no declared type: a JSON object or array text is parsed,
// anything else stays a string. Returns the error
// for the model when the text is not a value of the declared type.
struct Converted {
  nlohmann::ordered_json value;
  std::string error;
};
Converted convert_xml_value(const ParamSpec* spec, const std::string& text);

std::string_view type_name(ValueType t);

}  // namespace flashfix::agent
