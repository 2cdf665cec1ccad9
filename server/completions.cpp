#include "server/completions.h"

#include <ctime>
#include <memory>

#include "server/api_error.h"
#include "server/request_parsing.h"
#include "server/response_stream.h"

namespace flashfix::server {
namespace {

using ojson = nlohmann::ordered_json;

struct Header {
  std::string id, model;
  std::time_t created;

  ojson body(const std::string& text, ojson finish_reason) const {
    return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model},
            {"choices", ojson::array({{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", std::move(finish_reason)}}})}};
  }
};

}  // namespace

void handle_completion(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  CompletionRequest r = parse_completion_request(parse_json_body(req.body));
  ctx.check_model(r.model);
  GenerationSpec spec;
  const Tokenizer& tok = ctx.engine.tokenizer();
  if (r.prompt_tokens.empty()) {
    spec.prompt = tok.encode(r.prompt, /*parse_special=*/true, /*add_special=*/true);
  } else {
    ctx.check_token_ids(r.prompt_tokens, "prompt");
    spec.prompt = std::move(r.prompt_tokens);
  }
  if (spec.prompt.empty()) throw invalid_request("the prompt tokenizes to nothing", "prompt");
  spec.max_tokens = ctx.resolve_max_tokens(spec.prompt.size(), r.gen.max_tokens);
  spec.sampling = r.gen.sampling;
  spec.stop = r.gen.stop;
  std::vector<int32_t> biased;
  for (auto [id, b] : r.gen.logit_bias) biased.push_back(id);
  ctx.check_token_ids(biased, "logit_bias");
  spec.logit_bias = r.gen.logit_bias;
  auto ticket = ctx.admission.admit();
  auto g = std::make_shared<Generation>(ctx.engine, ctx.metrics, std::move(spec));
  const Header head{response_id("cmpl-"), ctx.options.model_name, std::time(nullptr)};
  const bool include_usage = r.gen.include_usage;

  if (r.gen.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [g, ticket, head, include_usage](size_t, httplib::DataSink& sink) {
      const bool connected = drive(*g, sink, ": keep-alive\n\n", [&](const std::vector<agent::StreamEvent>& events) {
        for (const auto& e : events)
          if (!write_sse(sink, head.body(e.text, nullptr))) return false;
        return true;
      });
      return connected && finish_sse(*g, sink, include_usage, [&](ojson finish_reason) { return head.body("", std::move(finish_reason)); });
    });
    return;
  }

  res.set_chunked_content_provider("application/json", [g, ticket, head](size_t, httplib::DataSink& sink) {
    return send_json_body(*g, sink, [&] {
      ojson body = head.body(g->text(), g->finish_reason());
      body["usage"] = usage_json(g->result());
      return body;
    });
  });
}

}  // namespace flashfix::server
