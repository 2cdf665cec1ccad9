// CPU time, the clock for measurements on a shared machine: the work a computation needs (memory
// stalls included) changes little with other processes' load, unlike its wall time.
#pragma once
#include <time.h>

namespace flashfix {

// CPU seconds (user + system) every thread of this process has used so far.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// CPU seconds the calling thread has used so far.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace flashfix
