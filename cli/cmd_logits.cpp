// flashfix logits --model M.gguf --prompt-file P.txt --out OUT.f32 [--threads N]
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/model_session.h"

namespace flashfix::cli {
namespace {

const char* kUsage =
    "usage: flashfix logits --model M.gguf --prompt-file P.txt --out OUT.f32 [--threads N]\n"
    "Tokenizes P (special tokens parsed, BOS per the model), runs one forward pass over the whole\n"
    "prompt and writes float32 logits for every position, row-major [n_tokens x n_vocab], to OUT.\n"
    "Prints {\"tokens\":[...],\"n_vocab\":V} on stdout.\n";

int run_logits(const std::vector<std::string>& argv) {
  Args args(argv, {{"--model", true}, {"--prompt-file", true}, {"--out", true}, {"--threads", true}});
  if (args.help()) return std::fputs(kUsage, stdout), 0;
  const std::string out_path = args.require("--out");
  const std::string prompt = read_file(args.require("--prompt-file"));
  ModelSession s = ModelSession::open(args);
  auto tokens = s.tokenize_prompt(prompt);
  const int64_t V = s.model->config().n_vocab;
  std::vector<float> logits(tokens.size() * size_t(V));
  auto seq = s.backend->new_sequence(int64_t(tokens.size()));
  s.backend->forward(*seq, tokens, Logits::All, logits.data());

  std::string tmp = out_path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error(out_path + ": cannot create");
  bool ok = std::fwrite(logits.data(), sizeof(float), logits.size(), f) == logits.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(out_path + ": write failed");
  }
  std::puts(nlohmann::json{{"tokens", tokens}, {"n_vocab", V}}.dump().c_str());
  return 0;
}

const CommandRegistration reg{"logits", "write the logits of every prompt position (for checking against a reference)", &run_logits};

}  // namespace
}  // namespace flashfix::cli
