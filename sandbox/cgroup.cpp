// cgroup v2: one leaf per run with memory.max, pids.max and cpu.max; cgroup.kill tears it down in
// one write. Also the choice between v2 and v1, and the file helpers both use.
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

namespace cgroupfs {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool write(const std::string& path, std::string_view value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, value.data(), value.size()) == ssize_t(value.size());
  int err = errno;
  close(fd);
  errno = err;  // callers report why a write failed
  return ok;
}

bool has_item(std::string_view list, std::string_view item, char separator) {
  while (!list.empty()) {
    const char stops[] = {separator, '\n', '\0'};
    auto end = list.find_first_of(stops);
    if (list.substr(0, end) == item) return true;
    list.remove_prefix(end == std::string_view::npos ? list.size() : end + 1);
  }
  return false;
}

std::optional<std::uint64_t> read_key(const std::string& path, std::string_view key) {
  std::istringstream in(read(path));
  std::string k;
  std::uint64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return std::nullopt;
}

std::uint64_t read_number(const std::string& path) {
  std::uint64_t v = 0;
  std::istringstream(read(path)) >> v;
  return v;
}

bool kill_until_empty(const std::string& procs, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    std::istringstream in(read(procs));
    bool empty = true;
    for (pid_t pid; in >> pid; empty = false) ::kill(pid, SIGKILL);
    if (empty) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace cgroupfs

namespace {

using namespace cgroupfs;

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

class CgroupV2 final : public Cgroup {
 public:
  explicit CgroupV2(std::string dir) : dir_(std::move(dir)) {}
  ~CgroupV2() override;
  Enforcement enforcement() const override { return Enforcement::cgroup_v2; }
  const std::vector<int>& procs_fds() const override { return procs_fds_; }
  void kill() const override;
  bool oom_killed() const override { return read_key(dir_ + "/memory.events", "oom_kill").value_or(0) > 0; }
  std::uint64_t peak_memory() const override { return read_number(dir_ + "/memory.peak"); }  // Linux 5.19+

 private:
  friend std::unique_ptr<Cgroup> flashfix::sandbox::make_cgroup_v2(const Policy&, std::string*);
  std::string dir_;
  std::vector<int> procs_fds_;
};

void CgroupV2::kill() const {
  if (write(dir_ + "/cgroup.kill", "1")) return;
  // Before Linux 5.14: signal each member; the PID namespace teardown catches the rest.
  std::istringstream in(read(dir_ + "/cgroup.procs"));
  for (pid_t pid; in >> pid;) ::kill(pid, SIGKILL);
}

CgroupV2::~CgroupV2() {
  for (int fd : procs_fds_) close(fd);
  kill();
  // The last members may still be exiting; the directory can only go once it is empty.
  kill_until_empty(dir_ + "/cgroup.procs", std::chrono::steady_clock::now() + std::chrono::seconds(5));
  rmdir(dir_.c_str());
}

}  // namespace

std::unique_ptr<Cgroup> make_cgroup_v2(const Policy& policy, std::string* why) {
  std::string mount = cgroup2_mount();
  if (mount.empty()) return *why = "no cgroup v2 mount", nullptr;
  std::string controllers = read(mount + "/cgroup.controllers");
  for (const char* c : {"memory", "pids"})
    if (!has_item(controllers, c)) return *why = "cgroup v2 at " + mount + " lacks the " + c + " controller", nullptr;
  std::string enable = "+memory +pids";
  if (has_item(controllers, "cpu")) enable += " +cpu";
  // Runs live in <mount>/flashfix-sandbox/<pid>-<n>: directly under the root, which is exempt from
  // the no-internal-processes rule, so this works as root whatever cgroup the caller sits in.
  std::string base = mount + "/flashfix-sandbox";
  if (!write(mount + "/cgroup.subtree_control", enable))
    return *why = "cannot enable controllers in " + mount + ": " + std::strerror(errno), nullptr;
  if (mkdir(base.c_str(), 0755) != 0 && errno != EEXIST)
    return *why = "cannot create " + base + ": " + std::strerror(errno), nullptr;
  if (!write(base + "/cgroup.subtree_control", enable))
    return *why = "cannot enable controllers in " + base + ": " + std::strerror(errno), nullptr;
  static std::atomic<unsigned> counter{0};
  std::string dir = base + "/" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  if (mkdir(dir.c_str(), 0755) != 0) return *why = "cannot create " + dir + ": " + std::strerror(errno), nullptr;
  auto cg = std::make_unique<CgroupV2>(dir);
  bool ok = write(dir + "/memory.max", std::to_string(policy.memory)) &&
            write(dir + "/pids.max", std::to_string(policy.pids));
  write(dir + "/memory.swap.max", "0");  // absent without swap accounting; best effort
  if (ok && policy.cpus > 0) {
    constexpr long period = 100000;
    ok = write(dir + "/cpu.max", std::to_string(std::lround(policy.cpus * period)) + " " + std::to_string(period));
  }
  int fd = ok ? open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC) : -1;
  if (fd < 0) return *why = "cannot configure " + dir + ": " + std::strerror(errno), nullptr;
  cg->procs_fds_.push_back(fd);
  return cg;
}

std::unique_ptr<Cgroup> Cgroup::create(const Policy& policy, std::string* why) {
  std::string why_v2, why_v1;
  if (auto cg = make_cgroup_v2(policy, &why_v2)) return cg;
  if (auto cg = make_cgroup_v1(policy, &why_v1)) return cg;
  *why = why_v2 + "; " + why_v1;
  return nullptr;
}

}  // namespace flashfix::sandbox
