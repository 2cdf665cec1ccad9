// Per-process limits: the floor that holds even where no cgroup can be created. Computed in the
// supervisor, applied in the command's process right before exec.
#pragma once
#include <sys/resource.h>

#include <array>
#include <utility>

#include "sandbox/sandbox.h"

namespace flashfix::sandbox {

using RlimitSet = std::array<std::pair<int, rlim_t>, 6>;

// cgroup: whether a cgroup enforces memory (then RLIMIT_AS only guards what the policy asks).
RlimitSet rlimits_for(const Policy& policy, bool cgroup);

// Both return 0 or an errno value and are async-signal-safe.
int apply_rlimits(const RlimitSet& limits);
// Empties the bounding, ambient, inheritable, permitted and effective sets, so that uid 0 inside
// the user namespace gets no capabilities from exec either.
int drop_capabilities();

}  // namespace flashfix::sandbox
