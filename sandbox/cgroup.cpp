#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace flashfix::sandbox {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool write_file(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, value.data(), value.size()) == ssize_t(value.size());
  close(fd);
  return ok;
}

// The cgroup2 mount: /sys/fs/cgroup on unified systems, /sys/fs/cgroup/unified on hybrid ones.
std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    auto dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, dev, root, mountpoint;
    fields >> id >> parent >> dev >> root >> mountpoint;
    return mountpoint;
  }
  return {};
}

bool has_word(const std::string& list, const std::string& word) {
  std::istringstream in(list);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

std::uint64_t read_key(const std::string& path, const std::string& key) {
  std::istringstream in(read_file(path));
  std::string k;
  std::uint64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

}  // namespace

std::optional<Cgroup> Cgroup::create(const Policy& policy, std::string* why) {
  std::string mount = cgroup2_mount();
  if (mount.empty()) return *why = "no cgroup v2 mount", std::nullopt;
  std::string controllers = read_file(mount + "/cgroup.controllers");
  for (const char* c : {"memory", "pids"})
    if (!has_word(controllers, c)) return *why = "cgroup v2 at " + mount + " lacks the " + c + " controller", std::nullopt;
  std::string enable = "+memory +pids";
  if (has_word(controllers, "cpu")) enable += " +cpu";
  // Runs live in <mount>/flashfix-sandbox/<pid>-<n>: directly under the root, which is exempt from
  // the no-internal-processes rule, so this works as root whatever cgroup the caller sits in.
  std::string base = mount + "/flashfix-sandbox";
  if (!write_file(mount + "/cgroup.subtree_control", enable))
    return *why = "cannot enable controllers in " + mount + ": " + std::strerror(errno), std::nullopt;
  if (mkdir(base.c_str(), 0755) != 0 && errno != EEXIST)
    return *why = "cannot create " + base + ": " + std::strerror(errno), std::nullopt;
  if (!write_file(base + "/cgroup.subtree_control", enable))
    return *why = "cannot enable controllers in " + base + ": " + std::strerror(errno), std::nullopt;
  static std::atomic<unsigned> counter{0};
  std::string dir = base + "/" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  if (mkdir(dir.c_str(), 0755) != 0) return *why = "cannot create " + dir + ": " + std::strerror(errno), std::nullopt;
  Cgroup cg(dir);
  bool ok = write_file(dir + "/memory.max", std::to_string(policy.memory)) &&
            write_file(dir + "/pids.max", std::to_string(policy.pids));
  write_file(dir + "/memory.swap.max", "0");  // absent without swap accounting; best effort
  if (ok && policy.cpus > 0) {
    constexpr long period = 100000;
    ok = write_file(dir + "/cpu.max", std::to_string(std::lround(policy.cpus * period)) + " " + std::to_string(period));
  }
  if (ok) cg.procs_fd_ = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (!ok || cg.procs_fd_ < 0) return *why = "cannot configure " + dir + ": " + std::strerror(errno), std::nullopt;
  return cg;
}

Cgroup::Cgroup(Cgroup&& other) noexcept : dir_(std::move(other.dir_)), procs_fd_(other.procs_fd_) {
  other.dir_.clear();
  other.procs_fd_ = -1;
}

void Cgroup::kill() const {
  if (write_file(dir_ + "/cgroup.kill", "1")) return;
  // Before Linux 5.14: signal each member; the PID namespace teardown catches the rest.
  std::istringstream in(read_file(dir_ + "/cgroup.procs"));
  for (pid_t pid; in >> pid;) ::kill(pid, SIGKILL);
}

bool Cgroup::oom_killed() const { return read_key(dir_ + "/memory.events", "oom_kill") > 0; }

std::uint64_t Cgroup::peak_memory() const {
  std::uint64_t peak = 0;
  std::istringstream(read_file(dir_ + "/memory.peak")) >> peak;
  return peak;
}

Cgroup::~Cgroup() {
  if (procs_fd_ >= 0) close(procs_fd_);
  if (dir_.empty()) return;
  kill();
  // The last members may still be exiting; the directory can only go once it is empty.
  for (int i = 0; i < 200 && rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

}  // namespace flashfix::sandbox
