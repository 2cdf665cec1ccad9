#include "sandbox/init.h"

#include <dirent.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Boost 1.81's process/v2 with BOOST_PROCESS_USE_STD_FS forgets this include.
#include <boost/optional.hpp>
// clang-format off
#include <boost/asio/io_context.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
// clang-format on
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "sandbox/seccomp_filter.h"

namespace flashfix::sandbox {
namespace bp = boost::process::v2;
namespace {

volatile sig_atomic_t g_command = 0;
volatile sig_atomic_t g_pid_namespace = 0;

// A timeout's SIGTERM, forwarded by the keeper: PID 1 passes it to everything in the namespace;
// without one, to the command's session (it called setsid).
void forward_term(int) {
  if (g_pid_namespace)
    kill(-1, SIGTERM);
  else if (g_command)
    kill(-g_command, SIGTERM);
}

// Runs in the command's process after fork, before exec: the last steps that must not apply to
// init itself. Boost reports a failure here as a failed launch.
struct Confine {
  const InitPlan& plan;
  template <typename Launcher>
  bp::error_code on_exec_setup(Launcher&, const std::filesystem::path&, const char* const*&) {
    auto fail = [](const char* step, int err) {
      char line[160];
      int n = snprintf(line, sizeof line, "flashfix sandbox: %s failed: %s\n", step, strerror(err));
      if (n > 0) (void)!write(STDERR_FILENO, line, size_t(n));
      errno = err;
      return bp::error_code(err, bp::system_category());
    };
    signal(SIGTERM, SIG_DFL);
    // A new session: no controlling terminal, so nothing can push input into the caller's (TIOCSTI).
    if (setsid() < 0) return fail("setsid", errno);
    if (int err = apply_rlimits(plan.rlimits)) return fail("setrlimit", err);
    // Below the supervisor, keeper and init: under a fork bomb they still get the CPU to kill it.
    if (setpriority(PRIO_PROCESS, 0, 10) != 0) return fail("setpriority", errno);
    if (int err = drop_capabilities()) return fail("dropping capabilities", err);
    if (int err = install_seccomp(*plan.seccomp)) return fail("installing the seccomp filter", err);
    // Boost 1.81's close_all skips the gaps between kept descriptors; close-on-exec covers them.
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) return fail("close_range", errno);
    return {};
  }
};

std::vector<pid_t> children_of_self() {
  std::vector<pid_t> kids;
  std::string self = std::to_string(getpid());
  std::ifstream in("/proc/self/task/" + self + "/children");
  for (pid_t pid; in >> pid;) kids.push_back(pid);
  return kids;
}

// Nothing may outlive the command. Orphans are reparented to init (PID 1, or the subreaper), so
// killing init's children until none is left reaches every descendant, however it daemonized.
void kill_everything_else() {
  if (g_pid_namespace) kill(-1, SIGKILL);
  for (;;) {
    for (pid_t kid : children_of_self()) kill(kid, SIGKILL);
    if (waitpid(-1, nullptr, 0) < 0 && errno == ECHILD) return;
  }
}

// PATH search like execvp's, in the sandbox's PATH. (Boost's find_executable would do, but its
// header does not compile in Boost 1.81 with std::filesystem.)
std::filesystem::path find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string_view dirs = path ? path : "";
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs.remove_prefix(colon == std::string_view::npos ? dirs.size() : colon + 1);
    std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

int launch(InitPlan& plan, const std::string& name) {
  std::filesystem::path exe = find_executable(name);
  auto say = [&](const std::string& what) {
    std::string line = "flashfix sandbox: " + name + ": " + what + "\n";
    (void)!write(plan.stderr_fd, line.data(), line.size());
  };
  if (exe.empty() || access(exe.c_str(), F_OK) != 0) {
    say("command not found");
    return -127;
  }
  if (!std::filesystem::is_regular_file(exe) || access(exe.c_str(), X_OK) != 0) {
    say("cannot execute: permission denied");
    return -126;
  }
  boost::asio::io_context ctx;
  bp::error_code ec;
  std::vector<std::string> args(plan.argv.begin() + 1, plan.argv.end());
  auto proc = bp::default_process_launcher()(ctx.get_executor(), ec, exe, args,
                                             bp::process_stdio{plan.stdin_fd, plan.stdout_fd, plan.stderr_fd},
                                             Confine{plan});
  if (ec == std::errc::no_such_file_or_directory) {
    say("command not found");
    return -127;
  }
  if (ec == std::errc::permission_denied || ec == std::errc::executable_format_error ||
      ec == std::errc::is_a_directory) {
    say("cannot execute: " + ec.message());
    return -126;
  }
  if (ec) {
    write_report(plan.report_fd, Report::setup_failed, 0, "starting the command failed: " + ec.message());
    _exit(1);
  }
  int pid = proc.id();
  proc.detach();  // init reaps it below, together with every orphan
  return pid;
}

}  // namespace

void write_report(int fd, Report::Kind kind, int value, std::string_view message) {
  Report r{kind, value, {}};
  std::memcpy(r.message, message.data(), std::min(message.size(), sizeof r.message - 1));
  (void)!write(fd, &r, sizeof r);
}

void init_main(InitPlan& plan) {
  prctl(PR_SET_DUMPABLE, 0);  // the command cannot read init's memory or environment
  g_pid_namespace = plan.namespaces;
  if (plan.namespaces) {
    if (auto err = build_root(plan.mounts, plan.network); !err.empty()) {
      write_report(plan.report_fd, Report::setup_failed, 0, err);
      _exit(1);
    }
  } else {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (chdir(plan.mounts.workspace.c_str()) != 0) {
      write_report(plan.report_fd, Report::setup_failed, 0, "entering the workspace: " + std::string(strerror(errno)));
      _exit(1);
    }
  }
  struct sigaction sa{};
  sa.sa_handler = forward_term;
  sigaction(SIGTERM, &sa, nullptr);

  // The command's environment is exactly the allowlist; find_executable searches its PATH.
  clearenv();
  for (auto& entry : plan.env) putenv(entry.data());

  int pid = launch(plan, plan.argv.front());
  int status = 0;
  if (pid > 0) {
    g_command = pid;
    while (true) {
      pid_t done = waitpid(-1, &status, 0);
      if (done == pid || (done < 0 && errno == ECHILD)) break;
    }
  }
  kill_everything_else();
  if (pid < 0)
    write_report(plan.report_fd, Report::exited, -pid, "");
  else if (WIFSIGNALED(status))
    write_report(plan.report_fd, Report::signaled, WTERMSIG(status), "");
  else
    write_report(plan.report_fd, Report::exited, WEXITSTATUS(status), "");
  _exit(0);
}

}  // namespace flashfix::sandbox
