#include "sandbox/limits.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <limits>

namespace flashfix::sandbox {

RlimitSet rlimits_for(const Policy& policy, bool cgroup) {
  rlim_t as = policy.address_space ? policy.address_space : cgroup ? RLIM_INFINITY : 2 * policy.memory;
  auto timeout_s = std::chrono::ceil<std::chrono::seconds>(policy.timeout).count();
  rlim_t cpu = policy.cpu_seconds ? policy.cpu_seconds : rlim_t(std::max<long long>(1, timeout_s));
  // RLIMIT_NPROC counts per user in the sandbox's user namespace, which also holds the keeper and
  // init (see sandbox.cpp), hence the two extra.
  return {{{RLIMIT_AS, as},
           {RLIMIT_CPU, cpu},
           {RLIMIT_FSIZE, policy.file_size},
           {RLIMIT_NOFILE, policy.open_files},
           {RLIMIT_NPROC, policy.pids + 2},
           {RLIMIT_CORE, 0}}};
}

int apply_rlimits(const RlimitSet& limits) {
  for (auto [resource, value] : limits) {
    // CPU: SIGXCPU at the soft limit lets a runtime print where it was; SIGKILL a second later.
    rlimit r{value, resource == RLIMIT_CPU && value != RLIM_INFINITY ? value + 1 : value};
    if (setrlimit(resource, &r) != 0) return errno;
  }
  return 0;
}

int drop_capabilities() {
  for (int cap = 0; cap <= 63; ++cap)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) return errno;
  return 0;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (value > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return std::nullopt;
    value = value * 10 + std::uint64_t(text[i] - '0');
  }
  if (i == 0) return std::nullopt;
  std::string_view suffix = text.substr(i);
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0] | 0x20) {  // lower case
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      case 'b': shift = 0; break;
      default: return std::nullopt;
    }
    suffix.remove_prefix(1);
    if (shift && (suffix == "i" || suffix == "iB" || suffix == "B" || suffix == "ib")) suffix = {};
    if (!suffix.empty()) return std::nullopt;
  }
  if (shift && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) return std::nullopt;
  return value << shift;
}

}  // namespace flashfix::sandbox
