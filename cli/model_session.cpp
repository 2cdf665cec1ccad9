#include "cli/model_session.h"

#include <fstream>
#include <sstream>
#include <utility>

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

// Length of the UTF-8 sequence a lead byte starts (1 for ASCII and for stray continuation bytes,
// which are passed through rather than held forever).
static size_t sequence_length(unsigned char c) {
  if (c >= 0xF0 && c <= 0xF7) return 4;
  if (c >= 0xE0) return c <= 0xEF ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

std::string Utf8Stream::push(const std::string& bytes) {
  pending_ += bytes;
  size_t i = 0, complete = 0;
  while (i < pending_.size()) {
    size_t len = sequence_length(static_cast<unsigned char>(pending_[i]));
    if (i + len > pending_.size()) break;
    i += len;
    complete = i;
  }
  std::string out = pending_.substr(0, complete);
  pending_.erase(0, complete);
  return out;
}

std::string Utf8Stream::flush() { return std::exchange(pending_, {}); }

}  // namespace flashfix::cli
