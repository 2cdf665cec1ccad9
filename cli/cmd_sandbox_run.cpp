// flashfix sandbox-run: runs one command in the sandbox, for people and for tests.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "cli/args.h"
#include "cli/command.h"
#include "sandbox/sandbox.h"

namespace flashfix::cli {
namespace {

// Statuses of the sandbox itself, chosen like timeout(1) and the shells: 124 is timeout's.
constexpr int kTimedOut = 124;
constexpr int kLimit = 123;
constexpr int kSetupFailed = 125;

constexpr const char* kHelp = R"(usage: flashfix sandbox-run [OPTIONS] -- CMD [ARGS...]

Runs CMD isolated: it sees the workspace read-write, system directories and --ro paths read-only,
a private /tmp, and nothing else; it cannot see host processes, has no network unless --network,
and nothing it started survives it. Prints CMD's output and exits with CMD's status.

options:
  --workspace DIR   read-write directory and working directory (default: the current directory)
  --timeout SECONDS wall-clock limit, then SIGTERM, 1 s grace, SIGKILL (default 120)
  --memory SIZE     memory limit, e.g. 512M or 2G (default 2G)
  --pids N          process limit (default 256)
  --network         keep the host network (default: loopback only, AF_INET sockets denied)
  --ro PATH         make PATH visible read-only (repeatable)
  --env NAME        pass NAME from this environment (repeatable; PATH, LANG, TERM always pass)
  --sandbox=MODE    namespaces (default), or none: no namespaces where the kernel refuses them;
                    limits, seccomp and the environment allowlist still apply
stdin: passed to CMD when it is not a terminal; otherwise CMD reads /dev/null.

exit status: CMD's status; 128+N when CMD was killed by signal N; 127 when CMD is not found,
126 when it cannot be executed; 124 timed out; 123 memory, process or output limit hit;
125 the sandbox could not be set up (the reason is printed); 2 usage error.
)";

std::uint64_t size_flag(const Args& args, const std::string& flag, std::uint64_t fallback) {
  auto text = args.get(flag);
  if (!text) return fallback;
  auto size = sandbox::parse_size(*text);
  if (!size || *size == 0) throw UsageError("option " + flag + " expects a size like 512M or 2G, got '" + *text + "'");
  return *size;
}

int run(const std::vector<std::string>& raw) {
  Args args(raw, {{"--workspace", true},
                  {"--timeout", true},
                  {"--memory", true},
                  {"--pids", true},
                  {"--network", false},
                  {"--ro", true, true},
                  {"--env", true, true},
                  {"--sandbox", true}});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args.positional().empty()) throw UsageError("no command given (flashfix sandbox-run [OPTIONS] -- CMD ARGS...)");

  sandbox::Policy policy;
  if (auto ws = args.get("--workspace")) policy.workspace = *ws;
  double timeout = args.get_double("--timeout", 120);
  if (!(timeout > 0) || timeout > 1e6) throw UsageError("option --timeout expects seconds > 0");
  policy.timeout = std::chrono::milliseconds(std::llround(timeout * 1000));
  policy.memory = size_flag(args, "--memory", policy.memory);
  policy.pids = std::uint64_t(args.get_int("--pids", std::int64_t(policy.pids), 1, 1 << 22));
  policy.network = args.has("--network");
  for (const auto& p : args.all("--ro")) policy.read_only.emplace_back(p);
  policy.env_pass = args.all("--env");
  std::string mode = args.get("--sandbox").value_or("namespaces");
  if (mode == "none")
    policy.isolation = sandbox::Isolation::none;
  else if (mode != "namespaces")
    throw UsageError("option --sandbox expects namespaces or none, got '" + mode + "'");

  sandbox::Command command{args.positional(), std::nullopt};
  if (!isatty(STDIN_FILENO))
    command.stdin_data = std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());

  auto result = sandbox::Sandbox::run(command, policy);
  std::fwrite(result.out.data.data(), 1, result.out.data.size(), stdout);
  std::fflush(stdout);
  std::fwrite(result.err.data.data(), 1, result.err.data.size(), stderr);
  auto note = [&](const std::string& what) { std::fprintf(stderr, "flashfix sandbox-run: %s\n", what.c_str()); };
  if (result.out.truncated() || result.err.truncated())
    note("output truncated (" + std::to_string(result.out.cut + result.err.cut) + " bytes cut)");
  switch (result.status) {
    case sandbox::Status::exited: return result.exit_code;
    case sandbox::Status::signaled: return 128 + result.signal;
    case sandbox::Status::timed_out:
      note("timed out; the command and everything it started were killed");
      return kTimedOut;
    case sandbox::Status::memory_limit:
      note("memory limit of " + std::to_string(policy.memory) + " bytes hit (peak " + std::to_string(result.peak_memory) + ", enforced by " +
           std::string(to_string(result.enforcement)) + ")");
      return kLimit;
    case sandbox::Status::process_limit:
      note("process limit of " + std::to_string(policy.pids) + " hit (sampled: " + result.enforcement_note + "); everything was killed");
      return kLimit;
    case sandbox::Status::output_limit:
      note("output limit hit; the command was stopped");
      return kLimit;
    case sandbox::Status::setup_failed:
      note("sandbox setup failed: " + result.error);
      return kSetupFailed;
  }
  return kSetupFailed;
}

const CommandRegistration reg{"sandbox-run", "run a command isolated and bounded (see --help)", &run};

}  // namespace
}  // namespace flashfix::cli
