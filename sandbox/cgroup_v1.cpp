// cgroup v1, for hosts whose cgroup2 mount has no controllers (hybrid hierarchies, as on CI): one
// child group per run in the pids, memory and freezer hierarchies (and cpu for a quota). v1 has no
// cgroup.kill, and a fork bomb forks faster than a loop over cgroup.procs kills, so the teardown
// freezes the group first: frozen, nothing forks, and one pass signals every member.
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

#include "sandbox/cgroup.h"

namespace flashfix::sandbox {
namespace {

using namespace cgroupfs;
using Clock = std::chrono::steady_clock;

// The caller's own group in `controller`'s hierarchy, as a directory, or "" when that hierarchy is
// not mounted. Run groups go below it: the hierarchies are independent, and the caller may sit deep
// in one (a container's memory group), where only its own subtree is meant for it.
std::string own_group(std::string_view controller) {
  std::string path;  // "4:memory:/process_api/<id>" in /proc/self/cgroup
  std::ifstream groups("/proc/self/cgroup");
  for (std::string line; std::getline(groups, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (b != std::string::npos && has_item(std::string_view(line).substr(a + 1, b - a - 1), controller, ','))
      path = line.substr(b + 1);
  }
  if (path.empty()) return {};
  // "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory" in mountinfo; the
  // mount's root is a prefix of our path (it is "/" unless a cgroup namespace mounted a subtree).
  std::ifstream mounts("/proc/self/mountinfo");
  for (std::string line; std::getline(mounts, line);) {
    auto dash = line.find(" - cgroup ");
    if (dash == std::string::npos) continue;
    std::istringstream fields(line.substr(0, dash)), super(line.substr(dash + 3));
    std::string id, parent, dev, root, mountpoint, type, source, options;
    fields >> id >> parent >> dev >> root >> mountpoint;
    super >> type >> source >> options;
    if (!has_item(options, controller, ',') || !path.starts_with(root)) continue;
    std::string rel = root == "/" ? path : path.substr(root.size());
    return mountpoint + (rel == "/" ? "" : rel);
  }
  return {};
}

class CgroupV1 final : public Cgroup {
 public:
  ~CgroupV1() override;
  Enforcement enforcement() const override { return Enforcement::cgroup_v1; }
  const std::vector<int>& procs_fds() const override { return procs_fds_; }
  void kill() const override;
  bool oom_killed() const override;
  std::uint64_t peak_memory() const override { return read_number(memory_ + "/memory.max_usage_in_bytes"); }

 private:
  friend std::unique_ptr<Cgroup> flashfix::sandbox::make_cgroup_v1(const Policy&, std::string*);
  std::string pids_, memory_, freezer_;
  std::vector<std::string> dirs_;  // every group created, the three above and cpu's
  std::vector<int> procs_fds_;
};

void CgroupV1::kill() const {
  if (freezer_.empty()) return;
  std::string state = freezer_ + "/freezer.state";
  // FREEZING until every member has stopped; one in uninterruptible sleep can hold that up, so the
  // wait is bounded and the destructor's loop catches what this pass missed.
  if (write(state, "FROZEN"))
    for (auto until = Clock::now() + std::chrono::milliseconds(500); read(state) != "FROZEN\n" && Clock::now() < until;)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::istringstream in(read(freezer_ + "/cgroup.procs"));
  for (pid_t pid; in >> pid;) ::kill(pid, SIGKILL);
  write(state, "THAWED");  // frozen tasks act on SIGKILL only once thawed
}

bool CgroupV1::oom_killed() const {
  // oom_kill (Linux 4.13+) counts the OOM killer's kills; older kernels only count hits of the
  // limit, which reclaim can also resolve without a kill.
  if (auto kills = read_key(memory_ + "/memory.oom_control", "oom_kill")) return *kills > 0;
  return read_number(memory_ + "/memory.failcnt") > 0;
}

CgroupV1::~CgroupV1() {
  for (int fd : procs_fds_) close(fd);
  kill();
  // A group can only be removed once empty, and the run is over only once nothing is left in it.
  auto deadline = Clock::now() + std::chrono::seconds(5);
  for (const auto& dir : dirs_) {
    kill_until_empty(dir + "/cgroup.procs", deadline);
    rmdir(dir.c_str());
  }
}

}  // namespace

std::unique_ptr<Cgroup> make_cgroup_v1(const Policy& policy, std::string* why) {
  static std::atomic<unsigned> counter{0};
  std::string leaf = "/flashfix-sandbox-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  auto cg = std::make_unique<CgroupV1>();  // removes what was created if a later step fails
  auto fail = [&](const std::string& what) { return *why = "cgroup v1: " + what + ": " + std::strerror(errno), nullptr; };
  auto make = [&](std::string_view controller) -> std::string {
    std::string parent = own_group(controller);
    if (parent.empty()) return errno = ENOENT, std::string();
    std::string dir = parent + leaf;
    if (mkdir(dir.c_str(), 0755) != 0) return {};
    cg->dirs_.push_back(dir);
    int fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return {};
    cg->procs_fds_.push_back(fd);
    return dir;
  };
  if ((cg->pids_ = make("pids")).empty()) return fail("pids group");
  if ((cg->memory_ = make("memory")).empty()) return fail("memory group");
  if ((cg->freezer_ = make("freezer")).empty()) return fail("freezer group");
  if (!write(cg->pids_ + "/pids.max", std::to_string(policy.pids))) return fail("pids.max");
  if (!write(cg->memory_ + "/memory.limit_in_bytes", std::to_string(policy.memory))) return fail("memory.limit_in_bytes");
  // Memory plus swap at the same limit: no swap. Absent without swap accounting.
  std::string memsw = cg->memory_ + "/memory.memsw.limit_in_bytes";
  if (access(memsw.c_str(), F_OK) == 0 && !write(memsw, std::to_string(policy.memory))) return fail("memory.memsw.limit_in_bytes");
  if (policy.cpus > 0) {
    std::string cpu = make("cpu");
    constexpr long period = 100000;
    if (cpu.empty() || !write(cpu + "/cpu.cfs_period_us", std::to_string(period)) ||
        !write(cpu + "/cpu.cfs_quota_us", std::to_string(std::lround(policy.cpus * period))))
      return fail("cpu quota");
  }
  return cg;
}

}  // namespace flashfix::sandbox
