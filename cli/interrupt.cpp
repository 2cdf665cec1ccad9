#include "cli/interrupt.h"

#include <signal.h>

#include <cstdio>
#include <ctime>

namespace flashfix::cli {

// Blocks the signals in this thread (threads started later inherit the mask) and waits for them
// on a watcher thread with sigtimedwait, so no code runs in a signal handler.
InterruptGuard::InterruptGuard(std::stop_source stop) : stop_(stop) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  watcher_ = std::jthread([this, set](std::stop_token done) {
    const timespec tick{0, 100'000'000};
    while (!done.stop_requested()) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) continue;
      if (interrupted_.exchange(true)) {
        // Second signal: give up on a clean stop.
        signal(sig, SIG_DFL);
        pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
        raise(sig);
      }
      std::fprintf(stderr, "\nflashfix: stopping (interrupt again to kill)\n");
      stop_.request_stop();
    }
  });
}

InterruptGuard::~InterruptGuard() {
  watcher_.request_stop();
  watcher_.join();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace flashfix::cli
