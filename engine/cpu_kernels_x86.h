// x86 SIMD kernels, written once and compiled twice: cpu_kernels_avx2.cpp (AVX2 + FMA + F16C) and
// cpu_kernels_avx512.cpp (adds AVX-512 VNNI for the int8 dots and AVX-512 BF16 for bf16 rows), each
// with its own target flags. Include only from those two files, and only inside their anonymous
// namespace: everything here must have internal linkage, and nothing here may call an inline or
// template function that baseline files also instantiate (the linker would keep one copy, possibly
// the one compiled with instructions the machine lacks). Hence the local helpers below instead of
// quant_blocks.h's inline unpackers and <algorithm>.
//
// Loops over tokens and sub-blocks carry `#pragma GCC unroll`: unrolled, the unpacked weights and
// their scales stay in registers (-O2 alone keeps them in stack arrays and reloads them per token).
//
// Integer layout shared by both builds: a 32-byte vector of unsigned weights (u < 128, or |w| via
// the sign trick) times 32 signed activation bytes gives 8 int32 lanes, lane i = bytes 4i..4i+3.
// AVX2 gets there with maddubs (int16 pairs, which cannot saturate: 2 * 128 * 127 < 32768) and madd;
// VNNI does it in one vpdpbusd. Both produce the same integers, so the paths differ only in how
// float partial sums are added, and that order is the reference engine's x86 order wherever we know
// it, emulated lane by lane by the scalar kernels (cpu_dot.cpp), so all paths are bit-identical:
// Q8_0/Q4_0/MXFP4 and Q5_K keep exact int32 lanes per block, acc = fma(d, float(lane), acc) per token
// and one horizontal sum per row (the reference's vec_dot kernels; Q5_K mins as described there);
// Q4_K follows the reference's repacked q4_K_8x8 GEMV (two chains of whole-block integers, Q45K below),
// or for DotOrder::SubBlockPairs matrices its 4-token GEMM (the chains per pair of sub-blocks);
// F32 rows as its tinyBLAS (FloatRows) or, DotOrder::VecDotF32, as ggml_vec_dot_f32 (FloatVecDot);
// Q6_K keeps 8 lanes too, its - 32 folded in per lane from the activation sums (the reference's newer
// vec_dot, Q6K below); IQ4_XS reduces each block to its exact integer and chains s = fma(d, block, s).
// fma1 keeps every scalar fma an FMA instruction: contraction left to the compiler would differ
// between builds.

#if FF_VNNI
inline __m256i dot_us(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
#else
inline __m256i dot_us(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }
#endif

// sum + the scaled dot of 32 unsigned x signed bytes, scale16 holding one int16 scale per pair of
// bytes (exact in int32). VNNI fuses the scaling madd and the add into one vpdpwssd.
inline __m256i add_scaled_dot(__m256i sum, __m256i u, __m256i s, __m256i scale16) {
#if FF_VNNI
  return _mm256_dpwssd_epi32(sum, _mm256_maddubs_epi16(u, s), scale16);
#else
  return _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16));
#endif
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// a * b + c with one rounding (a vfmadd here, where -mfma is on): written out, because whether the
// compiler contracts a * b + c by itself depends on flags, and the reference's order needs the fma.
inline float fma1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

inline int hsum_i32_4(__m128i s) {
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }  // exact, like fp16_to_fp32

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 16 packed bytes -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31), the nibble
// order of Q4_0, MXFP4 and IQ4_XS.
inline __m256i nibbles_q4_0(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
}

// 2^(e-128), bit for bit what e8m0_half computes (e = 0, 1 are subnormal).
inline float e8m0_half_bits(uint8_t e) {
  const uint32_t bits = e >= 2 ? uint32_t(e - 1) << 23 : 0x200000u << e;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

// Q4_K/Q5_K 6-bit scales and mins as get_scale_min_k4 unpacks them, four at a time in 32-bit words:
// bytes 0..7 of the result are scales 0..7, bytes 8..15 mins 0..7.
inline __m128i scales_mins_k4(const uint8_t* s) {
  uint32_t w[3];
  __builtin_memcpy(w, s, 12);
  const uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
  const uint32_t sc03 = w[0] & low6, m03 = w[1] & low6;
  const uint32_t sc47 = (w[2] & low4) | ((w[0] >> 6) & low2) << 4;
  const uint32_t m47 = ((w[2] >> 4) & low4) | ((w[1] >> 6) & low2) << 4;
  return _mm_set_epi32(int(m47), int(m03), int(sc47), int(sc03));
}

template <typename Block>
inline const Block* act_row(const void* a, size_t stride, int t) {
  return reinterpret_cast<const Block*>(static_cast<const uint8_t*>(a) + size_t(t) * stride);
}

// Calls K::run<nt>(args...) for nt in 1..kTileTokens: the kernels take the token count at compile
// time, so their loops over tokens unroll and keep per-token state in registers.
template <class K, class... Args>
void run_for_tokens(int nt, Args... args) {
  switch (nt) {
    case 1: return K::template run<1>(args...);
    case 2: return K::template run<2>(args...);
    case 3: return K::template run<3>(args...);
    case 4: return K::template run<4>(args...);
    case 5: return K::template run<5>(args...);
    case 6: return K::template run<6>(args...);
    case 7: return K::template run<7>(args...);
    default: return K::template run<8>(args...);
  }
}

// Turns a kernel with a compile-time token count into a DotTileFn.
template <class K>
void tile(const void* w, const void* a, size_t as, int nt, int64_t n, float* y, size_t ys) {
  run_for_tokens<K>(nt, w, a, as, n, y, ys);
}

// 32-element formats against Q8_0 activations. Decode gives the signed weights of block b as int8.
template <class Decode>
struct Q32 {
  template <int NT>
  static void run(const void* wv, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    using Block = typename Decode::Block;
    const Block* w = static_cast<const Block*>(wv);
    // One accumulator chain per token, blocks in order: the reference's AVX2 Q8_0 dot does the same,
    // and matching its order keeps Q8_0 models bit-exact with it far longer. The chain caps one token
    // at a block per FMA latency (~35 GB/s of Q8_0 weights per core), well above DRAM bandwidth.
    __m256 acc[NT];
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; ++b) {
      const __m256i wq = Decode::weights(w[b]);
      const __m256i u = _mm256_sign_epi8(wq, wq);
      const float dw = Decode::scale(w[b]);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const block_q8_0& a = act_row<block_q8_0>(av, as, t)[b];
        const __m256i p = dot_us(u, _mm256_sign_epi8(loadu(a.qs), wq));
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(a.d)), _mm256_cvtepi32_ps(p), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) y[size_t(t) * ys] = hsum(acc[t]);
  }
};

struct DecodeQ8_0 {
  using Block = block_q8_0;
  static __m256i weights(const Block& b) { return loadu(b.qs); }
  static float scale(const Block& b) { return h2f(b.d); }
};
struct DecodeQ4_0 {
  using Block = block_q4_0;
  static __m256i weights(const Block& b) { return _mm256_sub_epi8(nibbles_q4_0(b.qs), _mm256_set1_epi8(8)); }
  static float scale(const Block& b) { return h2f(b.d); }
};
struct DecodeMXFP4 {
  using Block = block_mxfp4;
  static __m256i weights(const Block& b) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kMXFP4)));
    return _mm256_shuffle_epi8(table, nibbles_q4_0(b.qs));
  }
  static float scale(const Block& b) { return e8m0_half_bits(b.e); }
};

// Q4_K (and Q5_K with its fifth bit): sum_j sc_j * dot(q_j, a_j) in int32 lanes, and the mins term
// sum_j m_j * (a's sums over sub-block j) from the activation's bsums. Every lane stays below 2^24
// (8 sub-blocks x 4 products x 31 x 127 x 63), so its conversion to float is exact (a whole Q4_K
// block's sum may not be; float() rounds it as the reference's cvtepi32_ps does). Float order, as
// the reference's x86 kernels (cpu_dot.cpp dot_q45_K): Q5_K (AVX2 vec_dot) scales the lanes by d in
// float lanes reduced once per row, mins as one chain with -dmin; Q4_K (repacked q4_K_8x8 GEMV) one
// chain of whole-block integers for the scaled sums and one for the mins, subtracted at the end.
// kPairs (Q4_K only, DotOrder::SubBlockPairs): both chains take one fma per pair of sub-blocks.
template <bool kFifthBit, bool kPairs = false>
struct Q45K {
  using Block = std::conditional_t<kFifthBit, block_q5_K, block_q4_K>;
  template <int NT>
  static void run(const void* wv, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    const Block* w = static_cast<const Block*>(wv);
    const __m256i m4 = _mm256_set1_epi8(15), bit4 = _mm256_set1_epi8(16);
    __m256 acc[NT];      // Q5_K's scaled sums: 8 float lanes
    float acc_sum[NT];   // Q4_K's scaled sums: one chain of whole-block integers
    float acc_min[NT];   // the mins: one chain of whole-block integers (Q5_K: -dmin, added)
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), acc_sum[t] = 0.f, acc_min[t] = 0.f;
    for (int64_t b = 0; b < n / QK_K; ++b) {
      // Bytes 0..7: the eight 6-bit scales, 8..15: the eight mins, both halves of the vector.
      const __m256i sm = _mm256_broadcastsi128_si256(scales_mins_k4(w[b].scales));
      const __m128i mins = _mm_cvtepu8_epi16(_mm_srli_si128(_mm256_castsi256_si128(sm), 8));  // int16 lane j: min j
      __m256i q[8], scale16[8];
      #pragma GCC unroll 8
      for (int c = 0; c < 4; ++c) {
        const __m256i raw = loadu(w[b].qs + 32 * c);
        q[2 * c] = _mm256_and_si256(raw, m4);
        q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
      }
      if constexpr (kFifthBit) {
        const __m256i hb = loadu(w[b].qh);
        #pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {  // bit j of qh[l] -> bit 4 of element l of sub-block j
          const __m256i moved = j < 4 ? _mm256_sll_epi16(hb, _mm_cvtsi32_si128(4 - j)) : _mm256_srl_epi16(hb, _mm_cvtsi32_si128(j - 4));
          q[j] = _mm256_or_si256(q[j], _mm256_and_si256(moved, bit4));
        }
      }
      #pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) scale16[j] = _mm256_shuffle_epi8(sm, _mm256_set1_epi16(int16_t(0x8000 | j)));  // scale j in every int16
      const float wd = h2f(w[b].d), wdmin = h2f(w[b].dmin);
      #pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const block_q8_K& a = act_row<block_q8_K>(av, as, t)[b];
        if constexpr (kPairs) {
          const __m256i bsums = loadu(a.bsums);
          alignas(16) int32_t pair_min[4];  // lane c: the mins of sub-blocks 2c and 2c + 1
          _mm_store_si128(reinterpret_cast<__m128i*>(pair_min),
                          _mm_madd_epi16(mins, _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1))));
          #pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) {
            const __m256i pair = add_scaled_dot(add_scaled_dot(_mm256_setzero_si256(), q[2 * c], loadu(a.qs + 64 * c), scale16[2 * c]),
                                                q[2 * c + 1], loadu(a.qs + 64 * c + 32), scale16[2 * c + 1]);
            acc_sum[t] = fma1(a.d * wd, float(hsum_i32(pair)), acc_sum[t]);
            acc_min[t] = fma1(a.d * wdmin, float(pair_min[c]), acc_min[t]);
          }
          continue;
        }
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();  // two chains, half the latency
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j += 2) {
          even = add_scaled_dot(even, q[j], loadu(a.qs + 32 * j), scale16[j]);
          odd = add_scaled_dot(odd, q[j + 1], loadu(a.qs + 32 * j + 32), scale16[j + 1]);
        }
        const __m256i bsums = loadu(a.bsums);  // int16 lane j of the hadd: a's sum over sub-block j
        const __m128i sub_sums = _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
        const __m128i min_lanes = _mm_madd_epi16(mins, sub_sums);  // lane m: sub-blocks 2m and 2m+1
        const __m256i sum = _mm256_add_epi32(even, odd);
        if constexpr (kFifthBit)
          acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * wd), _mm256_cvtepi32_ps(sum), acc[t]);
        else
          acc_sum[t] = fma1(a.d * wd, float(hsum_i32(sum)), acc_sum[t]);
        acc_min[t] = fma1(kFifthBit ? -a.d * wdmin : a.d * wdmin, float(hsum_i32_4(min_lanes)), acc_min[t]);
      }
    }
    for (int t = 0; t < NT; ++t) y[size_t(t) * ys] = kFifthBit ? hsum(acc[t]) + acc_min[t] : acc_sum[t] - acc_min[t];
  }
};

// Q6_K: sum (q - 32) * a * sc = sum sc * q * a - 32 * sum_k sc_k * bsums_k with q unsigned, kept as 8
// int32 lanes: lane i = the bytes 4i..4i+3 of every 32-byte chunk minus 32 * (sc_2i * bsums_2i +
// sc_2i+1 * bsums_2i+1), then acc = fma(d, float(lane), acc) and one hsum per row: the reference's
// vec_dot (cpu_dot.cpp dot_q6_K).
// A Q6_K block's 256 weights as unsigned 6-bit bytes in element order: q[c] = elements 32c .. 32c + 31.
inline void unpack_q6_K(const block_q6_K& w, __m256i q[8]) {
  const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
  #pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = loadu(w.ql + 64 * h), l1 = loadu(w.ql + 64 * h + 32), hb = loadu(w.qh + 32 * h);
    q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
    q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
    q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
    q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
  }
}

struct Q6K {
  template <int NT>
  static void run(const void* wv, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    const block_q6_K* w = static_cast<const block_q6_K*>(wv);
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; ++b) {
      __m256i q[8];
      unpack_q6_K(w[b], q);
      const int8_t* sc = w[b].scales;
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
      __m256i scale16[8];  // vector j: sc[2j] for its low 16 bytes, sc[2j+1] for its high 16
      const __m256i sc_both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
      #pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {  // both bytes of each int16 lane = the scale byte; >> 8 sign-extends it
        const __m256i pick = _mm256_set_m128i(_mm_set1_epi8(char(2 * j + 1)), _mm_set1_epi8(char(2 * j)));
        scale16[j] = _mm256_srai_epi16(_mm256_shuffle_epi8(sc_both, pick), 8);
      }
      const float wd = h2f(w[b].d);
      #pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const block_q8_K& a = act_row<block_q8_K>(av, as, t)[b];
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j += 2) {
          even = add_scaled_dot(even, q[j], loadu(a.qs + 32 * j), scale16[j]);
          odd = add_scaled_dot(odd, q[j + 1], loadu(a.qs + 32 * j + 32), scale16[j + 1]);
        }
        const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(loadu(a.bsums), sc16), 5);
        const __m256i lanes = _mm256_sub_epi32(_mm256_add_epi32(even, odd), bias);
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * wd), _mm256_cvtepi32_ps(lanes), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) y[size_t(t) * ys] = hsum(acc[t]);
  }
};

// IQ4_XS: codebook lookup per nibble, a signed 6-bit scale per 32 elements, exact integer per block.
struct IQ4XS {
  template <int NT>
  static void run(const void* wv, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    const block_iq4_xs* w = static_cast<const block_iq4_xs*>(wv);
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NL)));
    float s[NT];
    for (int t = 0; t < NT; ++t) s[t] = 0;
    for (int64_t b = 0; b < n / QK_K; ++b) {
      __m256i q[8];
      __m256i scale16[8];
      #pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        q[j] = _mm256_shuffle_epi8(table, nibbles_q4_0(w[b].qs + 16 * j));
        const int ls = (((w[b].scales_l[j / 2] >> (4 * (j % 2))) & 15) | (((w[b].scales_h >> (2 * j)) & 3) << 4)) - 32;
        scale16[j] = _mm256_set1_epi16(int16_t(ls));
      }
      const float wd = h2f(w[b].d);
      #pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const block_q8_K& a = act_row<block_q8_K>(av, as, t)[b];
        __m256i sum = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int j = 0; j < 8; ++j)  // signed weights through the sign trick
          sum = add_scaled_dot(sum, _mm256_sign_epi8(q[j], q[j]), _mm256_sign_epi8(loadu(a.qs + 32 * j), q[j]), scale16[j]);
        s[t] = fma1(a.d * wd, float(hsum_i32(sum)), s[t]);
      }
    }
    for (int t = 0; t < NT; ++t) y[size_t(t) * ys] = s[t];
  }
};

// Float rows: 8 lanes per step and two accumulators per token, added lane-wise and reduced by hsum;
// the tail is added in order, one fma each (cpu_dot.cpp's dot_float emulates exactly this).
template <class Load>
struct FloatRows {
  template <int NT>
  static void run(const void* wv, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    using T = typename Load::T;
    const T* w = static_cast<const T*>(wv);
    __m256 acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 w0 = Load::load8(w + i), w1 = Load::load8(w + i + 8);
      #pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const T* a = act_row<T>(av, as, t) + i;
        acc0[t] = _mm256_fmadd_ps(w0, Load::load8(a), acc0[t]);
        acc1[t] = _mm256_fmadd_ps(w1, Load::load8(a + 8), acc1[t]);
      }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const T* a = act_row<T>(av, as, t);
      float s = hsum(_mm256_add_ps(acc0[t], acc1[t]));
      for (int64_t k = i; k < n; ++k) s = fma1(Load::one(w[k]), Load::one(a[k]), s);
      y[size_t(t) * ys] = s;
    }
  }
};

// F32 rows in ggml_vec_dot_f32's order (cpu_dot.cpp dot_f32_vec): 4 accumulators of 16 lanes (each
// two 8-lane halves here) over 64-element steps, added (0 + 2) + (1 + 3), the 16 lanes folded as
// hsum(lo + hi), then the tail one fma at a time.
struct FloatVecDot {
  template <int NT>
  static void run(const void* wv, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    const float* w = static_cast<const float*>(wv);
    __m256 acc[NT][8];
    for (int t = 0; t < NT; ++t)
      for (int j = 0; j < 8; ++j) acc[t][j] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      __m256 wv8[8];
      #pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) wv8[j] = _mm256_loadu_ps(w + i + 8 * j);
      #pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const float* a = act_row<float>(av, as, t) + i;
        #pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) acc[t][j] = _mm256_fmadd_ps(wv8[j], _mm256_loadu_ps(a + 8 * j), acc[t][j]);
      }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const float* a = act_row<float>(av, as, t);
      // accumulator j = halves 2j (lanes 0-7) and 2j + 1 (lanes 8-15)
      const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][4]), _mm256_add_ps(acc[t][2], acc[t][6]));
      const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[t][1], acc[t][5]), _mm256_add_ps(acc[t][3], acc[t][7]));
      float s = hsum(_mm256_add_ps(lo, hi));
      for (int64_t k = i; k < n; ++k) s = fma1(w[k], a[k], s);
      y[size_t(t) * ys] = s;
    }
  }
};

struct LoadF32 {
  using T = float;
  static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
  static float one(float x) { return x; }
};
struct LoadF16 {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static float one(uint16_t x) { return h2f(x); }
};
struct LoadBF16 {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float one(uint16_t x) {
    const uint32_t bits = uint32_t(x) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
};

#if FF_AVX512BF16
// bf16 x bf16 products are exact in fp32; vdpbf16ps adds pairs of them into 16 float lanes.
struct BF16Dot {
  template <int NT>
  static void run(const void* wv, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    const uint16_t* w = static_cast<const uint16_t*>(wv);
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512bh wv32 = (__m512bh)_mm512_loadu_si512(w + i);
      for (int t = 0; t < NT; ++t)
        acc[t] = _mm512_dpbf16_ps(acc[t], wv32, (__m512bh)_mm512_loadu_si512(act_row<uint16_t>(av, as, t) + i));
    }
    #pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const uint16_t* a = act_row<uint16_t>(av, as, t);
      const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1));
      float s = hsum(_mm256_add_ps(_mm512_castps512_ps256(acc[t]), hi));
      for (int64_t k = i; k < n; ++k) s += LoadBF16::one(w[k]) * LoadBF16::one(a[k]);
      y[size_t(t) * ys] = s;
    }
  }
};
using BF16Kernel = BF16Dot;
#else
using BF16Kernel = FloatRows<LoadBF16>;
#endif

DotTileFn dot_tile_x86(TensorType t) {
  switch (t) {
    case TensorType::F32: return tile<FloatRows<LoadF32>>;
    case TensorType::F16: return tile<FloatRows<LoadF16>>;
    case TensorType::BF16: return tile<BF16Kernel>;
    case TensorType::Q8_0: return tile<Q32<DecodeQ8_0>>;
    case TensorType::Q4_0: return tile<Q32<DecodeQ4_0>>;
    case TensorType::MXFP4: return tile<Q32<DecodeMXFP4>>;
    case TensorType::Q4_K: return tile<Q45K<false>>;
    case TensorType::Q5_K: return tile<Q45K<true>>;
    case TensorType::Q6_K: return tile<Q6K>;
    case TensorType::IQ4_XS: return tile<IQ4XS>;
    default: return nullptr;
  }
}

// --- activation quantizers: bit-identical to cpu_dot.cpp's (same float products, round half to even
// by cvtps under the default MXCSR mode, same saturation) ---

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), v); }

// Four vectors of 8 int32 (each within int8 range) -> 32 int8 in element order.
inline void store_i8x32(int8_t* dst, __m256i q0, __m256i q1, __m256i q2, __m256i q3) {
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

void quantize_q8_0_x86(const float* x, void* dst, int64_t n) {
  block_q8_0* y = static_cast<block_q8_0*>(dst);
  for (int64_t b = 0; b < n / QK8_0; ++b, x += QK8_0) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(abs8(v0), abs8(v1)), _mm256_max_ps(abs8(v2), abs8(v3))));
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    y[b].d = fp32_to_fp16(amax / 127.f);
    const __m256 m = _mm256_set1_ps(id);
    store_i8x32(y[b].qs, _mm256_cvtps_epi32(_mm256_mul_ps(v0, m)), _mm256_cvtps_epi32(_mm256_mul_ps(v1, m)),
                _mm256_cvtps_epi32(_mm256_mul_ps(v2, m)), _mm256_cvtps_epi32(_mm256_mul_ps(v3, m)));
  }
}

void quantize_q8_K_x86(const float* x, void* dst, int64_t n) {
  block_q8_K* y = static_cast<block_q8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, x += QK_K) {
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < QK_K; i += 8) mx = _mm256_max_ps(mx, abs8(_mm256_loadu_ps(x + i)));
    const float amax = hmax(mx);
    if (amax == 0.f) {
      __builtin_memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    // The first element of largest magnitude gives the sign, as the scalar scan's strict '>' does.
    int first = 0;
    for (int i = 0; i < QK_K; i += 8) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + i)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (hit) {
        first = i + __builtin_ctz(unsigned(hit));
        break;
      }
    }
    const float iscale = -127.f / x[first];
    const __m256 m = _mm256_set1_ps(iscale);
    const __m256i cap = _mm256_set1_epi32(127);
    for (int i = 0; i < QK_K; i += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), m)), cap);
      store_i8x32(y[b].qs + i, q[0], q[1], q[2], q[3]);
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      const __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(y[b].qs + 16 * g)));
      const __m128i w2 = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(y[b].qs + 16 * g + 8)));
      __m128i s = _mm_madd_epi16(_mm_add_epi16(w, w2), _mm_set1_epi16(1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
      y[b].bsums[g] = int16_t(_mm_cvtsi128_si32(s));
    }
    y[b].d = 1.f / iscale;
  }
}

// --- attention helpers and the bandwidth probe ---

float dot_f32_x86(const float* a, const float* b, int64_t n) {
  float y;
  FloatRows<LoadF32>::run<1>(a, b, 0, n, &y, 0);
  return y;
}

void scale_f32_x86(float alpha, float* y, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(a, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] *= alpha;
}

// cpu_expf.h's expf, four lanes of doubles at a time with the same fmas; lanes outside the main path
// (|x| >= ~88, inf, NaN) are redone by the scalar definition.
void exp_f32_x86(const float* x, float* y, int64_t n) {
  using namespace expf_consts;
  const __m256d inv_ln2n = _mm256_set1_pd(kInvLn2N), shift = _mm256_set1_pd(kShift), one = _mm256_set1_pd(1.0);
  const __m256d c0 = _mm256_set1_pd(kC0), c1 = _mm256_set1_pd(kC1), c2 = _mm256_set1_pd(kC2);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 xf = _mm_loadu_ps(x + i);
    const __m256d xd = _mm256_cvtps_pd(xf);
    const __m256d kd_shifted = _mm256_fmadd_pd(inv_ln2n, xd, shift);
    const __m256i ki = _mm256_castpd_si256(kd_shifted);
    const __m256d r = _mm256_fmsub_pd(inv_ln2n, xd, _mm256_sub_pd(kd_shifted, shift));
    const __m256i t = _mm256_add_epi64(
        _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTable), _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8),
        _mm256_slli_epi64(ki, 47));
    const __m256d z = _mm256_fmadd_pd(r, c0, c1), r2 = _mm256_mul_pd(r, r);
    const __m256d yd = _mm256_mul_pd(_mm256_fmadd_pd(z, r2, _mm256_fmadd_pd(r, c2, one)), _mm256_castsi256_pd(t));
    _mm_storeu_ps(y + i, _mm256_cvtpd_ps(yd));
    const __m128i top = _mm_and_si128(_mm_srli_epi32(_mm_castps_si128(xf), 20), _mm_set1_epi32(0x7ff));
    if (int special = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(top, _mm_set1_epi32(int(kSpecialTop) - 1)))))
      for (int k = 0; k < 4; ++k)
        if (special >> k & 1) y[i + k] = expf_reference(x[i + k]);
  }
  for (; i < n; ++i) y[i] = expf_reference(x[i]);
}

// cpu_silu.h's expf_vector, 8 lanes at a time with the same fmas; 2^k from the exponent bits where k
// is in [-126, 127] (then j * 2^k rounds once, as vscalefps). Lanes outside that range are set in the
// returned mask; the caller redoes them with the scalar definition.
inline __m256 expf_vector8(__m256 x, int* outside) {
  using namespace silu_consts;
  const __m256 shift = _mm256_set1_ps(kShift), one = _mm256_set1_ps(1.f);
  const __m256 k = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), shift), shift);
  const __m256 b = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Lo), _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Hi), x));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 poly = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(kP5), b, _mm256_set1_ps(kP4)), u,
                      _mm256_fmadd_ps(_mm256_set1_ps(kP3), b, _mm256_set1_ps(kP2))),
      u, _mm256_fmadd_ps(_mm256_set1_ps(kP1), b, one));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  const __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(k, _mm256_set1_ps(-126.f), _CMP_GE_OQ),
                                        _mm256_cmp_ps(k, _mm256_set1_ps(127.f), _CMP_LE_OQ));
  *outside = ~_mm256_movemask_ps(in_range) & 0xff;
  return _mm256_mul_ps(poly, _mm256_castsi256_ps(exponent));
}

#ifdef __AVX512F__
// expf_vector8 on 16 lanes, the same operations on each: the softmax's and SwiGLU's exps in fewer
// instructions (3.15 -> 3.6-3.7 G exps per CPU-second, SiLU 2.45 -> 3.3; one core, 4096 values).
inline __m512 expf_vector16(__m512 x, __mmask16* outside) {
  using namespace silu_consts;
  const __m512 shift = _mm512_set1_ps(kShift), one = _mm512_set1_ps(1.f);
  const __m512 k = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), shift), shift);
  const __m512 b = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Lo), _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Hi), x));
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 poly = _mm512_fmadd_ps(
      _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(kP5), b, _mm512_set1_ps(kP4)), u,
                      _mm512_fmadd_ps(_mm512_set1_ps(kP3), b, _mm512_set1_ps(kP2))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(kP1), b, one));
  const __m512i exponent = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
  const __mmask16 in_range = _mm512_cmp_ps_mask(k, _mm512_set1_ps(-126.f), _CMP_GE_OQ) & _mm512_cmp_ps_mask(k, _mm512_set1_ps(127.f), _CMP_LE_OQ);
  *outside = __mmask16(~in_range);
  return _mm512_mul_ps(poly, _mm512_castsi512_ps(exponent));
}
#endif

// Applies f (expf_vector or silu) W lanes at a time over the first n / W * W elements and returns
// that count: lanes(x, in, out) loads W floats from x, saves them to `in` (y may be x) with one store
// of the same width (a narrower copy would stall the load on store forwarding), writes f of them to
// out and returns the mask of lanes expf_vector16/8 flagged, which are redone with the scalar
// definition.
template <float (*Scalar)(float), int W, class Lanes>
int64_t apply_lanes(const float* x, float* y, int64_t n, Lanes lanes) {
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    alignas(64) float in[W];
    for (unsigned outside = lanes(x + i, in, y + i), l = 0; outside; ++l, outside >>= 1)
      if (outside & 1) y[i + l] = Scalar(in[l]);
  }
  return i;
}

// Both run 16 lanes at a time (AVX-512), then 8, then one at a time.
void exp_vector_f32_x86(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#ifdef __AVX512F__
  i = apply_lanes<expf_vector, 16>(x, y, n, [](const float* from, float* in, float* out) {
    const __m512 xv = _mm512_loadu_ps(from);
    _mm512_store_ps(in, xv);
    __mmask16 outside;
    _mm512_storeu_ps(out, expf_vector16(xv, &outside));
    return unsigned(outside);
  });
#endif
  i += apply_lanes<expf_vector, 8>(x + i, y + i, n - i, [](const float* from, float* in, float* out) {
    const __m256 xv = _mm256_loadu_ps(from);
    _mm256_store_ps(in, xv);
    int outside;
    _mm256_storeu_ps(out, expf_vector8(xv, &outside));
    return unsigned(outside);
  });
  for (; i < n; ++i) y[i] = expf_vector(x[i]);
}

// cpu_silu.h's silu: x / (1 + expf_vector(0 - x)).
void silu_f32_x86(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#ifdef __AVX512F__
  i = apply_lanes<silu, 16>(x, y, n, [](const float* from, float* in, float* out) {
    const __m512 xv = _mm512_loadu_ps(from);
    _mm512_store_ps(in, xv);
    __mmask16 outside;
    const __m512 e = expf_vector16(_mm512_sub_ps(_mm512_setzero_ps(), xv), &outside);
    _mm512_storeu_ps(out, _mm512_div_ps(xv, _mm512_add_ps(_mm512_set1_ps(1.f), e)));
    return unsigned(outside);
  });
#endif
  i += apply_lanes<silu, 8>(x + i, y + i, n - i, [](const float* from, float* in, float* out) {
    const __m256 xv = _mm256_loadu_ps(from);
    _mm256_store_ps(in, xv);
    int outside;
    const __m256 e = expf_vector8(_mm256_sub_ps(_mm256_setzero_ps(), xv), &outside);
    _mm256_storeu_ps(out, _mm256_div_ps(xv, _mm256_add_ps(_mm256_set1_ps(1.f), e)));
    return unsigned(outside);
  });
  for (; i < n; ++i) y[i] = silu(x[i]);
}

// The scalar rope_f32 with the fmas as instructions (fma1), which the compiler may vectorize.
void rope_f32_x86(float* head, const float* cs, int n_rot) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1], x0 = head[i], x1 = head[i + half];
    head[i] = fma1(x0, c, -(x1 * s));
    head[i + half] = fma1(x0, s, x1 * c);
  }
}

uint64_t stream_read_x86(const void* data, size_t bytes) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  for (size_t i = 0; i + 128 <= bytes; i += 128)
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_xor_si256(acc[k], loadu(p + i + 32 * k));
  const __m256i x = _mm256_xor_si256(_mm256_xor_si256(acc[0], acc[1]), _mm256_xor_si256(acc[2], acc[3]));
  return uint64_t(_mm256_extract_epi64(x, 0) ^ _mm256_extract_epi64(x, 1) ^ _mm256_extract_epi64(x, 2) ^ _mm256_extract_epi64(x, 3));
}
