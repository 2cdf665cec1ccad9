// POST /v1/chat/completions: OpenAI messages rendered in the model's own chat format (append-only,
// so a conversation's next request reuses the previous one's prefix cache), generated with tool
// constraints when tools are given, answered as one JSON object or as server-sent event chunks.
#pragma once
#include <httplib.h>

#include "server/server_context.h"

namespace flashfix::server {

// Throws ApiError for anything wrong with the request, before any generation starts.
void handle_chat_completion(ServerContext& ctx, const httplib::Request& req, httplib::Response& res);

}  // namespace flashfix::server
