// The system-call filter: denies what a build or a test never needs and what helps an escape.
// Compiled once per network setting in the supervisor (libseccomp allocates, so never after fork)
// and installed in the command's process with plain prctl calls just before exec.
#pragma once
#include <linux/filter.h>

#include <vector>

namespace flashfix::sandbox {

// Throws std::runtime_error when libseccomp fails (an unsupported architecture).
const std::vector<sock_filter>& seccomp_program(bool network);

// Sets no_new_privs and installs the program. Returns 0 or an errno value. Async-signal-safe.
int install_seccomp(const std::vector<sock_filter>& program);

}  // namespace flashfix::sandbox
