// Runs a command that a model wrote so that it can work on the workspace and nothing else, with
// bounded time, memory, processes, disk and output, and leaves nothing running afterwards.
// docs/SANDBOX.md lists the promises and the tests that check each one.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flashfix::sandbox {

struct Command {
  std::vector<std::string> argv;          // argv[0] is looked up in PATH inside the sandbox
  std::optional<std::string> stdin_data;  // nullopt: stdin is /dev/null
};

enum class Isolation {
  namespaces,  // user, mount, PID, network, IPC, UTS and cgroup namespaces (the default)
  none,        // the explicit opt-out where the kernel refuses namespaces: limits, seccomp and
               // the environment allowlist still apply, the file system and PIDs are shared
};

struct Policy {
  std::filesystem::path workspace;              // read-write, the command's working directory
  std::vector<std::filesystem::path> read_only; // further host paths, visible read-only
  bool network = false;                         // false: a network namespace with loopback only
  Isolation isolation = Isolation::namespaces;

  std::chrono::milliseconds timeout{120'000};   // wall clock; then SIGTERM, grace, SIGKILL
  std::chrono::milliseconds kill_grace{1'000};
  std::uint64_t cpu_seconds = 0;                // RLIMIT_CPU; 0: the timeout rounded up
  std::uint64_t memory = 2ull << 30;            // the cgroup's limit, or the sampled RSS of the tree
  std::uint64_t address_space = 0;              // RLIMIT_AS; 0: twice `memory` without cgroup, unlimited with
  std::uint64_t pids = 256;                     // the cgroup's limit, else RLIMIT_NPROC and sampling
  double cpus = 0;                              // a cgroup CPU quota in CPUs; 0: none
  std::uint64_t file_size = 1ull << 30;         // RLIMIT_FSIZE
  std::uint64_t open_files = 1024;              // RLIMIT_NOFILE
  std::uint64_t tmp_size = 256ull << 20;        // the private /tmp (and /dev/shm) tmpfs

  std::size_t output_keep = 1u << 20;           // bytes kept per stream: half head, half tail
  std::uint64_t output_stop = 256ull << 20;     // a stream this long stops the command

  std::vector<std::string> env_pass;            // names copied from the caller besides PATH, LANG, TERM
  std::vector<std::pair<std::string, std::string>> env_set;  // set explicitly, last wins
};

enum class Status {
  exited,        // exit_code holds the status; 127: not found, 126: not executable
  signaled,      // signal holds the signal
  timed_out,     // the wall-clock timeout passed and the tree was killed
  memory_limit,  // the memory limit was hit (cgroup OOM kill, or the sampled/peak RSS passed it)
  output_limit,  // a stream passed output_stop and the tree was killed
  process_limit, // sampling only: the sampled tree had more than `pids` processes and was killed
                 // (a cgroup's pids.max makes forks fail instead, which ends in timed_out or exited)
  setup_failed,  // the sandbox could not be built; error says why, nothing ran
};

std::string_view to_string(Status s);

// What held the memory and process limits for the whole tree and tore it down.
enum class Enforcement {
  cgroup_v2,  // memory.max, pids.max, cpu.max; cgroup.kill
  cgroup_v1,  // pids, memory, freezer (and cpu) v1 groups; freeze, kill, thaw, wait until empty
  sampling,   // neither could be made: rlimits plus the tree's RSS and size sampled every 20 ms,
              // which a fast allocator or fork bomb can outrun (and host root ignores RLIMIT_NPROC)
};

std::string_view to_string(Enforcement e);

// Captured output: the head and the tail of a stream, with a marker in between when cut.
struct Output {
  std::string data;
  std::uint64_t total = 0;  // bytes the command wrote
  std::uint64_t cut = 0;    // bytes dropped from the middle
  bool truncated() const { return cut != 0; }
};

struct Result {
  Status status = Status::setup_failed;
  int exit_code = -1;
  int signal = 0;
  std::string error;  // setup_failed: the reason; otherwise empty
  Output out, err;
  std::chrono::microseconds wall{0};
  std::chrono::microseconds cpu{0};  // user + system of the whole tree
  std::uint64_t peak_memory = 0;     // bytes
  Enforcement enforcement = Enforcement::sampling;
  std::string enforcement_note;      // sampling: why no cgroup could be made
  bool ok() const { return status == Status::exited && exit_code == 0; }
};

class Sandbox {
 public:
  // Blocks until the command and everything it started are gone. Never throws for the command's
  // behaviour; a bad policy or a kernel refusal comes back as Status::setup_failed.
  static Result run(const Command& command, const Policy& policy);
};

// "512M", "2G", "100k", "4096": binary multiples; nullopt when malformed or overflowing.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace flashfix::sandbox
