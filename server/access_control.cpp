#include "server/access_control.h"

#include "server/api_error.h"

namespace flashfix::server {
namespace {

// Compares without an early exit, so response timing does not reveal how much of a guess was right.
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() != b.size();
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

void check_api_key(const httplib::Request& req, const std::string& key) {
  if (key.empty()) return;
  const std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.empty()) throw unauthorized("missing API key: send 'Authorization: Bearer <key>'");
  if (auth.compare(0, prefix.size(), prefix) != 0 || !constant_time_equal(auth.substr(prefix.size()), key))
    throw unauthorized("invalid API key");
}

Admission::Ticket Admission::admit() {
  int64_t n = in_flight_.load();
  do {
    if (n >= max_)
      throw queue_full("the server is at its limit of " + std::to_string(max_) +
                       " requests in flight (--parallel + --max-queue); retry later");
  } while (!in_flight_.compare_exchange_weak(n, n + 1));
  return Ticket(nullptr, [this](void*) { in_flight_.fetch_sub(1); });
}

}  // namespace flashfix::server
