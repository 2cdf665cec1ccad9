// The sandbox's init: PID 1 of the new PID namespace (or a subreaper with --sandbox=none). It
// builds the root, launches the command with Boost.Process, reaps every orphan, kills whatever is
// left when the command exits, and reports how the command ended to the supervisor.
#pragma once
#include <linux/filter.h>

#include <string>
#include <string_view>
#include <vector>

#include "sandbox/limits.h"
#include "sandbox/namespaces.h"

namespace flashfix::sandbox {

// One fixed-size record, written once (atomically: smaller than PIPE_BUF) to the report pipe.
struct Report {
  enum Kind : int { exited, signaled, setup_failed } kind;
  int value;  // exit status or signal
  char message[1024];
};

void write_report(int fd, Report::Kind kind, int value, std::string_view message);

struct InitPlan {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value", the complete environment
  bool namespaces;
  bool network;
  MountPlan mounts;
  RlimitSet rlimits;
  const std::vector<sock_filter>* seccomp;
  int stdin_fd, stdout_fd, stderr_fd, report_fd;
};

[[noreturn]] void init_main(InitPlan& plan);

}  // namespace flashfix::sandbox
