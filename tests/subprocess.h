// Runs a program (usually the flashfix binary) as a child process with its own working folder and
// environment additions, capturing stdout and stderr separately; for end-to-end tests of commands.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace flashfix::test {

struct ProcessResult {
  int status = -1;  // exit status; 128+signal when killed; -1 when it could not start
  std::string out, err;
};

// Runs a shell command line on the host; returns its exit status (128+signal when killed) and its
// stdout + stderr together.
inline std::pair<int, std::string> host_sh(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

inline ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                                 const std::filesystem::path& cwd = {}, int timeout_seconds = 300) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    // Own process group, so a timeout can kill whatever the command started too.
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  ProcessResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      kill(-pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, int(left)) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, size_t(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

inline ProcessResult run_flashfix(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                                  const std::filesystem::path& cwd = {}, int timeout_seconds = 300) {
  std::vector<std::string> argv{FLASHFIX_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, env, cwd, timeout_seconds);
}

// The flashfix binary with its arguments as one command line, split into words by the shell, for
// tests that build their flags by string concatenation (paths without spaces).
inline ProcessResult run_flashfix_line(const std::string& args, int timeout_seconds = 300) {
  return run_process({"/bin/sh", "-c", std::string(FLASHFIX_BIN) + " " + args}, {}, {}, timeout_seconds);
}

}  // namespace flashfix::test
