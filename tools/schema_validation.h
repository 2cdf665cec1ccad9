// Checks a model's tool arguments against the tool's JSON Schema before the tool sees them. Covers
// the subset the tools' schemas use: object with properties, required, additionalProperties:false;
// string/integer/number/boolean/array/object types; enum; minimum/maximum; minLength; array items.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace flashfix::tools {

// Empty when args satisfy schema; otherwise every problem found, one per line, naming the argument.
std::string validate_arguments(const nlohmann::json& schema, const nlohmann::json& args);

}  // namespace flashfix::tools
