#include "cli/bench_spec_oracle.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "engine/engine.h"

namespace flashfix::cli {

const char* const kSpecOracleUsage =
    "       flashfix bench --model M.gguf --spec-oracle [--prompt-tokens N (64)] [--gen-tokens N (128)]\n"
    "         [--draft-max K (4)] [--repeats N (3)] [--threads N] [--json]\n"
    "--spec-oracle: greedy decoding with the model's own output replayed as drafts, a share of them\n"
    "corrupted (acceptance 100/75/50/25%), k = 1..K drafts per pass: forced (k every pass) and adaptive\n"
    "(the engine's controller picks k, or none). Per cell: decode speedup over plain decoding (median of\n"
    "the repeats), tokens per pass, the measured time of a verify pass over a plain step, and the byte\n"
    "model's prediction: tokens per pass / (weight bytes a pass read / bytes a plain step read), bytes\n"
    "counted from the experts the tokens actually selected.\n";

std::vector<FlagSpec> spec_oracle_flag_specs() { return {{"--spec-oracle", false}, {"--repeats", true}}; }

namespace {

// One decode run's numbers (the passes after the prompt's).
struct Run {
  double tok_s = 0, tokens_per_pass = 0, bytes_per_pass = 0, ms_per_pass = 0, drafted_per_pass = 0;
};

Run measure(const Result& r) {
  const double passes = double(std::max<int64_t>(1, r.sampling_passes - 1));
  const double tokens = double(r.tokens.size()) - 1 + (r.finish == FinishReason::Stop ? 1 : 0);
  Run m;
  m.tok_s = r.decode_ms > 0 ? tokens / (r.decode_ms / 1000) : 0;
  m.tokens_per_pass = tokens / passes;
  m.bytes_per_pass = double(r.decode_weight_bytes) / passes;
  m.ms_per_pass = r.decode_ms / passes;
  for (const DraftStats& d : r.drafts) m.drafted_per_pass += double(d.drafted) / passes;
  return m;
}

// The run with the median speed of several.
Run median(std::vector<Run> runs) {
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.tok_s < b.tok_s; });
  return runs[runs.size() / 2];
}

}  // namespace

int run_spec_oracle(const Args& args, bool json) {
  for (const char* f : {"--prefix-tokens", "--turns", "--turn-tokens", "--ctx-size", "--max-sequences", "--kv-budget-mb",
                        "--cache-dir", "--cache-dir-max-mb", "--no-prefix-cache", "--draft", "--membw", "--kernels"})
    if (args.has(f)) throw UsageError(std::string(f) + " does not go with --spec-oracle");
  const int64_t P = args.get_int("--prompt-tokens", 64, 1, 1 << 20);
  const int64_t G = args.get_int("--gen-tokens", 128, 8, 1 << 20);
  const int K = int(args.get_int("--draft-max", 4, 1, kMaxDraftTokens));
  const int repeats = int(args.get_int("--repeats", 3, 1, 100));
  const std::string model = args.require("--model");

  EngineOptions base;
  base.threads = int(args.get_int("--threads", 0, 0, 1024));
  base.n_ctx = P + G;
  base.max_sequences = 1;
  base.draft = DraftMode::None;  // only the request's replayed drafts
  auto open = [&](int k, bool always) {
    EngineOptions o = base;
    o.draft_max = k, o.draft_always = always;
    return Engine::open(model, o);
  };

  auto plain = open(0, false);
  const int32_t V = plain->model().config().n_vocab;
  Request req;
  for (int64_t i = 0; i < P; ++i) req.prompt.push_back(int32_t((i * 7919 + 13) % V));
  req.max_tokens = G;
  req.sampling.temperature = 0;
  const std::vector<int32_t> want = plain->generate(req).tokens;  // also warms the weights up
  if (want.size() < 8) throw std::runtime_error("the model ended its greedy output after " + std::to_string(want.size()) + " tokens");
  std::vector<Run> runs;
  for (int i = 0; i < repeats; ++i) runs.push_back(measure(plain->generate(req)));
  const Run step = median(runs);

  auto replaying = [&](double accuracy) {
    Request r = req;
    r.draft_source = [&, accuracy] { return make_replay_draft(want, int64_t(req.prompt.size()), accuracy, V, 1); };
    return r;
  };
  if (!json)
    std::printf("%s: plain decode %.2f tok/s, %.1f MB of weights and %.2f ms per step (median of %d; %lld tokens)\n"
                "acc%%  k | forced: speedup tok/pass pass-time pass-bytes predicted ratio | adaptive: speedup tok/pass drafts/pass\n",
                model.c_str(), step.tok_s, step.bytes_per_pass / 1e6, step.ms_per_pass, repeats, (long long)want.size());
  nlohmann::json cells = nlohmann::json::array();
  for (int k = 1; k <= K; ++k) {
    auto forced = open(k, true), adaptive = open(k, false);
    for (Engine* e : {forced.get(), adaptive.get()}) e->generate(replaying(1.0));  // prefix cached, step costs learned
    for (double accuracy : {1.0, 0.75, 0.5, 0.25}) {
      Run m[2];
      for (int mode = 0; mode < 2; ++mode) {
        runs.clear();
        for (int i = 0; i < repeats; ++i) {
          const Result r = (mode ? adaptive : forced)->generate(replaying(accuracy));
          if (r.tokens != want) throw std::runtime_error("speculative decoding changed the greedy output (a bug)");
          runs.push_back(measure(r));
        }
        m[mode] = median(runs);
      }
      const double speedup = m[0].tok_s / step.tok_s, pass_bytes = m[0].bytes_per_pass / step.bytes_per_pass;
      const double predicted = m[0].tokens_per_pass / pass_bytes, pass_time = m[0].ms_per_pass / step.ms_per_pass;
      const double adaptive_speedup = m[1].tok_s / step.tok_s;
      cells.push_back({{"acceptance", accuracy}, {"k", k}, {"speedup", speedup}, {"tokens_per_pass", m[0].tokens_per_pass},
                       {"pass_time_over_step", pass_time}, {"pass_bytes_over_step", pass_bytes}, {"predicted_speedup", predicted},
                       {"ratio", speedup / predicted}, {"adaptive_speedup", adaptive_speedup},
                       {"adaptive_tokens_per_pass", m[1].tokens_per_pass}, {"adaptive_drafts_per_pass", m[1].drafted_per_pass}});
      if (!json)
        std::printf("%3.0f  %2d | %6.2fx %7.2f %8.2fx %9.2fx %8.2fx %5.2f | %6.2fx %7.2f %7.2f\n", accuracy * 100, k, speedup,
                    m[0].tokens_per_pass, pass_time, pass_bytes, predicted, speedup / predicted, adaptive_speedup,
                    m[1].tokens_per_pass, m[1].drafted_per_pass);
      std::fflush(stdout);
    }
  }
  if (json) {
    nlohmann::json j{{"model", model},          {"threads", base.threads},         {"prompt_tokens", P},
                     {"gen_tokens", want.size()}, {"repeats", repeats},          {"plain_tok_s", step.tok_s},
                     {"plain_step_ms", step.ms_per_pass}, {"plain_step_bytes", step.bytes_per_pass}, {"cells", cells}};
    std::puts(j.dump().c_str());
  }
  return 0;
}

}  // namespace flashfix::cli
