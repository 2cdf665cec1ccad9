#include "server/server.h"

#include <ctime>
#include <exception>

#include <httplib.h>

#include "server/api_error.h"
#include "server/chat_completion.h"
#include "server/completions.h"
#include "server/response_stream.h"

namespace flashfix::server {
namespace {

using ojson = nlohmann::ordered_json;

void send_json(httplib::Response& res, int status, const ojson& body) {
  res.status = status;
  res.set_content(json_text(body), "application/json");
}

ojson model_json(const ServerContext& ctx) {
  return {{"id", ctx.options.model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "flashfix"},
          {"context_length", ctx.engine.options().n_ctx}};
}

}  // namespace

struct Server::Impl {
  ServerContext ctx;
  httplib::Server http;
  int port = -1;

  Impl(Engine& engine, ServerOptions options) : ctx(engine, std::move(options)) {
    // Every admitted generation holds a worker for its whole response; a few more keep /health,
    // /metrics and rejections (429, 4xx) answering while all slots are busy.
    const size_t workers = size_t(ctx.engine.options().max_sequences + ctx.options.max_queue) + 8;
    http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    http.set_payload_max_length(ctx.options.max_body_bytes);

    http.Post("/v1/chat/completions", wrap("chat", true, [this](const auto& req, auto& res) { handle_chat_completion(ctx, req, res); }));
    http.Post("/v1/completions", wrap("completions", true, [this](const auto& req, auto& res) { handle_completion(ctx, req, res); }));
    http.Get("/v1/models", wrap("models", true, [this](const auto&, auto& res) {
      send_json(res, 200, {{"object", "list"}, {"data", ojson::array({model_json(ctx)})}});
    }));
    http.Get(R"(/v1/models/(.+))", wrap("models", true, [this](const httplib::Request& req, auto& res) {
      if (req.matches[1] != ctx.options.model_name)
        throw not_found("The model '" + std::string(req.matches[1]) + "' does not exist", "model_not_found");
      send_json(res, 200, model_json(ctx));
    }));
    http.Get("/health", wrap("health", false, [](const auto&, auto& res) { send_json(res, 200, {{"status", "ok"}}); }));
    http.Get("/metrics", wrap("metrics", true, [this](const auto&, auto& res) {
      res.set_content(ctx.metrics.render(), "text/plain; version=0.0.4");
    }));

    // Statuses httplib decides itself (unknown route, body over the limit, unparsable request)
    // get the same error objects as the handlers' own. httplib calls this for every status >= 400;
    // the handlers' errors already have a body and were counted by wrap().
    http.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      ctx.metrics.count_request("other", res.status);
      res.set_content(json_text(error_for_status(res.status)), "application/json");
    });
  }

  // A route handler with authentication, error objects and request counting around it.
  template <class Fn>
  httplib::Server::Handler wrap(const char* name, bool needs_key, Fn fn) {
    return [this, name, needs_key, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        if (needs_key) check_api_key(req, ctx.options.api_key);
        fn(req, res);
      } catch (const ApiError& e) {
        send_json(res, e.status(), e.to_json());
      } catch (const std::exception& e) {
        send_json(res, 500, internal_error(std::string("internal error: ") + e.what()).to_json());
      }
      // httplib fills in 200 after the handler when it set none (content providers).
      ctx.metrics.count_request(name, res.status == -1 ? 200 : res.status);
    };
  }
};

Server::Server(Engine& engine, ServerOptions options) : impl_(std::make_unique<Impl>(engine, std::move(options))) {}
Server::~Server() = default;

int Server::bind() {
  const auto& o = impl_->ctx.options;
  impl_->port = o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (impl_->port < 0) throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port));
  return impl_->port;
}

bool Server::run() { return impl_->http.listen_after_bind(); }
void Server::stop() { impl_->http.stop(); }

}  // namespace flashfix::server
