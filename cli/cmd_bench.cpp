// flashfix bench: prefill and decode speed of a model on the CPU backend, the memory traffic decode
// achieves, peak resident memory; or (--membw) this machine's memory bandwidth, decode's ceiling.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/bench_agent_replay.h"
#include "cli/bench_peak.h"
#include "cli/bench_spec_oracle.h"
#include "cli/command.h"
#include "engine/backend.h"
#include "engine/cpu_dot.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_time.h"
#include "engine/huge_page_buffer.h"
#include "engine/sampler.h"
#include "engine/thread_pool.h"

namespace flashfix::cli {
namespace {

const char* kUsage =
    "usage: flashfix bench --model M.gguf [--prompt-tokens N (512)] [--gen-tokens N (128)] [--threads N] [--no-repack]\n"
    "         [--backend cpu|cuda] [--json]\n"
    "       flashfix bench --membw [--threads N | --backend cuda] [--json]\n"
    "       flashfix bench --kernels [--json]\n"
    "%s%s"
    "Model: times a prefill of N pseudo-random tokens, then N greedy decode steps, and reports tok/s,\n"
    "after an untimed warm-up prefill (up to one micro-batch) on a throwaway sequence, so the engine's\n"
    "scratch buffers are grown and their pages faulted in, as in a running server;\n"
    "the bytes decode reads per token (active weights: dense parts, the selected experts, one embedding\n"
    "row, the output matrix; plus the KV cache attended to), the bandwidth that achieves, and peak RSS.\n"
    "--membw: streaming-read bandwidth over a buffer far larger than the last-level cache (huge pages\n"
    "asked for, as for packed weights), with 1 and N\n"
    "threads (N = --threads, default all cores); with --backend cuda, the GPU's device-to-device copy\n"
    "bandwidth, which a cuda model run also reports decode's traffic against. --kernels: one core's dot-kernel throughput per weight\n"
    "type and kernel path on L2-resident weights, per second of CPU time (so other processes on a shared\n"
    "machine do not skew it): 1 token (decode, GB/s of weights) and 8 tokens (prefill, GMAC/s), the GEMM\n"
    "tile on rows packed beforehand for 1..8 tokens (decode and verify passes on weights packed at load), a\n"
    "64-token GEMM with per-call packing (gemm) and, for types packed at load, without it (gemm_packed); and\n"
    "attention's score and value loops for a group of 8 query heads over 2048 cached keys; and sampling\n"
    "one token from 151936 logits; against the core's int8 and f32 ceilings (AVX-512 machines).\n"
    "Kernel path: FLASHFIX_CPU=scalar|avx2|avx512 forces one.\n";

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Peak resident set (VmHWM) in bytes; getrusage's ru_maxrss is the same number in KiB.
uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return uint64_t(ru.ru_maxrss) * 1024;
}

// Best of several passes of every thread streaming its own slice of one buffer.
double membw_gbs(ThreadPool& pool, std::span<const uint8_t> buf) {
  const cpu::CpuKernels& k = cpu::kernels();
  const int parts = pool.size();
  double best = 0;
  uint64_t sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<uint64_t> sums(static_cast<size_t>(parts));
    auto t0 = Clock::now();
    pool.parallel_for(parts, [&](int64_t p0, int64_t p1, int) {
      for (int64_t p = p0; p < p1; ++p) {
        const size_t begin = buf.size() * size_t(p) / size_t(parts), end = buf.size() * size_t(p + 1) / size_t(parts);
        sums[size_t(p)] = k.stream_read(buf.data() + begin, end - begin);
      }
    });
    best = std::max(best, double(buf.size()) / seconds_since(t0) / 1e9);
    for (uint64_t s : sums) sink ^= s;
  }
  if (sink == 42) std::fputs("", stderr);  // keeps the reads observable
  return best;
}

int run_membw(const Args& args, int threads, bool json) {
  if (args.has("--model") || args.has("--prompt-tokens") || args.has("--gen-tokens"))
    throw UsageError("--membw takes no model options");
  if (args.get("--backend").value_or("cpu") == "cuda") {
    const CudaDeviceReport r = cuda_device_report();
    if (json)
      std::puts(nlohmann::json{{"device", r.name}, {"device_memory_bytes", r.memory_bytes}, {"device_copy_gb_s", r.copy_gbs}}.dump().c_str());
    else
      std::printf("%s (%.1f GiB): device-to-device copy %.1f GB/s (bytes read + written)\n", r.name.c_str(),
                  double(r.memory_bytes) / double(1 << 30), r.copy_gbs);
    return 0;
  }
  // 1 GiB: 32x a 32 MB L3, so nearly every byte comes from DRAM; in huge pages, like the packed
  // weights (huge_page_buffer.h).
  const HugePageBuffer mem(size_t(1) << 30, "the bandwidth test buffer");
  const std::span<uint8_t> buf(mem.data(), mem.size());
  for (size_t i = 0; i < buf.size(); i += 4096) buf[i] = uint8_t(i >> 12);  // fault every page in
  ThreadPool one(1), all(threads);
  const double gbs1 = membw_gbs(one, buf), gbsn = membw_gbs(all, buf);
  if (json) {
    nlohmann::json j{{"membw_gbs_1_thread", gbs1}, {"membw_gbs_n_threads", gbsn}, {"threads", all.size()},
                     {"buffer_bytes", buf.size()}, {"kernels", std::string(cpu::kernels().name)}};
    std::puts(j.dump().c_str());
  } else {
    std::printf("memory bandwidth (streaming read, %zu MiB, %s): 1 thread %.1f GB/s, %d threads %.1f GB/s\n",
                buf.size() >> 20, std::string(cpu::kernels().name).c_str(), gbs1, all.size(), gbsn);
  }
  return 0;
}

// Passes of `pass` per second of this thread's CPU time, over at least 0.2 s of it (so other processes
// on a shared machine do not skew it); `untimed` runs before each pass and is not counted.
template <class Pass, class Untimed>
double passes_per_cpu_second(Pass&& pass, Untimed&& untimed) {
  double cpu_s = 0, passes = 0;
  for (; cpu_s < 0.2; passes += 1) {
    untimed();
    const double c0 = thread_cpu_seconds();
    pass();
    cpu_s += thread_cpu_seconds() - c0;
  }
  return passes / cpu_s;
}
template <class Pass>
double passes_per_cpu_second(Pass&& pass) {
  return passes_per_cpu_second(pass, [] {});
}

// Dot-tile throughput of one core: 2 MB of weight rows (L2/L3-resident, so this is the compute
// ceiling, not memory) against 1 and kTileTokens quantized activation rows, and the decode GEMV's and
// the repacked GEMM's where the path has them.
int run_kernels(bool json) {
  const int64_t n = 1024, rows = 2048;
  std::mt19937 rng(1);
  std::normal_distribution<float> gauss(0.f, 0.05f);
  std::vector<float> x(static_cast<size_t>(n * rows));
  for (float& v : x) v = gauss(rng);
  nlohmann::json results = nlohmann::json::array();
  // One row: a kernel's rate given the bytes it reads and the multiply-adds it does per pass.
  auto record = [&](std::string_view type, cpu::CpuPath p, const char* kernel, int tokens, double bytes, double macs, double rate) {
    results.push_back({{"type", std::string(type)}, {"path", std::string(cpu::cpu_path_name(p))}, {"kernel", kernel}, {"tokens", tokens},
                       {"weight_gb_per_cpu_s", rate * bytes / 1e9}, {"gmac_per_cpu_s", rate * macs / 1e9}});
  };
  const cpu::CpuPath active = cpu::kernels().path;
  // Q4_K twice: its standard order (experts) and the sub-block pairs order (dense matrices).
  for (auto [wt, order] : {std::pair{TensorType::Q8_0, cpu::DotOrder::Standard}, std::pair{TensorType::Q4_K, cpu::DotOrder::Standard},
                           std::pair{TensorType::Q4_K, cpu::DotOrder::SubBlockPairs}, std::pair{TensorType::Q6_K, cpu::DotOrder::Standard}}) {
    const std::string label = std::string(type_traits(wt).name) + (order == cpu::DotOrder::SubBlockPairs ? "/pairs" : "");
    const size_t rb = row_bytes(wt, n);
    std::vector<uint8_t> w(rb * size_t(rows));
    for (int64_t r = 0; r < rows; ++r) quantize_row(wt, &x[size_t(r * n)], &w[size_t(r) * rb], n);
    const TensorType at = cpu::activation_type(wt);
    const size_t ab = row_bytes(at, n);
    std::vector<uint8_t> acts(ab * cpu::kTileTokens);
    for (int t = 0; t < cpu::kTileTokens; ++t) cpu::quantize_activation(at, &x[size_t(t * n)], &acts[size_t(t) * ab], n);
    for (cpu::CpuPath p : cpu::supported_cpu_paths()) {
      cpu::select_cpu_path(p);
      const cpu::DotTileFn dot = cpu::dot_tile_for(wt, order);
      for (int nt : {1, cpu::kTileTokens}) {
        float y[cpu::kTileTokens];
        const double rate = passes_per_cpu_second([&] {
          for (int64_t r = 0; r < rows; ++r) dot(&w[size_t(r) * rb], acts.data(), ab, nt, n, y, 1);
        });
        record(label, p, "dot_tile", nt, double(w.size()), double(rows * n * nt), rate);
      }
      // The decode GEMV over the same rows, a row group per call, for 1..kGemvTokens tokens.
      if (const cpu::GemvFn gemv = cpu::gemv_for(wt, order)) {
        for (int nt = 1; nt <= cpu::kGemvTokens; ++nt) {
          float y[cpu::kGemvTokens * cpu::kGemmRows];
          const double rate = passes_per_cpu_second([&] {
            for (int64_t r = 0; r < rows; r += cpu::kGemmRows) gemv(&w[size_t(r) * rb], rb, acts.data(), ab, nt, n, y, cpu::kGemmRows);
          });
          record(label, p, "gemv", nt, double(w.size()), double(rows * n * nt), rate);
        }
      }
      // The repacked GEMM as matmul_jobs runs it: each group of rows packed once, then kGemmTiles
      // tiles of kTileTokens tokens (a 64-token batch, an average expert's share of a 512-token
      // prefill with 64 experts top-8), so packing is counted at the rate prefill pays it.
      if (const cpu::GemmKernel* gemm = cpu::gemm_for(wt, order)) {
        constexpr int kGemmTiles = 8;
        std::vector<uint8_t> packed(gemm->packed_bytes(n) + 64);
        void* aligned = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64;
        float y[cpu::kTileTokens * cpu::kGemmRows];
        const double rate = passes_per_cpu_second([&] {
          for (int64_t r = 0; r < rows; r += cpu::kGemmRows) {
            gemm->pack(&w[size_t(r) * rb], rb, cpu::kGemmRows, n, aligned);
            for (int k = 0; k < kGemmTiles; ++k)
              gemm->tile(aligned, acts.data(), ab, cpu::kTileTokens, n, y, cpu::kGemmRows, cpu::kGemmRows);
          }
        });
        const int tokens = kGemmTiles * cpu::kTileTokens;
        record(label, p, "gemm", tokens, double(w.size()), double(rows * n * tokens), rate);
        // The tile alone on rows packed beforehand, 1..kTileTokens tokens: decode and verify passes on
        // weights packed at load (cpu_packed_weights.h).
        std::vector<uint8_t> all_packed(size_t(rows / cpu::kGemmRows) * gemm->packed_bytes(n));
        for (int64_t r = 0; r < rows; r += cpu::kGemmRows)
          gemm->pack(&w[size_t(r) * rb], rb, cpu::kGemmRows, n, &all_packed[size_t(r / cpu::kGemmRows) * gemm->packed_bytes(n)]);
        // A type whose packed groups are its rows' own bytes (Q4_K) is packed at load, so its prefill
        // runs the same 64-token batch without the per-call packing the "gemm" row pays (that row is
        // its --no-repack prefill).
        if (gemm->packed_bytes(n) == size_t(cpu::kGemmRows) * rb) {
          const double packed_rate = passes_per_cpu_second([&] {
            for (int64_t r = 0; r < rows; r += cpu::kGemmRows)
              for (int k = 0; k < kGemmTiles; ++k)
                gemm->tile(&all_packed[size_t(r / cpu::kGemmRows) * gemm->packed_bytes(n)], acts.data(), ab, cpu::kTileTokens, n, y,
                           cpu::kGemmRows, cpu::kGemmRows);
          });
          record(label, p, "gemm_packed", tokens, double(w.size()), double(rows * n * tokens), packed_rate);
        }
        for (int nt = 1; nt <= cpu::kTileTokens; ++nt) {
          const double tile_rate = passes_per_cpu_second([&] {
            for (int64_t r = 0; r < rows; r += cpu::kGemmRows)
              gemm->tile(&all_packed[size_t(r / cpu::kGemmRows) * gemm->packed_bytes(n)], acts.data(), ab, nt, n, y,
                         cpu::kGemmRows, cpu::kGemmRows);
          });
          record(label, p, "gemm_tile", nt, double(w.size()), double(rows * n * nt), tile_rate);
        }
      }
    }
  }
  // Attention's inner loops as a decode step runs them for one KV head: a GQA group of 8 query heads
  // (Qwen3-30B-A3B's 32 / 4) of 128 dims walking 2048 cached keys (scores a KV block of 16 keys per call, values in one call); the 1 MB
  // of keys and of values stays in L2/L3, so this too is the compute ceiling. GMAC: one per score
  // element and one per value element updated.
  {
    constexpr int kHeads = 8;
    const int64_t d = 128, keys = 2048;
    std::vector<float> q(size_t(kHeads * d)), k_buf(size_t(keys * d + 16)), v(size_t(keys * d)), out(size_t(kHeads * d));
    // The keys on a 64-byte boundary, as the KV store's blocks are: split lines cost the scores ~10%.
    float* const k = k_buf.data() + (16 - reinterpret_cast<uintptr_t>(k_buf.data()) / sizeof(float) % 16) % 16;
    for (float& f : q) f = gauss(rng);
    for (int64_t i = 0; i < keys * d; ++i) k[i] = gauss(rng);
    for (float& f : v) f = gauss(rng);
    float scores[kHeads * cpu::kAttendLanes];
    std::vector<float> weights(size_t(kHeads * keys), 0.01f);
    std::vector<const float*> rows(static_cast<size_t>(keys));
    for (int64_t j = 0; j < keys; ++j) rows[size_t(j)] = &v[size_t(j * d)];
    for (cpu::CpuPath p : cpu::supported_cpu_paths()) {
      cpu::select_cpu_path(p);
      const cpu::CpuKernels& kern = cpu::kernels();
      const double bytes = double(keys * d) * sizeof(float), macs = double(kHeads * keys * d);
      record("f32", p, "attend_scores", 1, bytes, macs, passes_per_cpu_second([&] {
               for (int64_t j = 0; j < keys; j += cpu::kAttendLanes)  // k as lane-major blocks of 16 keys, as the KV store keeps them
                 kern.attend_scores(q.data(), size_t(d), kHeads, k + j * d, 0, cpu::kAttendLanes, d, scores, cpu::kAttendLanes);
             }));
      record("f32", p, "attend_values", 1, bytes, macs, passes_per_cpu_second([&] {
               kern.attend_values(out.data(), size_t(d), kHeads, d, 0, keys, rows.data(), weights.data(), size_t(keys));
             }));
    }
  }
  cpu::select_cpu_path(active);

  // Sampling one token from a Qwen3-sized vocabulary (151936 logits), per CPU-second: with top-k
  // (the default) and with top-k off, where top-p alone decides how much of the vocabulary is sorted.
  nlohmann::json sampling = nlohmann::json::array();
  {
    std::vector<float> base(151936);
    std::normal_distribution<float> logit(0.f, 3.f);
    for (float& f : base) f = logit(rng);
    std::vector<float> logits(base.size());
    for (const SamplerParams& sp : {SamplerParams{.temperature = 0.7f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f},
                                    SamplerParams{.temperature = 0.7f, .top_k = 0, .top_p = 0.95f, .min_p = 0.f}}) {
      Sampler sampler(sp);
      const double tokens_per_s = passes_per_cpu_second([&] { sampler.sample(logits, {}); }, [&] { logits = base; });
      sampling.push_back({{"vocab", base.size()}, {"top_k", sp.top_k}, {"top_p", sp.top_p}, {"min_p", sp.min_p},
                          {"ms_per_token", 1e3 / tokens_per_s}});
    }
  }
  const std::optional<PeakRates> peak = measure_peak_rates();
  if (json) {
    nlohmann::json j{{"kernels", results}, {"sampling", sampling}};
    if (peak) j["peak"] = {{"int8_gmac_per_cpu_s", peak->int8_gmac}, {"f32_gfma_per_cpu_s", peak->f32_gfma}};
    std::puts(j.dump().c_str());
  } else {
    if (peak)
      std::printf("ceilings of one core: %.1f GMAC/s of int8 (512-bit vpdpbusd), %.1f GFMA/s of f32 (512-bit vfmadd) per CPU-second\n",
                  peak->int8_gmac, peak->f32_gfma);
    for (const auto& r : results)  // attention's "weights" are the cached keys or values it reads
      std::printf("%-10s %-7s %-13s %2d token(s): %6.2f GB/s of weights, %6.1f GMAC/s per CPU-second\n",
                  r["type"].get<std::string>().c_str(), r["path"].get<std::string>().c_str(),
                  r["kernel"].get<std::string>().c_str(), r["tokens"].get<int>(),
                  r["weight_gb_per_cpu_s"].get<double>(), r["gmac_per_cpu_s"].get<double>());
    for (const auto& r : sampling)
      std::printf("sampling from %d logits, top-k %d, top-p %.2f, min-p %.2f: %.3f ms per token (CPU)\n", r["vocab"].get<int>(),
                  r["top_k"].get<int>(), r["top_p"].get<double>(), r["min_p"].get<double>(), r["ms_per_token"].get<double>());
  }
  return 0;
}

// Bytes of K and V a decode step at position pos reads: every cached position a layer attends to.
uint64_t kv_bytes_read(const ModelConfig& c, int64_t pos) {
  uint64_t bytes = 0;
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerConfig& L = c.layers[size_t(il)];
    const int64_t keys = L.sliding ? std::min<int64_t>(pos + 1, c.sliding_window) : pos + 1;
    bytes += uint64_t(keys) * uint64_t(L.n_head_kv) * uint64_t(c.head_dim + c.v_head_dim) * sizeof(float);
  }
  return bytes;
}

int run_bench(const std::vector<std::string>& argv) {
  // One spec for every mode (the parser is strict); flags of another mode are refused below.
  auto specs = agent_replay_flag_specs();
  specs.insert(specs.end(), {{"--prompt-tokens", true}, {"--gen-tokens", true}, {"--membw", false}, {"--kernels", false}, {"--json", false}});
  for (const FlagSpec& f : spec_oracle_flag_specs()) specs.push_back(f);
  Args args(argv, specs);
  if (args.help()) return std::printf(kUsage, kAgentReplayUsage, kSpecOracleUsage), 0;
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const int threads = int(args.get_int("--threads", 0, 0, 1024));
  const bool json = args.has("--json");
  if (args.has("--membw") && args.has("--kernels")) throw UsageError("--membw and --kernels are separate runs");
  if (args.has("--spec-oracle")) {
    if (args.has("--agent-replay")) throw UsageError("--spec-oracle and --agent-replay are separate runs");
    return run_spec_oracle(args, json);
  }
  if (args.has("--repeats")) throw UsageError("--repeats needs --spec-oracle");
  if (args.has("--agent-replay")) {
    if (args.has("--membw") || args.has("--kernels") || args.has("--prompt-tokens"))
      throw UsageError("--agent-replay takes no --membw, --kernels or --prompt-tokens");
    return run_agent_replay(args, json);
  }
  for (const char* f : {"--prefix-tokens", "--turns", "--turn-tokens", "--ctx-size", "--max-sequences", "--kv-budget-mb",
                        "--cache-dir", "--cache-dir-max-mb", "--no-prefix-cache", "--draft", "--draft-max"})
    if (args.has(f)) throw UsageError(std::string(f) + " needs --agent-replay" + (std::string(f) == "--draft-max" ? " or --spec-oracle" : ""));
  if (args.has("--no-repack") && (args.has("--membw") || args.has("--kernels"))) throw UsageError("--no-repack needs --model");
  if (args.has("--membw")) return run_membw(args, threads, json);
  if (args.has("--kernels")) {
    if (args.has("--model") || args.has("--threads")) throw UsageError("--kernels takes no model or thread options");
    return run_kernels(json);
  }

  const int64_t P = args.get_int("--prompt-tokens", 512, 1, 1 << 20);
  const int64_t G = args.get_int("--gen-tokens", 128, 1, 1 << 20);
  const std::string backend_name = args.get("--backend").value_or("cpu");
  if (backend_name != "cpu" && backend_name != "cuda") throw UsageError("--backend takes cpu or cuda, not '" + backend_name + "'");
  const bool gpu = backend_name == "cuda", repack = !args.has("--no-repack");
  if (gpu && !repack) throw UsageError("--no-repack is a cpu backend option");
  auto model = Model::load(args.require("--model"));
  const ModelConfig& c = model->config();

  // Weights are read once up front so page faults and the first read from disk are not timed: the
  // numbers describe a resident model. Before the backend is made: the cpu backend then packs from
  // resident pages and drops the ones it packed (the cuda backend copies them to the device).
  const GgufFile& file = model->file();
  const cpu::CpuKernels& k = cpu::kernels();
  uint64_t sink = 0;
  for (const GgufTensor& t : file.tensors()) sink ^= k.stream_read(t.data, t.nbytes);
  if (sink == 42) std::fputs("", stderr);
  const auto setup0 = Clock::now();
  auto backend = make_backend(*model, backend_name, threads, repack);
  const double setup_s = seconds_since(setup0);

  std::vector<int32_t> prompt(static_cast<size_t>(P));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7919 + 13) % uint64_t(c.n_vocab));
  std::vector<float> logits(static_cast<size_t>(c.n_vocab));
  {  // Warm-up: the first pass grows the micro-batch scratch and faults its pages in (~6% of a
     // 512-token prefill on a 1.4 GB model); every later request of a running engine skips that.
    const auto n = size_t(std::min<int64_t>(P, kMaxUbatchTokens));
    auto warm = backend->new_sequence(int64_t(n));
    backend->forward(*warm, std::span<const int32_t>(prompt.data(), n), Logits::Last, logits.data());
  }
  auto seq = backend->new_sequence(P + G + 1);
  const int n_threads = threads > 0 ? threads : int(std::thread::hardware_concurrency());
  const double pcpu0 = process_cpu_seconds();
  auto t0 = Clock::now();
  backend->forward(*seq, prompt, Logits::Last, logits.data());
  const double prefill_s = seconds_since(t0);
  const double prefill_cpu_share = (process_cpu_seconds() - pcpu0) / (prefill_s * n_threads);

  if (gpu) {  // the first decode step captures the step's CUDA graph: not timed, not counted
    const int32_t tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    backend->forward(*seq, std::span<const int32_t>(&tok, 1), Logits::Last, logits.data());
  }
  uint64_t kv_bytes = 0;
  const double cpu0 = process_cpu_seconds();
  auto t1 = Clock::now();
  for (int64_t i = 0; i < G; ++i) {
    const int32_t tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    kv_bytes += kv_bytes_read(c, seq->n_past());
    backend->forward(*seq, std::span<const int32_t>(&tok, 1), Logits::Last, logits.data());
  }
  const double decode_s = seconds_since(t1);
  // Share of the threads' wall time they actually ran: well below 1 means other processes took the
  // cores (a shared machine), and the tok/s understate what the hardware does.
  const double cpu_share = (process_cpu_seconds() - cpu0) / (decode_s * n_threads);

  const ParameterCounts pc = model->parameter_counts();
  const double weight_bytes = double(pc.active_bytes), kv_per_token = double(kv_bytes) / double(G);
  const double prefill_tps = double(P) / prefill_s, decode_tps = double(G) / decode_s;
  const double decode_gbs = (weight_bytes + kv_per_token) * decode_tps / 1e9;
  uint64_t file_bytes = 0;
  for (const GgufTensor& t : file.tensors()) file_bytes += t.nbytes;
  const uint64_t rss = peak_rss_bytes();
  const CudaDeviceReport device = gpu ? cuda_device_report() : CudaDeviceReport{};
  if (json) {
    nlohmann::json j{{"model", args.require("--model")},  {"threads", n_threads}, {"decode_cpu_share", cpu_share}, {"prefill_cpu_share", prefill_cpu_share},
                     {"kernels", std::string(k.name)},   {"prompt_tokens", P},
                     {"gen_tokens", G},                  {"prefill_tok_s", prefill_tps},
                     {"decode_tok_s", decode_tps},       {"decode_weight_bytes_per_token", weight_bytes},
                     {"decode_kv_bytes_per_token", kv_per_token}, {"decode_gb_s", decode_gbs},
                     {"peak_rss_bytes", rss},            {"weight_bytes", file_bytes}, {"backend", backend_name},
                     {"repack_weights", repack},         {"backend_setup_s", setup_s}};
    if (gpu) j.update({{"device", device.name}, {"device_copy_gb_s", device.copy_gbs}, {"bandwidth_fraction", decode_gbs / device.copy_gbs}});
    std::puts(j.dump().c_str());
  } else {
    if (gpu)
      std::printf("%s (cuda backend on %s)\n", args.require("--model").c_str(), device.name.c_str());
    else
      std::printf("%s (%s kernels, %d threads)\n", args.require("--model").c_str(), std::string(k.name).c_str(), n_threads);
    std::printf("prefill  %6lld tokens  %9.1f tok/s\n", static_cast<long long>(P), prefill_tps);
    std::printf("decode   %6lld tokens  %9.2f tok/s  %.1f MB weights + %.2f MB KV per token = %.2f GB/s\n",
                static_cast<long long>(G), decode_tps, weight_bytes / 1e6, kv_per_token / 1e6, decode_gbs);
    if (gpu)
      std::printf("decode moved %.0f%% of the device's measured copy bandwidth (%.1f GB/s)\n", 100 * decode_gbs / device.copy_gbs,
                  device.copy_gbs);
    else
      std::printf("prefill and decode used %.0f%% and %.0f%% of %d threads' wall time (below 100%%: the cores were shared)\n",
                100 * prefill_cpu_share, 100 * cpu_share, n_threads);
    std::printf("peak RSS %.1f MB (weights %.1f MB); backend set up in %.2f s%s\n", double(rss) / 1e6, double(file_bytes) / 1e6,
                setup_s, gpu ? "" : repack ? " (weights repacked)" : " (weights in the file's layout: --no-repack)");
  }
  return 0;
}

const CommandRegistration reg{"bench", "measure prefill/decode speed, or memory bandwidth (--membw)", &run_bench};

}  // namespace
}  // namespace flashfix::cli
