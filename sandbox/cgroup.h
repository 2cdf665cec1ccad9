// A cgroup v2 leaf per sandbox run: memory.max, pids.max and cpu.max hold for the whole tree, and
// cgroup.kill tears it down in one write. Only where the machine allows it (root, or a delegated
// hierarchy with the controllers enabled); otherwise the rlimit floor and RSS sampling remain.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "sandbox/sandbox.h"

namespace flashfix::sandbox {

class Cgroup {
 public:
  // nullopt with *why set when no cgroup can be made here.
  static std::optional<Cgroup> create(const Policy& policy, std::string* why);
  Cgroup(Cgroup&& other) noexcept;
  Cgroup& operator=(Cgroup&&) = delete;
  ~Cgroup();  // kills what is left and removes the directory

  int procs_fd() const { return procs_fd_; }  // the keeper writes "0" here to join
  void kill() const;
  bool oom_killed() const;
  std::uint64_t peak_memory() const;  // memory.peak (Linux 5.19+), else 0

 private:
  explicit Cgroup(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  int procs_fd_ = -1;
};

}  // namespace flashfix::sandbox
