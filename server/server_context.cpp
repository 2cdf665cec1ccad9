#include "server/server_context.h"

#include <algorithm>

#include "server/api_error.h"

namespace flashfix::server {

ServerContext::ServerContext(Engine& e, ServerOptions o)
    : engine(e),
      options(std::move(o)),
      chat_format(detect_chat_format(e.model().config().arch, e.tokenizer().chat_template())),
      token_trie(agent::build_token_trie(e.tokenizer())),
      admission(int64_t(e.options().max_sequences) + options.max_queue) {
  const Tokenizer& tok = e.tokenizer();
  if (auto im_end = tok.find_token("<|im_end|>")) turn_end_tokens.push_back(*im_end);
  end_tokens = turn_end_tokens;
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_eog(id) && std::ranges::find(turn_end_tokens, id) == turn_end_tokens.end()) end_tokens.push_back(id);
  if (auto nl = tok.encode("\n", false, false); nl.size() == 1) newline_token = nl[0];
}

void ServerContext::check_model(const std::string& requested) const {
  if (requested != options.model_name)
    throw not_found("The model '" + requested + "' does not exist; this server serves '" + options.model_name + "'",
                    "model_not_found");
}

void ServerContext::check_token_ids(const std::vector<int32_t>& ids, const std::string& param) const {
  const int32_t n_vocab = engine.tokenizer().n_vocab();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= n_vocab)
      throw invalid_request(param + ": token " + std::to_string(ids[i]) + " is not in this model's vocabulary (" + std::to_string(n_vocab) +
                                " tokens)",
                            param);
}

int64_t ServerContext::resolve_max_tokens(size_t prompt_tokens, const std::optional<int64_t>& asked) const {
  const int64_t n_ctx = engine.options().n_ctx;
  const int64_t n_prompt = int64_t(prompt_tokens);
  if (asked && *asked > options.max_tokens_limit)
    throw invalid_request("max_tokens " + std::to_string(*asked) + " exceeds this server's limit of " +
                              std::to_string(options.max_tokens_limit),
                          "max_tokens");
  if (n_prompt >= n_ctx)
    throw context_overflow("This model's maximum context length is " + std::to_string(n_ctx) + " tokens; the prompt has " +
                           std::to_string(n_prompt));
  if (!asked) return std::min(options.max_tokens_limit, n_ctx - n_prompt);
  if (n_prompt + *asked > n_ctx)
    throw context_overflow("This model's maximum context length is " + std::to_string(n_ctx) + " tokens; the prompt has " +
                           std::to_string(n_prompt) + " and max_tokens asks for " + std::to_string(*asked));
  return *asked;
}

}  // namespace flashfix::server
