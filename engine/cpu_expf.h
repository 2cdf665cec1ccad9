// expf as the reference engine computes it in attention on x86: glibc's expf (2.27 and later) in
// its FMA build, the algorithm of ARM's optimized-routines. x * 32/ln2 = k + r, 2^(k/32) from a
// 32-entry table, a cubic in r, all in double with exactly these fmas, then one rounding to float.
// Written out rather than called so that every kernel path computes the same bits whatever libm
// the machine has (glibc's non-FMA build rounds z + shift twice and can differ), and so the SIMD
// paths can evaluate it 4 or 8 at a time (cpu_kernels_x86.h exp_f32_x86). On the development
// machine it equals libm's expf for every float (checked exhaustively, docs/ENGINE.md).
#pragma once
#include <cstdint>

namespace flashfix::cpu::expf_consts {

inline constexpr double kInvLn2N = 0x1.71547652b82fep+5;  // 32 / ln 2
inline constexpr double kShift = 0x1.8p+52;               // adding it rounds to an integer in the low bits
inline constexpr double kC0 = 0x1.c6af84b912394p-20, kC1 = 0x1.ebfce50fac4f3p-13, kC2 = 0x1.62e42ff0c52d6p-6;
// Bits of 2^(i/32) minus i << 47, so adding k << 47 puts k / 32 into the exponent.
inline constexpr uint64_t kTable[32] = {
    0x3ff0000000000000ull, 0x3fefd9b0d3158574ull, 0x3fefb5586cf9890full, 0x3fef9301d0125b51ull,
    0x3fef72b83c7d517bull, 0x3fef54873168b9aaull, 0x3fef387a6e756238ull, 0x3fef1e9df51fdee1ull,
    0x3fef06fe0a31b715ull, 0x3feef1a7373aa9cbull, 0x3feedea64c123422ull, 0x3feece086061892dull,
    0x3feebfdad5362a27ull, 0x3feeb42b569d4f82ull, 0x3feeab07dd485429ull, 0x3feea47eb03a5585ull,
    0x3feea09e667f3bcdull, 0x3fee9f75e8ec5f74ull, 0x3feea11473eb0187ull, 0x3feea589994cce13ull,
    0x3feeace5422aa0dbull, 0x3feeb737b0cdc5e5ull, 0x3feec49182a3f090ull, 0x3feed503b23e255dull,
    0x3feee89f995ad3adull, 0x3feeff76f2fb5e47ull, 0x3fef199bdd85529cull, 0x3fef3720dcef9069ull,
    0x3fef5818dcfba487ull, 0x3fef7c97337b9b5full, 0x3fefa4afa2a490daull, 0x3fefd0765b6e4540ull};
// Floats whose top 12 bits (sign dropped) reach this (|x| >= ~88, inf, NaN) leave the main path.
inline constexpr uint32_t kSpecialTop = 0x42b;

}  // namespace flashfix::cpu::expf_consts

namespace flashfix::cpu {
// The scalar definition (cpu_kernels_scalar.cpp); the SIMD paths call it for special inputs only.
float expf_reference(float x);
}  // namespace flashfix::cpu
