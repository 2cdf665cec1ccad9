// A `flashfix serve` child process for tests: started on a free port (--port 0, read back from its
// "listening on" line), stopped with SIGTERM; exit_status() tells whether it ever crashed.
#pragma once
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashfix::test {

class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args, const std::vector<std::pair<std::string, std::string>>& env = {}) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      args.insert(args.begin(), {FLASHFIX_BIN, "serve"});
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    out_fd_ = out[0];
    // The model loads before the server listens; a tiny model takes well under a second.
    const std::string marker = "listening on http://";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (banner_.find('\n') == std::string::npos) {
      pollfd p{out_fd_, POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline || poll(&p, 1, 1000) < 0) break;
      if (!(p.revents & (POLLIN | POLLHUP))) continue;
      char buf[256];
      const ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) break;
      banner_.append(buf, size_t(n));
    }
    const size_t at = banner_.find(marker);
    if (at == std::string::npos) {
      stop();
      throw std::runtime_error("flashfix serve did not start; stdout: " + banner_);
    }
    const std::string hostport = banner_.substr(at + marker.size());
    port_ = std::stoi(hostport.substr(hostport.find(':') + 1));
  }
  ~ServeProcess() { stop(); }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  bool alive() {
    if (pid_ <= 0) return false;
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = st;
      pid_ = -1;
      return false;
    }
    return true;
  }
  // SIGTERM, then the raw wait status (a clean shutdown is WIFEXITED with 0).
  int stop() {
    if (alive()) {
      kill(pid_, SIGTERM);
      waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    if (out_fd_ >= 0) close(out_fd_), out_fd_ = -1;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = -1;
  int status_ = -1;
  std::string banner_;
};

}  // namespace flashfix::test
