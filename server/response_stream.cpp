#include "server/response_stream.h"

#include <chrono>
#include <random>

#include "server/api_error.h"

namespace flashfix::server {
namespace {

using Clock = std::chrono::steady_clock;
// Short enough that a client gone during a long prefill is noticed within a second or so, long
// enough to cost nothing next to the tokens themselves.
constexpr auto kHeartbeat = std::chrono::milliseconds(500);

}  // namespace

bool write_sse(httplib::DataSink& sink, const nlohmann::ordered_json& chunk) {
  const std::string event = "data: " + json_text(chunk) + "\n\n";
  return sink.write(event.data(), event.size());
}

bool write_sse_done(httplib::DataSink& sink) {
  static constexpr std::string_view kDone = "data: [DONE]\n\n";
  return sink.write(kDone.data(), kDone.size());
}

bool drive(Generation& g, httplib::DataSink& sink, std::string_view heartbeat,
           const std::function<bool(const std::vector<agent::StreamEvent>&)>& on_events) {
  std::vector<agent::StreamEvent> events;
  auto last_write = Clock::now();
  for (;;) {
    events.clear();
    const bool done = g.next(events, kHeartbeat);
    bool ok = true;
    if (!events.empty() && on_events) {
      ok = on_events(events);
      last_write = Clock::now();
    } else if (!done && Clock::now() - last_write >= kHeartbeat) {
      ok = sink.write(heartbeat.data(), heartbeat.size());
      last_write = Clock::now();
    }
    if (!ok) {
      g.cancel();
      return false;
    }
    if (done) return true;
  }
}

bool finish_sse(const Generation& g, httplib::DataSink& sink, bool include_usage,
                const std::function<nlohmann::ordered_json(nlohmann::ordered_json finish_reason)>& empty_chunk) {
  if (!g.error().empty()) {
    write_sse(sink, internal_error("generation failed: " + g.error()).to_json());
  } else {
    if (!write_sse(sink, empty_chunk(g.finish_reason()))) return false;
    if (include_usage) {
      nlohmann::ordered_json usage = empty_chunk(nullptr);
      usage["choices"] = nlohmann::ordered_json::array();
      usage["usage"] = usage_json(g.result());
      if (!write_sse(sink, usage)) return false;
    }
  }
  write_sse_done(sink);
  sink.done();
  return true;
}

bool send_json_body(Generation& g, httplib::DataSink& sink, const std::function<nlohmann::ordered_json()>& body) {
  if (!drive(g, sink, " ", {})) return false;
  const std::string text = json_text(g.error().empty() ? body() : internal_error("generation failed: " + g.error()).to_json());
  sink.write(text.data(), text.size());
  sink.done();
  return true;
}

nlohmann::ordered_json usage_json(const Result& r) {
  const auto completion = int64_t(r.tokens.size());
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", completion},
          {"total_tokens", r.prompt_tokens + completion},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

std::string response_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

}  // namespace flashfix::server
