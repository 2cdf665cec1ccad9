#include "engine/cpu_kernels.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "engine/cpu_dot.h"

namespace flashfix::cpu {
namespace {

const CpuKernels* table_for(CpuPath p) {
  switch (p) {
    case CpuPath::Scalar: return &scalar_kernels();
    case CpuPath::Avx2: return avx2_kernels();
    case CpuPath::Avx512: return avx512_kernels();
  }
  return nullptr;
}

const CpuKernels* initial_table() {
  if (const char* env = std::getenv("FLASHFIX_CPU"); env && *env) {
    auto p = cpu_path_from_name(env);
    if (!p) throw std::invalid_argument(std::string("FLASHFIX_CPU=") + env + ": expected scalar, avx2 or avx512");
    if (!cpu_path_supported(*p)) throw std::invalid_argument(std::string("FLASHFIX_CPU=") + env + ": this CPU lacks it");
    return table_for(*p);
  }
  for (CpuPath p : {CpuPath::Avx512, CpuPath::Avx2})
    if (cpu_path_supported(p)) return table_for(p);
  return &scalar_kernels();
}

std::atomic<const CpuKernels*> g_active{nullptr};

}  // namespace

bool cpu_path_supported(CpuPath p) {
  if (!table_for(p)) return false;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (p) {
    case CpuPath::Scalar: return true;
    case CpuPath::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case CpuPath::Avx512:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx512bf16");
  }
  return false;
#else
  return p == CpuPath::Scalar;
#endif
}

std::vector<CpuPath> supported_cpu_paths() {
  std::vector<CpuPath> out;
  for (CpuPath p : {CpuPath::Scalar, CpuPath::Avx2, CpuPath::Avx512})
    if (cpu_path_supported(p)) out.push_back(p);
  return out;
}

const CpuKernels& kernels() {
  const CpuKernels* k = g_active.load(std::memory_order_acquire);
  if (!k) {
    // A static initialiser runs once even when threads race here; a bad FLASHFIX_CPU throws every time.
    static const CpuKernels* const first = initial_table();
    const CpuKernels* expected = nullptr;
    g_active.compare_exchange_strong(expected, first);
    k = g_active.load(std::memory_order_acquire);
  }
  return *k;
}

void select_cpu_path(CpuPath p) {
  if (!cpu_path_supported(p)) throw std::invalid_argument("CPU path " + std::string(cpu_path_name(p)) + " is not supported here");
  g_active.store(table_for(p), std::memory_order_release);
}

std::optional<CpuPath> cpu_path_from_name(std::string_view s) {
  if (s == "scalar") return CpuPath::Scalar;
  if (s == "avx2") return CpuPath::Avx2;
  if (s == "avx512") return CpuPath::Avx512;
  return std::nullopt;
}

std::string_view cpu_path_name(CpuPath p) {
  switch (p) {
    case CpuPath::Scalar: return "scalar";
    case CpuPath::Avx2: return "avx2";
    case CpuPath::Avx512: return "avx512";
  }
  return "?";
}

namespace {
DotTileFn dot_tile_in(const CpuKernels& k, TensorType t, DotOrder order) {
  switch (order) {
    case DotOrder::SubBlockPairs: return t == TensorType::Q4_K ? k.dot_tile_q4_K_pairs : nullptr;
    case DotOrder::VecDotF32: return t == TensorType::F32 ? k.dot_tile_f32_vec : nullptr;
    case DotOrder::Standard: break;
  }
  return k.dot_tile(t);
}
}  // namespace

DotTileFn dot_tile_for(TensorType t, DotOrder order) {
  if (DotTileFn f = dot_tile_in(kernels(), t, order)) return f;
  return dot_tile_in(scalar_kernels(), t, order);
}

const GemmKernel* gemm_for(TensorType t, DotOrder order) {
  if (order == DotOrder::SubBlockPairs) return t == TensorType::Q4_K ? kernels().gemm_q4_K_pairs : nullptr;
  return order == DotOrder::Standard ? kernels().gemm(t) : nullptr;
}

GemvFn gemv_for(TensorType t, DotOrder order) {
  if (order == DotOrder::SubBlockPairs) return t == TensorType::Q4_K ? kernels().gemv_q4_K_pairs : nullptr;
  return order == DotOrder::Standard ? kernels().gemv(t) : nullptr;
}

void quantize_activation_fast(TensorType at, const float* x, void* dst, int64_t n) {
  switch (at) {
    case TensorType::Q8_0: return kernels().quantize_q8_0(x, dst, n);
    case TensorType::Q8_K: return kernels().quantize_q8_K(x, dst, n);
    default: return quantize_activation(at, x, dst, n);
  }
}

}  // namespace flashfix::cpu
