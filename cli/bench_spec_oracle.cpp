#include "cli/bench_spec_oracle.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "engine/cpu_time.h"
#include "engine/engine.h"

namespace flashfix::cli {

const char* const kSpecOracleUsage =
    "       flashfix bench --model M.gguf --spec-oracle [--prompt-tokens N (64)] [--gen-tokens N (128)]\n"
    "         [--draft-max K (4)] [--repeats N (3)] [--threads N] [--json]\n"
    "--spec-oracle: greedy decoding with the model's own output replayed as drafts, a share of them\n"
    "corrupted (acceptance 100/75/50/25%), k = 1..K drafts per pass: forced (k every pass) and adaptive\n"
    "(the engine's controller picks k, or none). Per cell: decode speedup over plain decoding in wall and\n"
    "CPU time (medians of repeats, each a forced and an adaptive run between two plain runs whose mean\n"
    "is the baseline), the noise floor (the second plain run over the first), tokens per pass, the cost\n"
    "of a verify pass over a plain step (wall, CPU), and the byte\n"
    "model's prediction: tokens per pass / (weight bytes a pass read / bytes a plain step read), bytes\n"
    "counted from the experts the tokens actually selected.\n";

std::vector<FlagSpec> spec_oracle_flag_specs() { return {{"--spec-oracle", false}, {"--repeats", true}}; }

namespace {

// One run's numbers over its decode passes (the ones after the prompt's).
struct Run {
  double tok_s = 0, cpu_s_per_token = 0, tokens_per_pass = 0, bytes_per_pass = 0, ms_per_pass = 0, cpu_ms_per_pass = 0,
         drafted_per_pass = 0;
};

Run run_once(Engine& engine, const Request& req, const std::vector<int32_t>* want) {
  const double cpu0 = process_cpu_seconds();
  const Result r = engine.generate(req);
  const double cpu = process_cpu_seconds() - cpu0;
  if (want && r.tokens != *want) throw std::runtime_error("speculative decoding changed the greedy output (a bug)");
  const double passes = double(std::max<int64_t>(1, r.sampling_passes - 1));
  const double tokens = double(r.tokens.size()) - 1 + (r.finish == FinishReason::Stop ? 1 : 0);
  Run m;
  m.tok_s = r.decode_ms > 0 ? tokens / (r.decode_ms / 1000) : 0;
  m.cpu_s_per_token = cpu / tokens;
  m.tokens_per_pass = tokens / passes;
  m.bytes_per_pass = double(r.decode_weight_bytes) / passes;
  m.ms_per_pass = r.decode_ms / passes;
  m.cpu_ms_per_pass = 1000 * cpu / passes;
  for (const DraftStats& d : r.drafts) m.drafted_per_pass += double(d.drafted) / passes;
  return m;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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
  base.repack_weights = !args.has("--no-repack");
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
  req.ignore_eog = true;  // random weights reach an end token anywhere; the oracle needs G tokens
  const std::vector<int32_t> want = plain->generate(req).tokens;  // also warms the weights up
  if (want.size() < 8) throw std::runtime_error("the model ended its greedy output after " + std::to_string(want.size()) + " tokens");
  const Run step = run_once(*plain, req, nullptr);

  auto replaying = [&](double accuracy) {
    Request r = req;
    r.draft_source = [&, accuracy] { return make_replay_draft(want, int64_t(req.prompt.size()), accuracy, V, 1); };
    return r;
  };
  if (!json)
    std::printf("%s: plain decode %.2f tok/s, %.1f MB of weights per step (%lld tokens; medians of %d interleaved repeats)\n"
                "acc%%  k | forced: speedup (cpu) tok/pass pass-cost (cpu) pass-bytes predicted ratio (cpu) | adaptive: speedup (cpu) drafts/pass | plain/plain range\n",
                model.c_str(), step.tok_s, step.bytes_per_pass / 1e6, (long long)want.size(), repeats);
  nlohmann::json cells = nlohmann::json::array();
  for (int k = 1; k <= K; ++k) {
    auto forced = open(k, true), adaptive = open(k, false);
    for (Engine* e : {forced.get(), adaptive.get()}) e->generate(replaying(1.0));  // prefix cached, step costs learned
    for (double accuracy : {1.0, 0.75, 0.5, 0.25}) {
      // Plain, forced and adaptive runs alternate, and each is compared with the plain run beside it,
      // so a change of load on a shared machine shifts all three alike. CPU time is the second view:
      // other processes' load stretches wall time but hardly the CPU time a run needs.
      std::vector<double> speed, cpu_speed, pass_cost, cpu_pass_cost, tpp, bytes, a_speed, a_cpu_speed, a_drafts, noise;
      for (int i = 0; i < repeats; ++i) {
        const Run p1 = run_once(*plain, req, &want);
        const Run f = run_once(*forced, replaying(accuracy), &want);
        const Run a = run_once(*adaptive, replaying(accuracy), &want);
        const Run p2 = run_once(*plain, req, &want);
        // The baseline is the plain runs on both sides; how far they differ is the cell's noise floor.
        Run p;
        p.tok_s = (p1.tok_s + p2.tok_s) / 2, p.cpu_s_per_token = (p1.cpu_s_per_token + p2.cpu_s_per_token) / 2;
        p.ms_per_pass = (p1.ms_per_pass + p2.ms_per_pass) / 2, p.cpu_ms_per_pass = (p1.cpu_ms_per_pass + p2.cpu_ms_per_pass) / 2;
        p.bytes_per_pass = (p1.bytes_per_pass + p2.bytes_per_pass) / 2;
        noise.push_back(p2.tok_s / p1.tok_s);
        speed.push_back(f.tok_s / p.tok_s), cpu_speed.push_back(p.cpu_s_per_token / f.cpu_s_per_token);
        pass_cost.push_back(f.ms_per_pass / p.ms_per_pass), cpu_pass_cost.push_back(f.cpu_ms_per_pass / p.cpu_ms_per_pass);
        tpp.push_back(f.tokens_per_pass), bytes.push_back(f.bytes_per_pass / p.bytes_per_pass);
        a_speed.push_back(a.tok_s / p.tok_s), a_cpu_speed.push_back(p.cpu_s_per_token / a.cpu_s_per_token);
        a_drafts.push_back(a.drafted_per_pass);
      }
      const double predicted = median(tpp) / median(bytes);
      nlohmann::json c{{"acceptance", accuracy},
                       {"k", k},
                       {"speedup", median(speed)},
                       {"cpu_speedup", median(cpu_speed)},
                       {"tokens_per_pass", median(tpp)},
                       {"pass_time_over_step", median(pass_cost)},
                       {"pass_cpu_over_step", median(cpu_pass_cost)},
                       {"pass_bytes_over_step", median(bytes)},
                       {"predicted_speedup", predicted},
                       {"ratio", median(speed) / predicted},
                       {"cpu_ratio", median(cpu_speed) / predicted},
                       {"adaptive_speedup", median(a_speed)},
                       {"adaptive_cpu_speedup", median(a_cpu_speed)},
                       {"adaptive_drafts_per_pass", median(a_drafts)},
                       {"plain_over_plain", median(noise)},
                       {"plain_over_plain_range", {*std::min_element(noise.begin(), noise.end()), *std::max_element(noise.begin(), noise.end())}}};
      cells.push_back(c);
      if (!json)
        std::printf("%3.0f  %2d | %6.2fx (%.2fx) %6.2f %7.2fx (%.2fx) %8.2fx %8.2fx %5.2f (%.2f) | %6.2fx (%.2fx) %5.2f | %.2f-%.2f\n",
                    accuracy * 100, k, median(speed), median(cpu_speed), median(tpp), median(pass_cost), median(cpu_pass_cost),
                    median(bytes), predicted, median(speed) / predicted, median(cpu_speed) / predicted, median(a_speed),
                    median(a_cpu_speed), median(a_drafts), *std::min_element(noise.begin(), noise.end()),
                    *std::max_element(noise.begin(), noise.end()));
      std::fflush(stdout);
    }
  }
  if (json) {
    nlohmann::json j{{"model", model},          {"threads", base.threads},         {"prompt_tokens", P},
                     {"gen_tokens", want.size()}, {"repeats", repeats},          {"plain_tok_s", step.tok_s},
                     {"plain_step_bytes", step.bytes_per_pass}, {"cells", cells}};
    std::puts(j.dump().c_str());
  }
  return 0;
}

}  // namespace flashfix::cli
