// flashfix serve --model M.gguf [...]: the embedded engine behind the OpenAI HTTP API (see
// docs/SERVER.md). Prints "listening on http://HOST:PORT" once it accepts connections.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/model_session.h"
#include "engine/engine.h"
#include "server/server.h"

namespace flashfix::cli {
namespace {

const char* kUsage =
    "usage: flashfix serve --model M.gguf [--host 127.0.0.1] [--port 8080] [--api-key-env VAR | --api-key-file F]\n"
    "         [--threads N] [--ctx-size N (8192)] [--parallel N (8)] [--max-queue N (64)]\n"
    "         [--max-body-bytes N (4194304)] [--max-tokens-limit N (4096)] [--cache-dir DIR]\n"
    "         [--no-prefix-cache] [--draft none|mtp|context|auto (auto)] [--draft-max K (4)] [--no-repack]\n"
    "         [--model-name NAME (the file name without .gguf)]\n"
    "Serves POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health and\n"
    "GET /metrics. --port 0 picks a free port. With an API key, /v1/* and /metrics require\n"
    "'Authorization: Bearer KEY'. Stops on SIGINT or SIGTERM.\n";

std::string api_key(const Args& args) {
  if (args.has("--api-key-env") && args.has("--api-key-file"))
    throw UsageError("--api-key-env and --api-key-file are exclusive");
  if (auto var = args.get("--api-key-env")) {
    const char* v = std::getenv(var->c_str());
    if (!v || !*v) throw UsageError("--api-key-env " + *var + ": the variable is not set or empty");
    return v;
  }
  if (auto file = args.get("--api-key-file")) {
    std::string key = read_file(*file);
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
    if (key.empty()) throw UsageError("--api-key-file " + *file + ": the file is empty");
    return key;
  }
  return {};
}

int run_serve(const std::vector<std::string>& argv) {
  Args args(argv, {{"--model", true}, {"--host", true}, {"--port", true}, {"--api-key-env", true}, {"--api-key-file", true},
                   {"--threads", true}, {"--ctx-size", true}, {"--parallel", true}, {"--max-queue", true},
                   {"--max-body-bytes", true}, {"--max-tokens-limit", true}, {"--cache-dir", true},
                   {"--no-prefix-cache", false}, {"--model-name", true}, {"--draft", true}, {"--draft-max", true},
                   {"--no-repack", false}});
  if (args.help()) return std::fputs(kUsage, stdout), 0;
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const std::string model_path = args.require("--model");

  EngineOptions eo;
  eo.threads = int(args.get_int("--threads", 0, 0, 1024));
  eo.n_ctx = args.get_int("--ctx-size", 8192, 16, 1 << 24);
  eo.max_sequences = int(args.get_int("--parallel", 8, 1, 1024));
  eo.prefix_cache = !args.has("--no-prefix-cache");
  eo.repack_weights = !args.has("--no-repack");
  eo.cache_dir = args.get("--cache-dir").value_or("");
  draft_options(args, eo);

  server::ServerOptions so;
  so.host = args.get("--host").value_or("127.0.0.1");
  so.port = int(args.get_int("--port", 8080, 0, 65535));
  so.api_key = api_key(args);
  so.max_queue = args.get_int("--max-queue", 64, 0, 1 << 16);
  so.max_body_bytes = size_t(args.get_int("--max-body-bytes", 4 << 20, 1024, int64_t(1) << 32));
  so.max_tokens_limit = args.get_int("--max-tokens-limit", 4096, 1, 1 << 24);
  so.model_name = args.get("--model-name").value_or(std::filesystem::path(model_path).stem().string());
  if (so.model_name.empty()) throw UsageError("--model-name must not be empty");

  // Signals go to one waiting thread (blocked everywhere else, so every thread created from here
  // inherits the mask); a client that disconnects mid-write must not kill the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto engine = Engine::open(model_path, eo);
  server::Server server(*engine, so);
  const int port = server.bind();
  std::printf("flashfix serve: listening on http://%s:%d (model %s)\n", so.host.c_str(), port, so.model_name.c_str());
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  });
  const bool ok = server.run();
  // run() also returns when listening fails: wake the waiter so it can be joined.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return ok ? 0 : 1;
}

const CommandRegistration reg{"serve", "OpenAI-compatible HTTP server on the embedded engine", &run_serve};

}  // namespace
}  // namespace flashfix::cli
