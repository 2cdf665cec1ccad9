#include "sandbox/namespaces.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace flashfix::sandbox {
namespace fs = std::filesystem;
namespace {

// Where the kernel says no, say what is missing and what the explicit way out is.
constexpr const char* kRefusedHint =
    " — the kernel or the container refuses this namespace operation; the sandbox needs user namespaces "
    "(unprivileged ones: user.max_user_namespaces > 0 and kernel.unprivileged_userns_clone=1; or "
    "CAP_SYS_ADMIN) and a fully visible /proc. To run without isolation, choose it explicitly with --sandbox=none";

std::string failed(const std::string& what) { return what + ": " + std::strerror(errno); }

bool write_proc(const char* path, const std::string& value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, value.data(), value.size()) == ssize_t(value.size());
  close(fd);
  return ok;
}

std::string mkdirs(const std::string& path) {
  std::string partial;
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) return failed("mkdir " + partial);
  }
  return {};
}

// A mount point of the same kind as the source: a directory, or an empty file.
std::string make_mountpoint(const std::string& target, bool dir) {
  if (dir) return mkdirs(target);
  if (auto err = mkdirs(target.substr(0, target.rfind('/'))); !err.empty()) return err;
  int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno != EROFS && errno != EEXIST) return failed("create " + target);
  if (fd >= 0) close(fd);
  return {};
}

std::string set_readonly(const std::string& target, bool recursive) {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (mount_setattr(AT_FDCWD, target.c_str(), recursive ? AT_RECURSIVE : 0, &attr, sizeof attr) != 0)
    return failed("making " + target + " read-only (mount_setattr needs Linux 5.12)");
  return {};
}

// Binds host path `source` (opened before /tmp was covered) at `target` under the new root.
std::string bind(int source_fd, const std::string& source, const std::string& target, bool readonly) {
  struct stat st{};
  if (fstat(source_fd, &st) != 0) return failed("stat " + source);
  if (auto err = make_mountpoint(target, S_ISDIR(st.st_mode)); !err.empty()) return err;
  std::string via = "/proc/self/fd/" + std::to_string(source_fd);
  if (mount(via.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return failed("bind-mounting " + source);
  return readonly ? set_readonly(target, true) : std::string();
}

std::string mount_tmpfs(const std::string& target, const char* mode, unsigned long long size) {
  if (auto err = mkdirs(target); !err.empty()) return err;
  std::string options = std::string("mode=") + mode + ",size=" + std::to_string(size);
  if (mount("tmpfs", target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
    return failed("mounting a tmpfs at " + target);
  return {};
}

std::string loopback_up() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return failed("socket for loopback");
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ioctl(fd, SIOCGIFFLAGS, &req) == 0;
  req.ifr_flags |= IFF_UP | IFF_RUNNING;
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &req) == 0;
  close(fd);
  return ok ? std::string() : failed("bringing up loopback");
}

}  // namespace

MountPlan make_mount_plan(const std::string& workspace, const std::vector<std::string>& read_only,
                          unsigned long long tmp_size) {
  MountPlan plan;
  // What programs need to run; /home, /root, /run, /var, /srv, /mnt, /media and /sys stay absent.
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}) {
    std::error_code ec;
    auto st = fs::symlink_status(dir, ec);
    if (ec) continue;
    if (fs::is_symlink(st))
      plan.symlinks.emplace_back(dir, fs::read_symlink(dir, ec).string());
    else if (fs::is_directory(st))
      plan.system_dirs.push_back(dir);
  }
  // Secrets readable by uid 0, which the sandbox's user is inside its namespace.
  for (const char* file : {"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers"})
    if (fs::is_regular_file(file)) plan.masked.push_back(file);
  plan.workspace = workspace;
  plan.read_only = read_only;
  plan.tmp_size = tmp_size;
  return plan;
}

std::string enter_namespaces(bool network, uid_t uid, gid_t gid) {
  if (unshare(CLONE_NEWUSER) != 0) return failed("creating a user namespace") + kRefusedHint;
  // A single mapping of one's own ids needs no privilege; setgroups must be denied first.
  if (!write_proc("/proc/self/setgroups", "deny") ||
      !write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
      !write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
    return failed("mapping the caller to root in the user namespace") + kRefusedHint;
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | (network ? 0 : CLONE_NEWNET);
  if (unshare(flags) != 0) return failed("creating mount/PID/IPC/UTS/cgroup/network namespaces") + kRefusedHint;
  return {};
}

std::string build_root(const MountPlan& plan, bool network) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return failed("making the mount tree private") + kRefusedHint;
  // Sources are opened first: the new root is assembled on a tmpfs over /tmp, which may hide some.
  struct Source {
    std::string path;
    int fd;
    bool readonly;
  };
  std::vector<Source> sources;
  auto open_source = [&](const std::string& path, bool readonly) {
    int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return failed("opening " + path);
    sources.push_back({path, fd, readonly});
    return std::string();
  };
  std::string err;
  for (const auto& dir : plan.system_dirs)
    if (err = open_source(dir, true); !err.empty()) return err;
  size_t devices = sources.size();
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"})
    if (err = open_source(dev, false); !err.empty()) return err;
  size_t user_paths = sources.size();
  if (err = open_source(plan.workspace, false); !err.empty()) return err;
  for (const auto& path : plan.read_only)
    if (err = open_source(path, true); !err.empty()) return err;

  const std::string root = "/tmp";
  if (mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0)
    return failed("mounting the new root") + kRefusedHint;
  for (size_t i = 0; i < devices; ++i)
    if (err = bind(sources[i].fd, sources[i].path, root + sources[i].path, true); !err.empty()) return err;
  for (const auto& [path, target] : plan.symlinks)
    if (symlink(target.c_str(), (root + path).c_str()) != 0) return failed("symlink " + path);
  if (err = mount_tmpfs(root + "/dev", "0755", 1 << 20); !err.empty()) return err;
  for (size_t i = devices; i < user_paths; ++i)
    if (err = bind(sources[i].fd, sources[i].path, root + sources[i].path, false); !err.empty()) return err;
  for (const char* name : {"fd", "stdin", "stdout", "stderr"}) {
    std::string target = std::string("/proc/self/fd") + (name[0] == 'f' ? "" : name[3] == 'i' ? "/0" : name[3] == 'o' ? "/1" : "/2");
    if (symlink(target.c_str(), (root + "/dev/" + name).c_str()) != 0) return failed(std::string("symlink /dev/") + name);
  }
  if (err = mount_tmpfs(root + "/dev/shm", "1777", plan.tmp_size); !err.empty()) return err;
  if (err = mount_tmpfs(root + "/tmp", "1777", plan.tmp_size); !err.empty()) return err;
  if (err = mkdirs(root + "/proc"); !err.empty()) return err;
  if (mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return failed("mounting a fresh /proc") + kRefusedHint;
  // After /tmp: a workspace below /tmp then lands inside the private /tmp, not under it.
  for (size_t i = user_paths; i < sources.size(); ++i)
    if (err = bind(sources[i].fd, sources[i].path, root + sources[i].path, sources[i].readonly); !err.empty()) return err;
  int null_fd = sources[devices].fd;
  for (const auto& file : plan.masked)
    if (err = bind(null_fd, file, root + file, false); !err.empty()) return err;
  for (const auto& s : sources) close(s.fd);

  // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the new.
  if (chdir(root.c_str()) != 0) return failed("chdir to the new root");
  if (syscall(SYS_pivot_root, ".", ".") != 0) return failed("pivot_root") + kRefusedHint;
  if (umount2(".", MNT_DETACH) != 0) return failed("detaching the old root");
  if (err = set_readonly("/", false); !err.empty()) return err;
  if (chdir(plan.workspace.c_str()) != 0) return failed("entering the workspace");
  const char hostname[] = "flashfix-sandbox";
  if (sethostname(hostname, sizeof hostname - 1) != 0) return failed("sethostname");
  return network ? std::string() : loopback_up();
}

}  // namespace flashfix::sandbox
