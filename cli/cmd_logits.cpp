// flashfix logits --model M.gguf --prompt-file P.txt --out OUT.f32 [engine flags]
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/model_session.h"

namespace flashfix::cli {
namespace {

const char* kUsage =
    "usage: flashfix logits --model M.gguf --prompt-file P.txt --out OUT.f32 [engine flags]\n"
    "Tokenizes P (special tokens parsed, BOS per the model), runs the prompt through the engine and\n"
    "writes float32 logits for every position, row-major [n_tokens x n_vocab], to OUT. A prefix found\n"
    "in the prefix cache (--cache-dir) is not recomputed: its logits come from the stored hidden states.\n"
    "Prints {\"tokens\":[...],\"n_vocab\":V,\"cached_tokens\":C,\"computed_tokens\":N} on stdout.\n";

int run_logits(const std::vector<std::string>& argv) {
  auto specs = engine_flag_specs();
  specs.insert(specs.end(), {{"--prompt-file", true}, {"--out", true}});
  Args args(argv, specs);
  if (args.help()) return std::fputs(kUsage, stdout), std::fputs(kEngineFlagsUsage, stdout), 0;
  const std::string out_path = args.require("--out");
  const std::string prompt = read_file(args.require("--prompt-file"));
  auto engine = open_engine(args);
  auto tokens = tokenize_prompt(*engine, prompt);
  const int64_t V = engine->model().config().n_vocab;
  LogitsResult res = engine->prompt_logits(tokens);
  const std::vector<float>& logits = res.logits;

  std::string tmp = out_path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error(out_path + ": cannot create");
  bool ok = std::fwrite(logits.data(), sizeof(float), logits.size(), f) == logits.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(out_path + ": write failed");
  }
  std::puts(nlohmann::json{{"tokens", tokens}, {"n_vocab", V}, {"cached_tokens", res.cached_tokens}, {"computed_tokens", res.computed_tokens}}
                .dump()
                .c_str());
  return 0;
}

const CommandRegistration reg{"logits", "write the logits of every prompt position (for checking against a reference)", &run_logits};

}  // namespace
}  // namespace flashfix::cli
