// OpenAI-style errors: every rejected request gets {"error":{"message","type","param","code"}} with
// the HTTP status the OpenAI API uses for it, so client libraries raise their own error classes
// (openai.BadRequestError for 400, AuthenticationError for 401, NotFoundError for 404, ...).
#pragma once
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace flashfix::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::string param = {}, std::string code = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)), code_(std::move(code)) {}

  int status() const { return status_; }
  nlohmann::ordered_json to_json() const;

 private:
  int status_;
  std::string type_, param_, code_;
};

// The common cases, named after what the client did wrong.
ApiError invalid_request(const std::string& message, const std::string& param = {}, const std::string& code = {});
ApiError context_overflow(const std::string& message);
ApiError unauthorized(const std::string& message);
ApiError not_found(const std::string& message, const std::string& code);
ApiError too_large(const std::string& message);
ApiError queue_full(const std::string& message);
ApiError internal_error(const std::string& message);

// The error object for a status httplib produced on its own (unknown route, oversized body, ...).
nlohmann::ordered_json error_for_status(int status);

}  // namespace flashfix::server
