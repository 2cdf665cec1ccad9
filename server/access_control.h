// Who may use the server and how much: the optional API key (Authorization: Bearer) and admission of
// generations up to the engine's parallel slots plus a bounded queue; past that, 429 at once rather
// than an unbounded pile of waiting connections.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include <httplib.h>

namespace flashfix::server {

// Throws ApiError 401 unless key is empty (no key configured) or the request carries it.
void check_api_key(const httplib::Request& req, const std::string& key);

class Admission {
 public:
  explicit Admission(int64_t max_in_flight) : max_(max_in_flight) {}

  // Holding a ticket is holding one in-flight slot; it is returned when the ticket is destroyed
  // (shared so a streaming response's content provider can keep it past the handler).
  using Ticket = std::shared_ptr<void>;
  // Throws ApiError 429 when all slots are taken.
  Ticket admit();

 private:
  const int64_t max_;
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace flashfix::server
