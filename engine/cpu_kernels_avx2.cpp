// The AVX2 + FMA + F16C kernel table (engine/CMakeLists.txt gives this file those target flags).
#if defined(__x86_64__)
#include <immintrin.h>

#include <type_traits>

#include "engine/cpu_expf.h"
#include "engine/cpu_silu.h"
#include "engine/cpu_kernels.h"
#include "engine/quant_blocks.h"

namespace flashfix::cpu {
namespace {
#define FF_VNNI 0
#define FF_AVX512BF16 0
#include "engine/cpu_kernels_x86.h"
#include "engine/cpu_attend_x86.h"
const GemmKernel* no_gemm(TensorType) { return nullptr; }  // the repacked GEMMs and the GEMVs need AVX-512 VNNI
GemvFn no_gemv(TensorType) { return nullptr; }
}  // namespace

const CpuKernels* avx2_kernels() {
  static const CpuKernels k{CpuPath::Avx2, "avx2",  quantize_q8_0_x86,  quantize_q8_K_x86,     dot_tile_x86,
                            dot_f32_x86,        scale_f32_x86,      exp_f32_x86,        silu_f32_x86,          rope_f32_x86,
                            exp_vector_f32_x86, attend_scores_x86,  attend_values_x86,  attend_exp_x86,  stream_read_x86,       no_gemm,
                            no_gemv,            tile<Q45K<false, true>>, tile<FloatVecDot>, nullptr, nullptr};
  return &k;
}

}  // namespace flashfix::cpu
#else
#include "engine/cpu_kernels.h"
namespace flashfix::cpu {
const CpuKernels* avx2_kernels() { return nullptr; }
}  // namespace flashfix::cpu
#endif
