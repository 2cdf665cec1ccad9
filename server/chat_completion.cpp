#include "server/chat_completion.h"

#include <ctime>
#include <memory>
#include <stdexcept>

#include "server/api_error.h"
#include "server/request_parsing.h"
#include "server/response_stream.h"

namespace flashfix::server {
namespace {

using ojson = nlohmann::ordered_json;

std::vector<int32_t> render_prompt(const ServerContext& ctx, const ChatRequest& r) {
  RenderOptions opt;
  opt.add_generation_prompt = true;
  opt.enable_thinking = r.enable_thinking;
  opt.append_only = true;
  std::string text;
  try {
    text = render_chat(ctx.chat_format, r.messages, r.tools, opt);
  } catch (const std::invalid_argument& e) {
    throw invalid_request(std::string("the messages cannot be rendered: ") + e.what(), "messages");
  }
  // Specials by hand: add_special could also append an EOS, which would end the prompt. Step's
  // template starts with {{bos_token}}; the others get a BOS only where the model asks for one.
  const Tokenizer& tok = ctx.engine.tokenizer();
  std::vector<int32_t> ids = tok.encode(text, /*parse_special=*/true, /*add_special=*/false);
  if (auto bos = tok.bos(); bos && (tok.add_bos_default() || ctx.chat_format == ChatFormat::Step35)) ids.insert(ids.begin(), *bos);
  return ids;
}

// Step-3.5's generation prompt opens the think block itself; Qwen3 lets the model open it.
bool prompt_opens_reasoning(ChatFormat f) { return f == ChatFormat::Step35; }

ojson tool_call_json(const ToolCall& call, int index, bool with_index) {
  ojson j;
  if (with_index) j["index"] = index;
  j["id"] = call.id;
  j["type"] = "function";
  // Arguments go out as a JSON string, as OpenAI sends them; a string argument (raw text) verbatim.
  j["function"] = {{"name", call.name}, {"arguments", call.arguments.is_string() ? call.arguments.get<std::string>() : json_text(call.arguments)}};
  return j;
}

ojson message_json(const Generation& g) {
  const agent::ParsedMessage& m = g.message();
  std::string content = m.content;
  ojson calls = ojson::array();
  for (const auto& c : m.calls) {
    // A call that does not parse (only possible when max_tokens cut it) cannot be a tool_calls
    // entry; its text stays visible as content rather than vanishing.
    if (!c.error.empty()) content += (content.empty() ? "" : "\n") + c.raw;
    else calls.push_back(tool_call_json(c.call, int(calls.size()), false));
  }
  ojson msg = {{"role", "assistant"}};
  msg["content"] = content.empty() && !calls.empty() ? ojson(nullptr) : ojson(content);
  if (!m.reasoning.empty()) msg["reasoning_content"] = m.reasoning;
  if (!calls.empty()) msg["tool_calls"] = std::move(calls);
  return msg;
}

struct ChunkHeader {
  std::string id, model;
  std::time_t created;

  ojson chunk(ojson delta, ojson finish_reason = nullptr) const {
    return {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
            {"choices", ojson::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", std::move(finish_reason)}}})}};
  }
};

// One SSE chunk per parser event, as OpenAI streams: tool_calls deltas carry index, id, type and
// name in their first fragment and argument text after.
ojson delta_for(const agent::StreamEvent& e) {
  switch (e.kind) {
    case agent::StreamEvent::Content: return {{"content", e.text}};
    case agent::StreamEvent::Reasoning: return {{"reasoning_content", e.text}};
    case agent::StreamEvent::CallBegin:
      return {{"tool_calls", ojson::array({{{"index", e.call_index}, {"id", e.call_id}, {"type", "function"},
                                            {"function", {{"name", e.call_name}, {"arguments", ""}}}}})}};
    case agent::StreamEvent::CallArguments:
      return {{"tool_calls", ojson::array({{{"index", e.call_index}, {"function", {{"arguments", e.text}}}}})}};
    case agent::StreamEvent::CallEnd: break;
  }
  return nullptr;
}

}  // namespace

void handle_chat_completion(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  ChatRequest r = parse_chat_request(parse_json_body(req.body));
  ctx.check_model(r.model);
  GenerationSpec spec;
  spec.prompt = render_prompt(ctx, r);
  spec.max_tokens = ctx.resolve_max_tokens(spec.prompt.size(), r.gen.max_tokens);
  spec.sampling = r.gen.sampling;
  spec.stop = r.gen.stop;
  std::vector<int32_t> biased;
  for (auto [id, b] : r.gen.logit_bias) biased.push_back(id);
  ctx.check_token_ids(biased, "logit_bias");
  spec.logit_bias = r.gen.logit_bias;
  spec.chat_format = ctx.chat_format;
  spec.stop_tokens = ctx.turn_end_tokens;
  spec.starts_in_reasoning = prompt_opens_reasoning(ctx.chat_format);
  spec.tools = r.tools;
  if (!r.tools.is_null())
    spec.constraint = std::make_unique<ToolChoiceConstraint>(ctx.engine.tokenizer(), ctx.token_trie, ctx.chat_format, r.tools, r.tool_choice,
                                                             r.tool_choice_name, r.parallel_tool_calls, ctx.end_tokens,
                                                             ctx.newline_token);
  auto ticket = ctx.admission.admit();
  auto g = std::make_shared<Generation>(ctx.engine, ctx.metrics, std::move(spec));
  const ChunkHeader head{response_id("chatcmpl-"), ctx.options.model_name, std::time(nullptr)};
  const bool include_usage = r.gen.include_usage;

  if (r.gen.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [g, ticket, head, include_usage](size_t, httplib::DataSink& sink) {
          if (!write_sse(sink, head.chunk({{"role", "assistant"}, {"content", ""}}))) return g->cancel(), false;
          const bool connected = drive(*g, sink, ": keep-alive\n\n", [&](const std::vector<agent::StreamEvent>& events) {
            for (const auto& e : events) {
              ojson delta = delta_for(e);
              if (!delta.is_null() && !write_sse(sink, head.chunk(std::move(delta)))) return false;
            }
            return true;
          });
          return connected && finish_sse(*g, sink, include_usage, [&](ojson finish_reason) {
                   return head.chunk(ojson::object(), std::move(finish_reason));
                 });
        });
    return;
  }

  res.set_chunked_content_provider("application/json", [g, ticket, head](size_t, httplib::DataSink& sink) {
    return send_json_body(*g, sink, [&]() -> ojson {
      return {{"id", head.id}, {"object", "chat.completion"}, {"created", head.created}, {"model", head.model},
              {"choices", ojson::array({{{"index", 0}, {"message", message_json(*g)}, {"logprobs", nullptr},
                                         {"finish_reason", g->finish_reason()}}})},
              {"usage", usage_json(g->result())}};
    });
  });
}

}  // namespace flashfix::server
