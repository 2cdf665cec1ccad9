// A cgroup per sandbox run, so that the memory and process limits hold for the whole tree and the
// teardown reaches every member, however it forked or daemonized. cgroup v2 (cgroup.cpp) where the
// caller can create a leaf with the memory and pids controllers; else cgroup v1 (cgroup_v1.cpp)
// where the pids, memory and freezer hierarchies are mounted and writable (hybrid hosts such as
// CI); else none, and the rlimit floor and /proc sampling in the supervisor remain.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sandbox.h"

namespace flashfix::sandbox {

class Cgroup {
 public:
  // v2, else v1; nullptr with *why set (the reasons for both) when neither can be made here.
  static std::unique_ptr<Cgroup> create(const Policy& policy, std::string* why);
  // Kills what is left, waits (bounded) until the groups are empty, and removes them.
  virtual ~Cgroup() = default;

  virtual Enforcement enforcement() const = 0;
  // The keeper writes "0" to each to join, before init and the command exist.
  virtual const std::vector<int>& procs_fds() const = 0;
  virtual void kill() const = 0;  // SIGKILL to every member; they may take a moment to be gone
  virtual bool oom_killed() const = 0;
  virtual std::uint64_t peak_memory() const = 0;  // bytes, 0 when the kernel does not say
};

std::unique_ptr<Cgroup> make_cgroup_v2(const Policy& policy, std::string* why);
std::unique_ptr<Cgroup> make_cgroup_v1(const Policy& policy, std::string* why);

// Small file helpers shared by both versions.
namespace cgroupfs {
std::string read(const std::string& path);  // "" when unreadable
bool write(const std::string& path, std::string_view value);
bool has_item(std::string_view list, std::string_view item, char separator = ' ');
std::optional<std::uint64_t> read_key(const std::string& path, std::string_view key);  // "key value" lines
std::uint64_t read_number(const std::string& path);  // a file holding one number; 0 when absent
// SIGKILLs whoever the cgroup.procs file at `procs` lists until it lists nobody: true once it is
// empty (or gone), false when `deadline` passes first.
bool kill_until_empty(const std::string& procs, std::chrono::steady_clock::time_point deadline);
}  // namespace cgroupfs

}  // namespace flashfix::sandbox
