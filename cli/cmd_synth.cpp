// flashfix synth: write a random-weight qwen3moe or step35 model of any shape.
#include <cstdio>
#include <stdexcept>

#include "cli/args.h"
#include "cli/command.h"
#include "engine/synth.h"

namespace flashfix::cli {
namespace {

const char* kUsage =
    "usage: flashfix synth (--arch qwen3moe|step35 | --preset NAME [--scale F]) [shape flags]\n"
    "                      [--type f32|f16|bf16|q8_0|q4_K|q5_K|q6_K] [--seed S] [--vocab V.gguf] [--name NAME]\n"
    "                      [--random-blocks] --out M.gguf\n"
    "Writes a random-weight model (Gaussian, std 1/sqrt(fan_in); norms near 1) with the metadata a loader\n"
    "needs. Presets: qwen3-30b-a3b, step3.5-flash; --scale F in (0,1] shrinks one (layers, widths, experts).\n"
    "Without a preset the shape is a tiny model like the golden files; flags override either.\n"
    "Shape flags: --layers --embd --heads --heads-swa (step35) --heads-kv --head-dim --experts --experts-used\n"
    "  --ff-exp --ff (dense) --ff-shexp --swa-window --dense-layers --mtp --context --rope-base\n"
    "The tokenizer (and so the vocabulary size) is copied from --vocab, else a 263-token byte-level vocab\n"
    "with ChatML specials.\n"
    "--random-blocks writes q8_0/q4_K/q5_K/q6_K weights as random quants under scales that give the\n"
    "Gaussian's spread, ~20x faster than quantizing Gaussians: for speed benchmarks of full-size shapes,\n"
    "where the values do not matter (float types stay Gaussian: they have nothing to skip).\n";

int run_synth(const std::vector<std::string>& argv) {
  const std::vector<std::pair<const char*, int SynthShape::*>> int_flags = {
      {"--layers", &SynthShape::n_layer},     {"--embd", &SynthShape::n_embd},
      {"--heads", &SynthShape::n_head},       {"--heads-swa", &SynthShape::n_head_swa},
      {"--heads-kv", &SynthShape::n_head_kv}, {"--head-dim", &SynthShape::head_dim},
      {"--experts", &SynthShape::n_expert},   {"--experts-used", &SynthShape::n_expert_used},
      {"--ff-exp", &SynthShape::n_ff_exp},    {"--ff", &SynthShape::n_ff},
      {"--ff-shexp", &SynthShape::n_ff_shexp}, {"--swa-window", &SynthShape::swa_window},
      {"--dense-layers", &SynthShape::n_dense}, {"--mtp", &SynthShape::n_mtp}};
  std::vector<FlagSpec> specs = {{"--arch", true},  {"--preset", true}, {"--scale", true}, {"--type", true},
                                 {"--seed", true},  {"--vocab", true},  {"--out", true},   {"--context", true},
                                 {"--rope-base", true}, {"--name", true}, {"--random-blocks", false}};
  for (const auto& [flag, field] : int_flags) specs.push_back({flag, true});
  Args args(argv, specs);
  if (args.help()) return std::fputs(kUsage, stdout), 0;
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");

  SynthOptions opt;
  try {
    if (auto preset = args.get("--preset")) {
      opt.shape = synth_preset(*preset, args.get_double("--scale", 1.0));
      if (auto arch = args.get("--arch"); arch && *arch != opt.shape.arch)
        throw UsageError("--arch " + *arch + " contradicts preset " + *preset + " (" + opt.shape.arch + ")");
    } else {
      if (args.has("--scale")) throw UsageError("--scale needs --preset");
      opt.shape = synth_default_shape(args.require("--arch"));
    }
    SynthShape& s = opt.shape;
    for (const auto& [flag, field] : int_flags) s.*field = int(args.get_int(flag, s.*field, 0, 1 << 30));
    s.context = args.get_int("--context", s.context, 1, int64_t(1) << 31);
    s.rope_base = float(args.get_double("--rope-base", s.rope_base));
    s.name = args.get("--name").value_or(s.name);
    std::string type = args.get("--type").value_or("f32");
    auto t = type_from_name(type);
    if (!t) throw UsageError("unknown --type '" + type + "'");
    opt.type = *t;
    opt.seed = uint64_t(args.get_int("--seed", 1, 0, INT64_MAX));
    opt.vocab_path = args.get("--vocab").value_or("");
    opt.random_blocks = args.has("--random-blocks");
    synth_validate(opt);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());  // an impossible shape is a wrong command line
  }
  const std::string out = args.require("--out");
  synth_model(opt, out);
  const SynthShape& s = opt.shape;
  std::fprintf(stderr, "wrote %s: %s, %d layers%s, embd %d, %d experts top-%d, %s\n", out.c_str(), s.arch.c_str(),
               s.n_layer, s.n_mtp ? (" + " + std::to_string(s.n_mtp) + " MTP").c_str() : "", s.n_embd, s.n_expert,
               s.n_expert_used, std::string(type_traits(opt.type).name).c_str());
  return 0;
}

const CommandRegistration reg{"synth", "write a random-weight qwen3moe/step35 model of any shape", &run_synth};

}  // namespace
}  // namespace flashfix::cli
