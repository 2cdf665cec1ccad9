// JSON as text with invalid UTF-8 replaced by U+FFFD instead of thrown on. Model output, tool output
// and file contents are raw bytes; a wire message, a report or a log line holding them must still be
// written, so every such dump in the project goes through here.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace flashfix {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline std::string json_text(const nlohmann::ordered_json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace flashfix
