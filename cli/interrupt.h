// Ctrl-C and SIGTERM become a stop request for the running agent (which then ends cleanly: the
// private working copy is removed and reports are still written) instead of killing the process.
// A second signal while stopping kills it the usual way.
#pragma once
#include <atomic>
#include <stop_token>
#include <thread>

namespace flashfix::cli {

class InterruptGuard {
 public:
  explicit InterruptGuard(std::stop_source stop);  // call before starting other threads
  ~InterruptGuard();
  bool interrupted() const { return interrupted_; }

 private:
  std::stop_source stop_;
  std::atomic<bool> interrupted_{false};
  std::jthread watcher_;
};

}  // namespace flashfix::cli
