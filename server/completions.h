// POST /v1/completions: the legacy text endpoint; the prompt is raw text (special tokens parsed,
// BOS per the model) or token ids, and the reply is the plain continuation.
#pragma once
#include <httplib.h>

#include "server/server_context.h"

namespace flashfix::server {

void handle_completion(ServerContext& ctx, const httplib::Request& req, httplib::Response& res);

}  // namespace flashfix::server
