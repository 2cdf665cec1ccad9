#include "cli/bench_peak.h"

#include "engine/cpu_time.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace flashfix::cli {

#if defined(__x86_64__)
namespace {

// Twelve independent accumulators: more than latency x throughput of either instruction on current
// cores, so the loop is bound by issue rate alone. The loop body is written in assembly: with the
// accumulators in an array, the compiler kept them on the stack.
constexpr long kIterations = 20'000'000;
constexpr int kPerIteration = 12;

__attribute__((target("avx512f,avx512vnni"))) double int8_rate() {
  __m512i x0 = _mm512_set1_epi32(0), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
  const double c0 = thread_cpu_seconds();
  for (long it = 0; it < kIterations; ++it)
    asm volatile(
        "vpdpbusd %13, %12, %0\n\tvpdpbusd %13, %12, %1\n\tvpdpbusd %13, %12, %2\n\tvpdpbusd %13, %12, %3\n\t"
        "vpdpbusd %13, %12, %4\n\tvpdpbusd %13, %12, %5\n\tvpdpbusd %13, %12, %6\n\tvpdpbusd %13, %12, %7\n\t"
        "vpdpbusd %13, %12, %8\n\tvpdpbusd %13, %12, %9\n\tvpdpbusd %13, %12, %10\n\tvpdpbusd %13, %12, %11"
        : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5), "+v"(x6), "+v"(x7), "+v"(x8), "+v"(x9), "+v"(x10), "+v"(x11)
        : "v"(a), "v"(b));
  const double s = thread_cpu_seconds() - c0;
  return double(kIterations) * kPerIteration * 64 / s / 1e9;
}

__attribute__((target("avx512f"))) double f32_rate() {
  __m512 x0 = _mm512_set1_ps(1.f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
  const __m512 a = _mm512_set1_ps(1.0001f), b = _mm512_set1_ps(0.9999f);
  const double c0 = thread_cpu_seconds();
  for (long it = 0; it < kIterations; ++it)
    asm volatile(
        "vfmadd231ps %13, %12, %0\n\tvfmadd231ps %13, %12, %1\n\tvfmadd231ps %13, %12, %2\n\tvfmadd231ps %13, %12, %3\n\t"
        "vfmadd231ps %13, %12, %4\n\tvfmadd231ps %13, %12, %5\n\tvfmadd231ps %13, %12, %6\n\tvfmadd231ps %13, %12, %7\n\t"
        "vfmadd231ps %13, %12, %8\n\tvfmadd231ps %13, %12, %9\n\tvfmadd231ps %13, %12, %10\n\tvfmadd231ps %13, %12, %11"
        : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5), "+v"(x6), "+v"(x7), "+v"(x8), "+v"(x9), "+v"(x10), "+v"(x11)
        : "v"(a), "v"(b));
  const double s = thread_cpu_seconds() - c0;
  return double(kIterations) * kPerIteration * 16 / s / 1e9;
}

}  // namespace

std::optional<PeakRates> measure_peak_rates() {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vnni")) return std::nullopt;
  return PeakRates{int8_rate(), f32_rate()};
}
#else
std::optional<PeakRates> measure_peak_rates() { return std::nullopt; }
#endif

}  // namespace flashfix::cli
