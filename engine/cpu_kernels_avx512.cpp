// The AVX-512 kernel table: the AVX2 kernels with VNNI int8 dots (vpdpbusd) and BF16 dots
// (vdpbf16ps), plus the repacked prefill GEMMs (cpu_gemm_avx512.h) and the decode GEMVs
// (cpu_gemv_avx512.h); engine/CMakeLists.txt gives this file the AVX-512 F/BW/VL/VNNI/BF16 flags.
#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics start shifts and conversions from an "undefined" vector, which
// -W(maybe-)uninitialized reports at every use (GCC bug 105593): noise, not a finding about our code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <type_traits>

#include "engine/cpu_expf.h"
#include "engine/cpu_silu.h"
#include "engine/cpu_kernels.h"
#include "engine/quant_blocks.h"

namespace flashfix::cpu {
namespace {
#define FF_VNNI 1
#define FF_AVX512BF16 1
#include "engine/cpu_kernels_x86.h"
#include "engine/cpu_attend_x86.h"
#include "engine/cpu_gemm_avx512.h"
#include "engine/cpu_gemv_avx512.h"
}  // namespace

const CpuKernels* avx512_kernels() {
  static const CpuKernels k{CpuPath::Avx512, "avx512",  quantize_q8_0_x86,  quantize_q8_K_x86,     dot_tile_x86,
                            dot_f32_x86,        scale_f32_x86,      exp_f32_x86,        silu_f32_x86,          rope_f32_x86,
                            exp_vector_f32_x86, attend_scores_x86,  attend_values_x86,  attend_exp_x86,  stream_read_x86,       gemm_avx512,
                            gemv_avx512,        tile<Q45K<false, true>>, tile<FloatVecDot>, &gemm_q4_K_pairs_avx512(), gemv_rows<GemvQ4K<true>>};
  return &k;
}

}  // namespace flashfix::cpu
#else
#include "engine/cpu_kernels.h"
namespace flashfix::cpu {
const CpuKernels* avx512_kernels() { return nullptr; }
}  // namespace flashfix::cpu
#endif
