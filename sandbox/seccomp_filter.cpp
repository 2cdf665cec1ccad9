#include "sandbox/seccomp_filter.h"

#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace flashfix::sandbox {
namespace {

// Each of these is refused with EPERM: tracing other processes, changing the mount table or the
// namespaces, the kernel's bigger attack surfaces (bpf, perf, io_uring, keyrings, userfaultfd),
// and everything that replaces or extends the kernel.
constexpr const char* kDenied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    "unshare", "setns",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "swapon", "swapoff", "acct", "quotactl",
};

// Namespace flags of clone(2); clone3 hides its flags in memory, so it answers ENOSYS and libc
// falls back to clone, whose flags the filter can see.
constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP};

void check(int rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string("seccomp: ") + what + ": " + std::strerror(-rc));
}

std::vector<sock_filter> compile(bool network) {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
  if (!ctx) throw std::runtime_error("seccomp: seccomp_init failed");
  const auto deny = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    check(seccomp_rule_add(ctx.get(), deny, nr, 0), name);
  }
  for (unsigned long flag : kNamespaceFlags)
    check(seccomp_rule_add(ctx.get(), deny, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)), "clone");
  check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3");
  // personality(2) may not weaken memory protection. Bit 31 is only set by the query
  // personality(0xffffffff), which must keep working, so each rule requires it clear.
  for (unsigned long flag : {ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ADDR_COMPAT_LAYOUT, READ_IMPLIES_EXEC,
                             ADDR_LIMIT_32BIT, ADDR_LIMIT_3GB})
    check(seccomp_rule_add(ctx.get(), deny, SCMP_SYS(personality), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, flag | 0x80000000ul, flag)),
          "personality");
  // Sockets: AF_UNIX always, AF_INET/AF_INET6 only with network (the namespace is the first layer).
  for (int domain = 0; domain < AF_MAX; ++domain) {
    bool allowed = domain == AF_UNIX || (network && (domain == AF_INET || domain == AF_INET6));
    if (!allowed)
      check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_EQ, scmp_datum_t(domain))),
            "socket");
  }
  check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                         SCMP_A0(SCMP_CMP_GE, AF_MAX)),
        "socket");
  // Export to a memfd and read the BPF back: libseccomp 2.5 has no in-memory export.
  int fd = memfd_create("flashfix-seccomp", MFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("seccomp: memfd_create: ") + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* f) { close(*f); });
  check(seccomp_export_bpf(ctx.get(), fd), "export");
  off_t size = lseek(fd, 0, SEEK_END);
  std::vector<sock_filter> program(size_t(size) / sizeof(sock_filter));
  if (pread(fd, program.data(), size_t(size), 0) != size) throw std::runtime_error("seccomp: reading the program back failed");
  return program;
}

}  // namespace

const std::vector<sock_filter>& seccomp_program(bool network) {
  static std::once_flag once[2];
  static std::vector<sock_filter> programs[2];
  std::call_once(once[network], [&] { programs[network] = compile(network); });
  return programs[network];
}

int install_seccomp(const std::vector<sock_filter>& program) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  sock_fprog prog{static_cast<unsigned short>(program.size()), const_cast<sock_filter*>(program.data())};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return errno;
  return 0;
}

}  // namespace flashfix::sandbox
