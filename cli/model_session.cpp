#include "cli/model_session.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "agent/utf8.h"

namespace flashfix::cli {

ModelSession ModelSession::open(const Args& args) {
  ModelSession s;
  s.model = Model::load(args.require("--model"));
  s.tokenizer = Tokenizer::from_gguf(s.model->file());
  if (s.tokenizer->n_vocab() > s.model->config().n_vocab)
    throw std::runtime_error("the tokenizer has " + std::to_string(s.tokenizer->n_vocab()) +
                             " tokens but the model's embedding only " + std::to_string(s.model->config().n_vocab));
  int threads = int(args.get_int("--threads", 0, 0, 1024));
  s.backend = make_cpu_backend(*s.model, threads);
  return s;
}

std::vector<int32_t> ModelSession::tokenize_prompt(const std::string& text) const {
  auto tokens = tokenizer->encode(text, /*parse_special=*/true, /*add_special=*/true);
  if (tokens.empty()) throw UsageError("the prompt is empty");
  return tokens;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return ss.str();
}

std::string Utf8Stream::push(const std::string& bytes) {
  pending_ += bytes;
  const size_t complete = pending_.size() - agent::incomplete_utf8_tail(pending_);
  std::string out = pending_.substr(0, complete);
  pending_.erase(0, complete);
  return out;
}

std::string Utf8Stream::flush() { return std::exchange(pending_, {}); }

}  // namespace flashfix::cli
