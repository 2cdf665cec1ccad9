// Quantized block layouts exactly as GGUF stores them (llama.cpp's ggml-common.h), plus the small
// unpacking helpers that the scalar dequantizers and the SIMD dot products share.
//
// Every struct is a byte-for-byte mirror of the file, so a tensor's data can be read in place from
// the mmap: no padding (all fields are naturally aligned at their offsets), little-endian integers,
// fp16 scales kept as raw uint16_t bits. GGUF aligns tensor data to 32 bytes and every block size
// below is a multiple of its struct's alignment, so every block in a row is properly aligned.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/tensor_types.h"

namespace flashfix {

inline constexpr int QK4_0 = 32;
inline constexpr int QK8_0 = 32;
inline constexpr int QK_MXFP4 = 32;
inline constexpr int QK_K = 256;  // K-quant / IQ super-block: one fp16 scale amortised over 256 weights

// Q8_0: symmetric 8-bit, y = d * q. One fp16 scale per 32 keeps the overhead at 0.5 bit/weight.
struct block_q8_0 {
  uint16_t d;
  int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 34);

// Q4_0: y = d * (q - 8). Byte j holds element j in its low nibble and element j+16 in its high
// nibble (not j, j+1), so one shift/mask of 16 bytes yields two contiguous halves of the block.
struct block_q4_0 {
  uint16_t d;
  uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 18);

// Q4_K: 8 sub-blocks of 32, each y = d*sc*q - dmin*m with 6-bit sc, m and 4-bit q. The 16 six-bit
// scale/min values are packed into 12 bytes (see get_scale_min_k4). qs holds 4 chunks of 32 bytes;
// chunk c carries sub-block 2c in the low nibbles and 2c+1 in the high nibbles (same trick as Q4_0).
struct block_q4_K {
  uint16_t d;     // super-block scale for the sub-block scales
  uint16_t dmin;  // super-block scale for the sub-block mins
  uint8_t scales[12];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144);

// Q5_K: Q4_K plus a fifth bit per weight. qh[l] bit 2c is the high bit of element l of sub-block 2c,
// bit 2c+1 that of sub-block 2c+1: the 32 qh bytes line up with the 32 qs bytes of every chunk.
struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176);

// Q6_K: 16 sub-blocks of 16, y = d * sc * (q - 32) with signed 8-bit sc and 6-bit q split into a low
// nibble (ql) and two high bits (qh). Per 128-element half: ql[l] low/high nibbles = elements l / l+64,
// ql[l+32] = elements l+32 / l+96, qh[l] bit pairs 0,2,4,6 = elements l, l+32, l+64, l+96. Scale index
// works out to element/16. d sits last (historical), so the struct is only 2-byte aligned.
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210);

// Q8_K: activation format for integer dot products against K-quants. Float d (activations need the
// range), and bsums = sums of each 16 consecutive qs so the "- dmin*m" term of Q4_K/Q5_K can be applied
// per sub-block without touching the weights.
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 292);

// IQ4_XS: non-linear 4-bit codebook (kIQ4NL) with a 6-bit signed-offset scale per 32-element sub-block:
// low 4 bits in scales_l (two per byte), high 2 bits in scales_h (two per sub-block). Nibble order as Q4_0.
struct block_iq4_xs {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[QK_K / 64];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_iq4_xs) == 136);

// MXFP4 (OCP microscaling): shared E8M0 exponent + 32 e2m1 values, nibble order as Q4_0.
struct block_mxfp4 {
  uint8_t e;
  uint8_t qs[QK_MXFP4 / 2];
};
static_assert(sizeof(block_mxfp4) == 17);

// IQ4_NL / IQ4_XS codebook: denser near zero, matching the bell shape of weight distributions.
inline constexpr int8_t kIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// e2m1 values doubled so the table is integral; the E8M0 scale is halved to compensate (e8m0_half).
inline constexpr int8_t kMXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e-128): half the E8M0 value 2^(e-127). Exact for every e (e = 0, 1 give fp32 subnormals).
// e = 255, NaN in OCP E8M0, is read as 2^127 like llama.cpp does.
inline float e8m0_half(uint8_t e) { return std::ldexp(1.0f, int(e) - 128); }

// Sub-block j (0..7) scale and min of a Q4_K/Q5_K block. j<4 use the low 6 bits of bytes j and j+4;
// j>=4 use the nibbles of byte j+4 for the low 4 bits and the spare top 2 bits of bytes j-4 / j.
inline void get_scale_min_k4(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Inverse of get_scale_min_k4; sc, m < 64. Writes all 12 bytes.
inline void pack_scale_min_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// IQ4_XS sub-block ib (0..7) scale, already offset: in [-32, 31].
inline int iq4_xs_scale(const block_iq4_xs& b, int ib) {
  int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b.scales_h >> (2 * ib)) & 3) << 4);
  return ls - 32;
}

}  // namespace flashfix
