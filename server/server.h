// flashfix serve: the engine behind the OpenAI HTTP API (cpp-httplib). Routes:
//   POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/ID], GET /health, GET /metrics.
// Every failure a client can cause is a 4xx with an OpenAI error object; a 500 means a bug here.
#pragma once
#include <memory>

#include "engine/engine.h"
#include "server/server_context.h"

namespace flashfix::server {

class Server {
 public:
  Server(Engine& engine, ServerOptions options);
  ~Server();

  // Binds options.host:options.port and returns the port (the one picked when it was 0). Throws
  // std::runtime_error when the address cannot be bound.
  int bind();
  // Serves on the bound socket until stop(); returns false if listening failed.
  bool run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashfix::server
