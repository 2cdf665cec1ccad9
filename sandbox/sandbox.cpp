// The supervisor: prepares everything in the caller's process, forks the keeper, then captures
// output and enforces the timeout, the output cap and (without a cgroup) the memory limit.
//
// Process tree:  caller (supervisor) ── keeper ── init (PID 1 inside) ── command ── ...
// The keeper enters the namespaces (a process cannot enter a new PID namespace itself, only its
// children can) and stays behind to forward signals and to be the supervisor's child: it exits
// only after init, and init exits only after everything in the namespace is gone.
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "sandbox/cgroup.h"
#include "sandbox/init.h"
#include "sandbox/output.h"
#include "sandbox/seccomp_filter.h"

namespace flashfix::sandbox {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kSampleEvery{20};  // memory sampling without a cgroup

int pidfd_open(pid_t pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int sig) { return int(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0)); }

// ---- keeper ----------------------------------------------------------------------------------

volatile sig_atomic_t g_init_pidfd = -1;

// SIGTERM: pass on to init (the graceful step). SIGUSR1: kill init, which takes the whole PID
// namespace with it. Before init exists there is nothing to spare, so the keeper just exits.
void keeper_signal(int sig) {
  if (g_init_pidfd < 0) _exit(128 + sig);
  pidfd_send_signal(g_init_pidfd, sig == SIGUSR1 ? SIGKILL : SIGTERM);
}

// Closes every descriptor but `keep`: other threads of the caller may have fork'ed descriptors of
// other runs open, and a held write end would keep that run's pipes from ending.
void close_other_fds(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned next = 0;
  for (int fd : keep) {
    if (fd < 0) continue;
    if (unsigned(fd) > next) syscall(SYS_close_range, next, unsigned(fd) - 1, 0);
    next = unsigned(fd) + 1;
  }
  syscall(SYS_close_range, next, ~0u, 0);
}

[[noreturn]] void keeper_main(InitPlan& plan, pid_t supervisor, const std::vector<int>& cgroup_fds) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // die with the caller ...
  if (getppid() != supervisor) _exit(1);  // ... even if it died before the line above
  setsid();
  struct sigaction sa{};
  sa.sa_handler = keeper_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  std::vector<int> keep{plan.stdin_fd, plan.stdout_fd, plan.stderr_fd, plan.report_fd};
  keep.insert(keep.end(), cgroup_fds.begin(), cgroup_fds.end());
  close_other_fds(keep);
  // Joined before init exists, so init, the command and everything they start are members.
  for (int fd : cgroup_fds) {
    if (write(fd, "0", 1) != 1) {
      write_report(plan.report_fd, Report::setup_failed, 0, "joining the cgroup: " + std::string(strerror(errno)));
      _exit(1);
    }
    close(fd);
  }
  if (plan.namespaces) {
    if (auto err = enter_namespaces(plan.network, geteuid(), getegid()); !err.empty()) {
      write_report(plan.report_fd, Report::setup_failed, 0, err);
      _exit(1);
    }
  }
  pid_t self = getpid();
  pid_t init = fork();
  if (init < 0) {
    write_report(plan.report_fd, Report::setup_failed, 0, "fork of init: " + std::string(strerror(errno)));
    _exit(1);
  }
  if (init == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // init dies with the keeper, and the namespace with init
    // Inside a new PID namespace the parent is invisible (getppid() is 0), so the check that the
    // keeper has not died already only works without one.
    if (!plan.namespaces && getppid() != self) _exit(1);
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    init_main(plan);
  }
  g_init_pidfd = pidfd_open(init);
  int status;
  while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
  }
  _exit(0);
}

// ---- supervisor ------------------------------------------------------------------------------

// Resident memory and size of a process tree, from /proc: the floor for the memory and process
// limits without a cgroup. (RLIMIT_NPROC does not bind a caller that is root on the host: the
// kernel exempts its user, whatever the user namespace.)
struct TreeUsage {
  std::uint64_t rss = 0, processes = 0;
};

TreeUsage tree_usage(pid_t root) {
  static const long page = sysconf(_SC_PAGESIZE);
  TreeUsage usage;
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    pid_t pid = todo.back();
    todo.pop_back();
    std::string base = "/proc/" + std::to_string(pid);
    std::uint64_t size = 0, resident = 0;
    if (std::ifstream(base + "/statm") >> size >> resident) usage.rss += resident * std::uint64_t(page);
    ++usage.processes;
    if (DIR* tasks = opendir((base + "/task").c_str())) {
      while (dirent* t = readdir(tasks)) {
        if (t->d_name[0] == '.') continue;
        std::ifstream in(base + "/task/" + t->d_name + "/children");
        for (pid_t kid; in >> kid;) todo.push_back(kid);
      }
      closedir(tasks);
    }
  }
  return usage;
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  void reset() { *this = Fd(); }
};

struct Pipe {
  Fd read, write;
};

Pipe make_pipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + strerror(errno));
  return {Fd(p[0]), Fd(p[1])};
}

Fd make_stdin(const Command& command) {
  if (!command.stdin_data) return Fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  // A memfd, not a pipe: nothing to pump, no SIGPIPE, no deadlock when the command never reads.
  Fd fd(memfd_create("flashfix-stdin", MFD_CLOEXEC));
  const std::string& data = *command.stdin_data;
  for (size_t done = 0; fd.fd >= 0 && done < data.size();) {
    ssize_t n = write(fd.fd, data.data() + done, data.size() - done);
    if (n <= 0) throw std::runtime_error(std::string("writing stdin: ") + strerror(errno));
    done += size_t(n);
  }
  if (fd.fd < 0 || lseek(fd.fd, 0, SEEK_SET) != 0) throw std::runtime_error(std::string("stdin: ") + strerror(errno));
  return fd;
}

std::vector<std::string> make_env(const Policy& policy) {
  std::vector<std::pair<std::string, std::string>> vars;
  auto set = [&](const std::string& name, const std::string& value) {
    std::erase_if(vars, [&](const auto& v) { return v.first == name; });
    vars.emplace_back(name, value);
  };
  const char* path = getenv("PATH");
  set("PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
  set("HOME", "/tmp");
  std::vector<std::string> pass{"LANG", "TERM"};
  pass.insert(pass.end(), policy.env_pass.begin(), policy.env_pass.end());
  for (const auto& name : pass)
    if (const char* value = getenv(name.c_str())) set(name, value);
  for (const auto& [name, value] : policy.env_set) set(name, value);
  std::vector<std::string> env;
  for (const auto& [name, value] : vars) env.push_back(name + "=" + value);
  return env;
}

// Reads what is there without blocking; false at end of file.
bool drain(int fd, OutputCapture& capture) {
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      capture.append({buf, size_t(n)});
      if (size_t(n) < sizeof buf) return true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0;  // EAGAIN: open, nothing now; 0: closed
  }
}

std::string canonical_dir(const fs::path& path, const char* what, bool must_be_dir) {
  std::error_code ec;
  auto canon = fs::canonical(path, ec);
  if (ec) throw std::runtime_error(std::string(what) + " " + path.string() + ": " + ec.message());
  if (must_be_dir && !fs::is_directory(canon)) throw std::runtime_error(std::string(what) + " " + path.string() + " is not a directory");
  return canon.string();
}

}  // namespace

std::string_view to_string(Status s) {
  switch (s) {
    case Status::exited: return "exited";
    case Status::signaled: return "signaled";
    case Status::timed_out: return "timed out";
    case Status::memory_limit: return "memory limit";
    case Status::output_limit: return "output limit";
    case Status::process_limit: return "process limit";
    case Status::setup_failed: return "setup failed";
  }
  return "?";
}

std::string_view to_string(Enforcement e) {
  switch (e) {
    case Enforcement::cgroup_v2: return "cgroup v2";
    case Enforcement::cgroup_v1: return "cgroup v1";
    case Enforcement::sampling: return "rlimits and sampling";
  }
  return "?";
}

Result Sandbox::run(const Command& command, const Policy& policy) {
  const auto start = Clock::now();
  Result result;
  InitPlan plan;
  Pipe out, err, report;
  Fd stdin_fd;
  std::unique_ptr<Cgroup> cgroup;
  try {
    if (command.argv.empty() || command.argv.front().empty()) throw std::runtime_error("no command given");
    if (policy.output_keep < 2) throw std::runtime_error("output_keep must be at least 2 bytes");
    if (policy.timeout.count() <= 0) throw std::runtime_error("the timeout must be positive");
    if (policy.memory == 0 || policy.pids == 0) throw std::runtime_error("memory and pids limits must be positive");
    std::string workspace = canonical_dir(policy.workspace.empty() ? fs::current_path() : policy.workspace, "workspace", true);
    if (workspace == "/") throw std::runtime_error("the workspace cannot be /");
    std::vector<std::string> read_only;
    for (const auto& p : policy.read_only) read_only.push_back(canonical_dir(p, "read-only path", false));
    cgroup = Cgroup::create(policy, &result.enforcement_note);
    if (cgroup) {
      result.enforcement = cgroup->enforcement();
      result.enforcement_note.clear();
    }
    plan.argv = command.argv;
    plan.env = make_env(policy);
    plan.namespaces = policy.isolation == Isolation::namespaces;
    plan.network = policy.network;
    plan.mounts = make_mount_plan(workspace, read_only, policy.tmp_size);
    plan.rlimits = rlimits_for(policy, cgroup != nullptr);
    plan.seccomp = &seccomp_program(policy.network);
    out = make_pipe();
    err = make_pipe();
    report = make_pipe();
    stdin_fd = make_stdin(command);
  } catch (const std::exception& e) {
    result.error = e.what();
    return result;
  }
  for (int fd : {out.read.fd, err.read.fd, report.read.fd}) fcntl(fd, F_SETFL, O_NONBLOCK);
  fcntl(out.write.fd, F_SETPIPE_SZ, 1 << 20);  // fewer wakeups when a command floods
  fcntl(err.write.fd, F_SETPIPE_SZ, 1 << 20);
  plan.stdin_fd = stdin_fd.fd;
  plan.stdout_fd = out.write.fd;
  plan.stderr_fd = err.write.fd;
  plan.report_fd = report.write.fd;

  pid_t supervisor = getpid();
  pid_t keeper = fork();
  if (keeper < 0) {
    result.error = std::string("fork: ") + strerror(errno);
    return result;
  }
  if (keeper == 0) keeper_main(plan, supervisor, cgroup ? cgroup->procs_fds() : std::vector<int>{});
  out.write.reset();
  err.write.reset();
  report.write.reset();
  stdin_fd.reset();
  Fd keeper_fd(pidfd_open(keeper));

  OutputCapture out_cap(policy.output_keep), err_cap(policy.output_keep);
  std::string report_bytes;
  std::optional<Status> forced;
  std::optional<Clock::time_point> kill_at, hard_kill_at;
  const auto deadline = start + policy.timeout;
  auto next_sample = start + kSampleEvery;
  std::uint64_t sampled_peak = 0;
  // Graceful first (init passes SIGTERM on), then SIGKILL through the keeper, which it may miss
  // while it starts up: so it is repeated, and after ten seconds the keeper itself is killed. The
  // keeper returns only once init and the whole PID namespace are gone, so waiting for it is the
  // guarantee that nothing remains; a fork bomb takes a moment to die on two cores.
  auto stop = [&](Status why, bool graceful) {
    if (!forced) forced = why;
    if (graceful) {
      kill(keeper, SIGTERM);
      kill_at = Clock::now() + policy.kill_grace;
      return;
    }
    if (cgroup) cgroup->kill();
    kill(keeper, SIGUSR1);
    if (!hard_kill_at) hard_kill_at = Clock::now() + milliseconds(10000);
  };

  bool keeper_done = false;
  pollfd fds[4] = {{out.read.fd, POLLIN, 0}, {err.read.fd, POLLIN, 0}, {report.read.fd, POLLIN, 0}, {keeper_fd.fd, POLLIN, 0}};
  while (!keeper_done) {
    auto now = Clock::now();
    auto wake = hard_kill_at ? now + milliseconds(50) : kill_at.value_or(deadline);
    if (!cgroup) wake = std::min(wake, next_sample);
    int wait_ms = int(std::clamp<long long>(std::chrono::ceil<milliseconds>(wake - now).count(), 0, 1000));
    if (poll(fds, 4, keeper_fd.fd >= 0 ? wait_ms : std::min(wait_ms, 10)) < 0 && errno != EINTR) break;
    if (fds[0].revents && !drain(fds[0].fd, out_cap)) fds[0].fd = -1;
    if (fds[1].revents && !drain(fds[1].fd, err_cap)) fds[1].fd = -1;
    if (fds[2].revents) {
      char buf[sizeof(Report)];
      ssize_t n = read(fds[2].fd, buf, sizeof buf);
      if (n > 0) report_bytes.append(buf, size_t(n));
      if (n == 0) fds[2].fd = -1;
    }
    keeper_done = keeper_fd.fd >= 0 ? fds[3].revents != 0 : waitpid(keeper, nullptr, WNOHANG | WNOWAIT) == keeper;
    if (keeper_done) break;
    now = Clock::now();
    if (out_cap.total() > policy.output_stop || err_cap.total() > policy.output_stop) stop(Status::output_limit, false);
    if (!forced && now >= deadline) stop(Status::timed_out, true);
    if (kill_at && now >= *kill_at) stop(Status::timed_out, false);
    if (hard_kill_at) kill(keeper, now >= *hard_kill_at ? SIGKILL : SIGUSR1);  // until it is gone
    if (!cgroup && !forced && now >= next_sample) {  // once stopping, walking /proc only slows the teardown
      TreeUsage usage = tree_usage(keeper);
      sampled_peak = std::max(sampled_peak, usage.rss);
      if (usage.rss > policy.memory) stop(Status::memory_limit, false);
      if (usage.processes > policy.pids + 2) stop(Status::process_limit, false);  // + keeper, init
      next_sample = now + kSampleEvery;
    }
  }

  int status = 0;
  rusage usage{};
  while (wait4(keeper, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  // The keeper can be gone before the rest of the tree (killed by the cgroup, or after the ten
  // seconds above); the cgroup's teardown waits until every member is gone, and is part of the run.
  bool oom_killed = cgroup && cgroup->oom_killed();
  std::uint64_t cgroup_peak = cgroup ? cgroup->peak_memory() : 0;
  cgroup.reset();
  result.wall = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  // Everything in the sandbox is gone, so whatever it wrote is already in the pipes.
  if (fds[0].fd >= 0) drain(fds[0].fd, out_cap);
  if (fds[1].fd >= 0) drain(fds[1].fd, err_cap);
  for (char buf[sizeof(Report)];;) {
    ssize_t n = read(report.read.fd, buf, sizeof buf);
    if (n <= 0) break;
    report_bytes.append(buf, size_t(n));
  }
  result.out = out_cap.finish();
  result.err = err_cap.finish();
  result.cpu = std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  result.peak_memory = std::max<std::uint64_t>(std::uint64_t(usage.ru_maxrss) * 1024, sampled_peak);
  result.peak_memory = std::max(result.peak_memory, cgroup_peak);

  Report r{};
  bool have_report = report_bytes.size() >= sizeof r;
  if (have_report) std::memcpy(&r, report_bytes.data(), sizeof r);
  if (have_report && r.kind == Report::setup_failed) {
    result.status = Status::setup_failed;
    result.error = r.message;
    return result;
  }
  if (have_report) {
    result.status = r.kind == Report::signaled ? Status::signaled : Status::exited;
    (r.kind == Report::signaled ? result.signal : result.exit_code) = r.value;
  }
  bool succeeded = have_report && r.kind == Report::exited && r.value == 0;
  bool over_memory = result.enforcement == Enforcement::sampling ? result.peak_memory > policy.memory : oom_killed;
  if (forced)
    result.status = *forced;
  else if (over_memory && !succeeded)
    result.status = Status::memory_limit;
  else if (!have_report) {
    result.status = Status::setup_failed;
    result.error = "the sandbox's init ended without a report (wait status " + std::to_string(status) + ")";
  }
  return result;
}

}  // namespace flashfix::sandbox
