// The arithmetic ceilings of one core, for `bench --kernels` to set each kernel against: how many
// int8 multiply-adds (vpdpbusd) and float fmas (vfmadd) per second of CPU time the core sustains on
// register-resident data. Kernels are bound by one of these or by memory; a kernel well below its
// ceiling has overhead left to remove.
#pragma once
#include <optional>

namespace flashfix::cli {

struct PeakRates {
  double int8_gmac;  // 512-bit vpdpbusd (AVX-512 VNNI), 64 products each
  double f32_gfma;   // 512-bit vfmadd, 16 lanes each
};

// Empty where the machine lacks AVX-512 VNNI (or is not x86).
std::optional<PeakRates> measure_peak_rates();

}  // namespace flashfix::cli
