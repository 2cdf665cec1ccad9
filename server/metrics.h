// Server counters and gauges, rendered as Prometheus text on GET /metrics. Updated from HTTP worker
// threads and from engine callbacks, so everything is atomic or behind one short mutex.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace flashfix::server {

class Metrics {
 public:
  // One finished HTTP request on a route ("chat", "completions", "models", "health", "metrics", "other").
  void count_request(const std::string& route, int status);
  // A finished generation's token counts.
  void count_generation(int64_t prompt_tokens, int64_t cached_tokens, int64_t completion_tokens, bool cancelled);
  // One generated token, for the recent tokens/s gauge (called on the engine thread: cheap).
  void count_token();

  std::atomic<int64_t> waiting{0};  // admitted, no token yet (queued in the engine or in prefill)
  std::atomic<int64_t> running{0};  // producing tokens

  std::string render() const;

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr int kWindowSeconds = 10;  // tokens/s averaged over the last 10 whole seconds

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  int64_t prompt_tokens_ = 0, cached_tokens_ = 0, completion_tokens_ = 0, generations_ = 0, cancelled_ = 0;
  // Per-second token buckets indexed by (second % size); a bucket holds the second it counts.
  struct Bucket { int64_t second = -1; int64_t tokens = 0; };
  Bucket buckets_[kWindowSeconds + 1];
  Clock::time_point start_ = Clock::now();
};

}  // namespace flashfix::server
