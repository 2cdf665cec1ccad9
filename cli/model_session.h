// What the model-running commands share: loading a model with its tokenizer and CPU backend, reading
// a prompt file, and tokenizing it the way the model expects (specials parsed, BOS per the model).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "engine/backend.h"
#include "engine/tokenizer.h"

namespace flashfix::cli {

struct ModelSession {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;

  // --model M.gguf [--threads N]
  static ModelSession open(const Args& args);
  std::vector<int32_t> tokenize_prompt(const std::string& text) const;
};

std::string read_file(const std::string& path);  // throws with the path on failure

// Emits only whole UTF-8 characters, holding back a sequence that a later token completes.
class Utf8Stream {
 public:
  std::string push(const std::string& bytes);
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace flashfix::cli
