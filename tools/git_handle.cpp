#include "tools/git_handle.h"

namespace flashfix::tools::git {

void ensure_initialized() {
  // Never shut down: handles may outlive any scope we could pick, and the process exit frees all.
  static const int once = git_libgit2_init();
  (void)once;
}

void check(int rc, const std::string& what) {
  if (rc >= 0) return;
  const git_error* e = git_error_last();
  throw std::runtime_error(what + ": " + (e && e->message ? e->message : "libgit2 error " + std::to_string(rc)));
}

}  // namespace flashfix::tools::git
