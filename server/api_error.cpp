#include "server/api_error.h"

namespace flashfix::server {

nlohmann::ordered_json ApiError::to_json() const {
  // OpenAI sends param and code as null when they do not apply; clients read them as optional.
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s); };
  return {{"error", {{"message", what()}, {"type", type_}, {"param", or_null(param_)}, {"code", or_null(code_)}}}};
}

ApiError invalid_request(const std::string& message, const std::string& param, const std::string& code) {
  return ApiError(400, "invalid_request_error", message, param, code);
}
ApiError context_overflow(const std::string& message) {
  return ApiError(400, "invalid_request_error", message, "messages", "context_length_exceeded");
}
ApiError unauthorized(const std::string& message) {
  return ApiError(401, "authentication_error", message, {}, "invalid_api_key");
}
ApiError not_found(const std::string& message, const std::string& code) {
  return ApiError(404, "invalid_request_error", message, {}, code);
}
ApiError too_large(const std::string& message) {
  return ApiError(413, "invalid_request_error", message, {}, "request_too_large");
}
ApiError queue_full(const std::string& message) {
  return ApiError(429, "rate_limit_error", message, {}, "queue_full");
}
ApiError internal_error(const std::string& message) { return ApiError(500, "server_error", message); }

nlohmann::ordered_json error_for_status(int status) {
  switch (status) {
    case 400: return invalid_request("the request could not be parsed").to_json();
    case 404: return not_found("unknown route", "unknown_url").to_json();
    case 405: return ApiError(405, "invalid_request_error", "method not allowed on this route").to_json();
    case 413: return too_large("the request body exceeds the server's limit (--max-body-bytes)").to_json();
    case 414: return ApiError(414, "invalid_request_error", "the request URI is too long").to_json();
    default: return ApiError(status, status >= 500 ? "server_error" : "invalid_request_error", "HTTP status " + std::to_string(status)).to_json();
  }
}

}  // namespace flashfix::server
