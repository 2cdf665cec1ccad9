// What every route handler shares: the engine, the server's options and its bookkeeping.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/call_constraint.h"
#include "engine/chat.h"
#include "engine/engine.h"
#include "server/access_control.h"
#include "server/metrics.h"

namespace flashfix::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless the operator asks otherwise
  int port = 8080;                 // 0: any free port (Server::bind returns it)
  std::string api_key;             // empty: no authentication
  std::string model_name;          // the id clients pass as "model"
  int64_t max_queue = 64;          // generations waiting beyond the engine's parallel slots
  size_t max_body_bytes = 4u << 20;
  int64_t max_tokens_limit = 4096; // the most tokens one request may ask for
};

struct ServerContext {
  Engine& engine;
  ServerOptions options;
  ChatFormat chat_format;
  // The vocabulary as a byte trie for tool-call constraints: built once, shared by every request.
  std::shared_ptr<const agent::TokenTrie> token_trie;
  // Tokens that end a chat reply besides the model's end-of-generation ones: the ChatML turn end.
  std::vector<int32_t> turn_end_tokens;
  // What may follow a finished tool call (see ToolChoiceConstraint): the turn's end (the turn-end
  // and end-of-generation tokens) and one newline (-1: no single newline token).
  std::vector<int32_t> end_tokens;
  int32_t newline_token = -1;
  Metrics metrics;
  Admission admission;

  ServerContext(Engine& e, ServerOptions o);

  // The model id check every generation request starts with: 404 model_not_found otherwise.
  void check_model(const std::string& requested) const;
  // The number of tokens to generate: asked (already >= 1) or, when not asked, as many as the limit
  // and the context allow. 400 when it exceeds the limit, context_length_exceeded when the prompt
  // plus it does not fit the context.
  int64_t resolve_max_tokens(size_t prompt_tokens, const std::optional<int64_t>& asked) const;
  // 400 naming param unless every id is in the vocabulary.
  void check_token_ids(const std::vector<int32_t>& ids, const std::string& param) const;
};

}  // namespace flashfix::server
