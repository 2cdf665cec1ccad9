// Writing a generation to its HTTP connection as it progresses, for both response kinds:
//  - server-sent events (stream: true): "data: <json>\n\n" per chunk, "data: [DONE]" at the end;
//  - a plain JSON body written when the generation ends.
// Both are sent chunked and both write a heartbeat while nothing else is written (an SSE comment,
// or whitespace before the JSON body, which JSON allows). The heartbeat is how a disconnect is
// noticed while a request is still queued or in prefill: a write to a closed connection fails,
// and the generation is cancelled at once instead of running to max_tokens for nobody.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/json_text.h"  // json_text: every body and event goes out through it
#include "server/generation.h"

namespace flashfix::server {

bool write_sse(httplib::DataSink& sink, const nlohmann::ordered_json& chunk);
bool write_sse_done(httplib::DataSink& sink);

// Waits for g to end, passing each batch of events to on_events (which writes them and returns
// false when a write failed; empty: the events are not written, as for a JSON body sent at the end)
// and writing heartbeat after an interval without writes. Returns false, having cancelled g, when
// the client went away; true when g ended with the client still connected.
bool drive(Generation& g, httplib::DataSink& sink, std::string_view heartbeat,
           const std::function<bool(const std::vector<agent::StreamEvent>&)>& on_events);

// The end of an SSE response, once drive() returned with the client still connected: the engine's
// error as an error event, or else the chunk carrying the finish reason and, when the client asked
// for usage, a chunk with no choices carrying it; then [DONE]. empty_chunk(finish_reason) builds the
// endpoint's own chunk without content. Returns false when the client went away.
bool finish_sse(const Generation& g, httplib::DataSink& sink, bool include_usage,
                const std::function<nlohmann::ordered_json(nlohmann::ordered_json finish_reason)>& empty_chunk);

// A whole response as one JSON body: waits for g (whitespace heartbeats meanwhile), then writes the
// engine's error or body() and ends the response. Returns false when the client went away.
bool send_json_body(Generation& g, httplib::DataSink& sink, const std::function<nlohmann::ordered_json()>& body);

// {"prompt_tokens","completion_tokens","total_tokens","prompt_tokens_details":{"cached_tokens"}}.
nlohmann::ordered_json usage_json(const Result& r);

// A random id for response objects ("chatcmpl-…", "cmpl-…").
std::string response_id(std::string_view prefix);

}  // namespace flashfix::server
