// Namespaces and the sandbox's file system view. The keeper enters the namespaces (user first, so
// the rest is allowed unprivileged); the sandbox's init, PID 1 of the new PID namespace, builds the
// root: system directories read-only, the workspace read-write, a private /tmp, /dev and /proc.
#pragma once
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace flashfix::sandbox {

// Everything the child needs, resolved in the supervisor so the child only makes system calls.
struct MountPlan {
  std::vector<std::string> system_dirs;                       // bound read-only
  std::vector<std::pair<std::string, std::string>> symlinks;  // path, target (merged /usr)
  std::string workspace;                                      // canonical, bound read-write
  std::vector<std::string> read_only;                         // canonical, bound read-only
  std::vector<std::string> masked;                            // /dev/null bound over these files
  unsigned long long tmp_size = 0;
};

MountPlan make_mount_plan(const std::string& workspace, const std::vector<std::string>& read_only,
                          unsigned long long tmp_size);

// In the keeper: creates the user namespace (mapping uid/gid to root inside) and then the mount,
// PID, IPC, UTS, cgroup and, without network, network namespaces. Returns an error or "".
std::string enter_namespaces(bool network, uid_t uid, gid_t gid);

// In init (PID 1): builds the root, pivots into it, enters the workspace. Returns an error or "".
std::string build_root(const MountPlan& plan, bool network);

}  // namespace flashfix::sandbox
