// SiLU as the reference engine computes it in its SwiGLU on x86 (ggml's AVX-512 `ggml_v_silu`, which
// every FFN row of a multiple of 16 goes through): x / (1 + e) with e = exp(-x) from ARM's
// optimized-routines single-precision algorithm. -x = k ln2 + b with k = round(-x / ln2) (the shift
// trick), ln2 in two parts; a degree-5 polynomial in b; e = poly * 2^k (vscalefps: one rounding).
// Not libm's expf: the two differ in the last bit for a few percent of inputs, and on the golden
// models that bit moves 8-bit activations (qwen3moe Q8_0 position 26 is bit-exact only with this).
// The constants and the order of the fmas are the reference's; every kernel path computes the same
// bits (silu below is the definition, cpu_kernels_x86.h silu_f32_x86 the vector form).
#pragma once

namespace flashfix::cpu::silu_consts {

inline constexpr float kShift = 0x1.8p23f;  // adding it rounds to an integer in the low bits
inline constexpr float kLog2e = 0x1.715476p+0f;
inline constexpr float kLn2Hi = 0x1.62e4p-1f, kLn2Lo = 0x1.7f7d1cp-20f;
inline constexpr float kP1 = 0x1.ffffecp-1f, kP2 = 0x1.fffdb6p-2f, kP3 = 0x1.555e66p-3f, kP4 = 0x1.573e2ep-5f,
                       kP5 = 0x1.0e4020p-7f;
// |k| beyond this: e is 0 (k < 0) or inf, as the reference's special case.
inline constexpr float kLimit = 192.f;

}  // namespace flashfix::cpu::silu_consts

namespace flashfix::cpu {
// The reference's vector exp (ggml_v_expf) on one float: also what its softmax over attention scores
// and its router (16 values at a time) use. The scalar definition (cpu_kernels_scalar.cpp).
float expf_vector(float x);
// x / (1 + expf_vector(-x)): the scalar definition (cpu_kernels_scalar.cpp).
float silu(float x);
}  // namespace flashfix::cpu
