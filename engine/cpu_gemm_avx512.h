// The repacked prefill GEMMs (cpu_kernels.h GemmKernel), AVX-512 VNNI only. Include only from
// cpu_kernels_avx512.cpp, inside its anonymous namespace, after cpu_kernels_x86.h (same rules).
//
// Why repack: the file's layout keeps a row's block contiguous, so an int8 dot of one row with one
// token fills 8 int32 lanes that must then be reduced, and K-quant sub-block scales have to be applied
// per 32 products in 16-bit (vpmaddubsw + vpdpwssd: two multiply uops per 32 products). Interleaving
// the rows 4 bytes at a time lets one vpdpbusd (with the token's 4 activation bytes broadcast) do 64
// products for 16 rows at once, each int32 lane one output; scales are applied once per sub-block
// and token to all 16 rows. A type whose packed group is exactly its 16 rows' bytes (Q4_K) is packed
// once at load (cpu_packed_weights.h) and every token count, decode included, reads that copy; the
// others (Q8_0, Q6_K: their packed blocks are larger) are packed per matrix call into scratch the size
// of one row group, so their resident memory is unchanged (cpu_ops.cpp matmul_jobs).
//
// Float order: each output's chain is exactly the scalar oracle's (cpu_dot.cpp), so these kernels
// are bit-identical to every dot_tile path; they only move where the exact integer work happens.

inline __m512i load64(const void* p) { return _mm512_loadu_si512(p); }
inline int32_t load_i32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline __mmask16 row_mask(int nrows) { return __mmask16((1u << nrows) - 1u); }

// get_scale_min_k4 on 16 rows at once, from the block's three scale dwords of each row (w0, w1, w2,
// row r in int32 lane r): byte j of lane r of sc03 is row r's scale j, of sc47 its scale 4 + j, and
// likewise m03, m47 for the mins. The GEMM and the decode GEMV (cpu_gemv_avx512.h) share it.
struct K4Scales16 {
  __m512i sc03, sc47, m03, m47;
};
inline K4Scales16 k4_scales_16(__m512i w0, __m512i w1, __m512i w2) {
  const __m512i low6 = _mm512_set1_epi32(0x3f3f3f3f), low4 = _mm512_set1_epi32(0x0f0f0f0f), low2 = _mm512_set1_epi32(0x03030303);
  return {_mm512_and_si512(w0, low6),
          _mm512_or_si512(_mm512_and_si512(w2, low4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), low2), 4)),
          _mm512_and_si512(w1, low6),
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), low4),
                          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), low2), 4))};
}

// A token's 4 dwords (int16 pairs of its sub-block sums) as vpdpwssd operands broadcast from memory:
// stored once, each is read back by the vpdpwssd's own embedded broadcast, so the mins term needs
// no extract and broadcast uops, which compete with the vpdpbusd stream (2-4% of the standard-order
// Q4_K GEMM; K4PairMins16, whose four products stay separate, measured 2-3% slower with it). In
// assembly because GCC folds a _mm512_set1_epi32 of the stored value back into those uops.
struct BroadcastDwords {
  alignas(16) int32_t dword[4];
  explicit BroadcastDwords(__m128i x) { _mm_store_si128(reinterpret_cast<__m128i*>(dword), x); }
  __m512i dpwssd(__m512i acc, __m512i w, int k) const {  // acc + w * (dword k in every lane)
    asm("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(dword[k]));
    return acc;
  }
};

// The mins term sum_j m_j * (a's sum over sub-block j) of 16 rows against one token, exact in int32.
struct K4Mins16 {
  __m512i pair[4];  // the mins as int16 pairs for vpdpwssd: (m0, m2), (m1, m3), (m4, m6), (m5, m7)
  explicit K4Mins16(const K4Scales16& s) {
    const __m512i bytes02 = _mm512_set1_epi32(0x00ff00ff);
    pair[0] = _mm512_and_si512(s.m03, bytes02), pair[1] = _mm512_and_si512(_mm512_srli_epi32(s.m03, 8), bytes02);
    pair[2] = _mm512_and_si512(s.m47, bytes02), pair[3] = _mm512_and_si512(_mm512_srli_epi32(s.m47, 8), bytes02);
  }
  __m512i times(const block_q8_K& a) const {
    // Sub-block sums S0..S7 as int16, regrouped to dwords (S0, S2), (S1, S3), (S4, S6), (S5, S7).
    const __m128i s8 = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8)));
    const __m128i pairs = _mm_shuffle_epi8(s8, _mm_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15));
    const BroadcastDwords sums(pairs);
    __m512i mins = _mm512_setzero_si512();
    #pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) mins = sums.dpwssd(mins, pair[k], k);
    return mins;
  }
};

// The mins term per pair of sub-blocks, out[c] = m_2c * S_2c + m_2c+1 * S_2c+1 (S_j: a's sum over
// sub-block j), of 16 rows against one token, exact in int32: DotOrder::SubBlockPairs's chain takes
// one per pair. One vpdpwssd per pair, as K4Mins16 does for the whole block.
struct K4PairMins16 {
  __m512i pair[4];  // the mins as int16 pairs (m_2c, m_2c+1)
  explicit K4PairMins16(const K4Scales16& s) {
    const __m512i low = _mm512_set1_epi32(0xff), high = _mm512_set1_epi32(0xff0000);
    pair[0] = _mm512_or_si512(_mm512_and_si512(s.m03, low), _mm512_and_si512(_mm512_slli_epi32(s.m03, 8), high));
    pair[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s.m03, 16), low), _mm512_and_si512(_mm512_srli_epi32(s.m03, 8), high));
    pair[2] = _mm512_or_si512(_mm512_and_si512(s.m47, low), _mm512_and_si512(_mm512_slli_epi32(s.m47, 8), high));
    pair[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s.m47, 16), low), _mm512_and_si512(_mm512_srli_epi32(s.m47, 8), high));
  }
  void times(const block_q8_K& a, __m512i out[4]) const {
    // Sub-block sums S0..S7 as int16: dword c holds (S_2c, S_2c+1).
    const __m128i s8 = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 8)));
    out[0] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), pair[0], _mm512_set1_epi32(_mm_extract_epi32(s8, 0)));
    out[1] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), pair[1], _mm512_set1_epi32(_mm_extract_epi32(s8, 1)));
    out[2] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), pair[2], _mm512_set1_epi32(_mm_extract_epi32(s8, 2)));
    out[3] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), pair[3], _mm512_set1_epi32(_mm_extract_epi32(s8, 3)));
  }
};

// Dword k (k < dwords) of block b of each of the group's rows, row r in int32 lane r; missing rows 0.
inline __m512i gather_rows(const uint8_t* rows, size_t row_bytes, int nrows, size_t offset) {
  const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(int(row_bytes)));
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), row_mask(nrows), index, rows + offset, 1);
}

// Dwords k0..k0 + 15 at `offset` of the group's rows, transposed: out[k] holds dword k0 + k of row
// r in lane r; missing rows 0. Three shuffle stages (dwords, qwords, 128-bit lanes) instead of 16
// vpgatherdd: a gather is one load uop per element and was most of the Q4_K pack's time.
inline void transpose_rows(const uint8_t* rows, size_t row_bytes, int nrows, size_t offset, __m512i out[16]) {
  __m512i r[16], a[16];
  #pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = i < nrows ? load64(rows + size_t(i) * row_bytes + offset) : _mm512_setzero_si512();
  // a[2p], a[2p + 1]: rows 2p, 2p + 1 interleaved, dwords (0, 1) and (2, 3) of each 128-bit lane.
  #pragma GCC unroll 8
  for (int p = 0; p < 8; ++p) a[2 * p] = _mm512_unpacklo_epi32(r[2 * p], r[2 * p + 1]), a[2 * p + 1] = _mm512_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
  // r[4q + j]: lane L holds dword 4L + j of rows 4q..4q + 3.
  #pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    const __m512i* x = a + 4 * q;
    r[4 * q] = _mm512_unpacklo_epi64(x[0], x[2]), r[4 * q + 1] = _mm512_unpackhi_epi64(x[0], x[2]);
    r[4 * q + 2] = _mm512_unpacklo_epi64(x[1], x[3]), r[4 * q + 3] = _mm512_unpackhi_epi64(x[1], x[3]);
  }
  // Dword 4L + j of all rows: lane L of r[j], r[4 + j], r[8 + j], r[12 + j], in that order.
  #pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i p0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), p1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xee);
    const __m512i p2 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44), p3 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xee);
    out[j] = _mm512_shuffle_i32x4(p0, p2, 0x88), out[4 + j] = _mm512_shuffle_i32x4(p0, p2, 0xdd);
    out[8 + j] = _mm512_shuffle_i32x4(p1, p3, 0x88), out[12 + j] = _mm512_shuffle_i32x4(p1, p3, 0xdd);
  }
}

template <class K>
void gemm_tile(const void* packed, const void* a, size_t as, int nt, int64_t n, float* y, size_t ys, int nrows) {
  run_for_tokens<K>(nt, packed, a, as, n, y, ys, nrows);
}

// Q4_K, 16 rows per group. Per 256-element block: the (d, dmin) fp16 pair as 16 dwords, the 12 scale
// bytes as 3 x 16 dwords (dword k of every row), then the 128 nibble bytes as 32 x 16 dwords (dword
// 8c + v of every row: bytes 32c + 4v.. of qs, whose low nibbles are elements 4v..4v+3 of sub-block 2c
// and high nibbles those of sub-block 2c + 1). The whole pack is a transpose of the block's 36 dwords
// per row, gathered 16 rows at a time: exactly the file's bytes, so a matrix packed once at load
// (cpu_packed_weights.h) costs decode no extra traffic and is read front to back.
//
// Per output: sum = the block's exact integer sum_s sc_s * dot(q_s, a_s), mins = sum_s m_s * (a's sum
// over sub-block s), then acc_sum = fma(a.d * d, float(sum), acc_sum) and acc_min likewise with dmin,
// result acc_sum - acc_min: cpu_dot.cpp dot_q45_K's order for Q4_K. kPairs (DotOrder::SubBlockPairs):
// both chains take one fma per pair of sub-blocks instead (cpu_dot.cpp dot_q4_K_pairs).
template <bool kPairs>
struct GemmQ4K {
  static constexpr size_t kBlock = 64 + 3 * 64 + 32 * 64;
  static_assert(kBlock == kGemmRows * sizeof(block_q4_K));

  static size_t packed_bytes(int64_t n) { return size_t(n / QK_K) * kBlock; }

  static void pack(const uint8_t* rows, size_t row_bytes, int nrows, int64_t n, void* dst) {
    uint8_t* out = static_cast<uint8_t*>(dst);
    for (int64_t b = 0; b < n / QK_K; ++b, out += kBlock) {
      const size_t at = size_t(b) * sizeof(block_q4_K);
      __m512i dwords[16];
      for (int k0 = 0; k0 < 32; k0 += 16) {  // (d, dmin), 3 scale dwords, then 32 nibble dwords
        transpose_rows(rows, row_bytes, nrows, at + 4 * size_t(k0), dwords);
        #pragma GCC unroll 16
        for (int k = 0; k < 16; ++k) _mm512_storeu_si512(out + 64 * (k0 + k), dwords[k]);
      }
      for (int k = 32; k < 36; ++k)  // the last 4 (a transpose would read past a row's 144 bytes)
        _mm512_storeu_si512(out + 64 * k, gather_rows(rows, row_bytes, nrows, at + 4 * size_t(k)));
    }
  }

  // Tokens per pass over the group's weights. Each token keeps two int32 accumulators per pair of
  // sub-blocks, a block sum and two float chains in registers: five tokens fit the 32 zmm registers
  // with the unpacked weights and scales, eight spill, and the spills cost more than unpacking the
  // weights (from L1) once more. So a tile of 6..kTileTokens tokens is two passes (6 as 3 + 3, 7 as 4 +
  // 3, 8 as 4 + 4), which measured 2-5% faster than one 8-token pass (docs/BENCHMARKS.md).
  static constexpr int kPassTokens = 5;

  static void tile(const void* packed, const void* a, size_t as, int nt, int64_t n, float* y, size_t ys, int nrows) {
    const int first = nt <= kPassTokens ? nt : (nt + 1) / 2;
    pass(first, packed, a, as, n, y, ys, nrows);
    if (nt > first) pass(nt - first, packed, static_cast<const uint8_t*>(a) + size_t(first) * as, as, n, y + size_t(first) * ys, ys, nrows);
  }

  static void pass(int nt, const void* packed, const void* a, size_t as, int64_t n, float* y, size_t ys, int nrows) {
    static_assert(kPassTokens == 5);
    switch (nt) {
      case 1: return run<1>(packed, a, as, n, y, ys, nrows);
      case 2: return run<2>(packed, a, as, n, y, ys, nrows);
      case 3: return run<3>(packed, a, as, n, y, ys, nrows);
      case 4: return run<4>(packed, a, as, n, y, ys, nrows);
      default: return run<5>(packed, a, as, n, y, ys, nrows);
    }
  }

  template <int NT>
  static void run(const void* pv, const void* av, size_t as, int64_t n, float* y, size_t ys, int nrows) {
    const uint8_t* p = static_cast<const uint8_t*>(pv);
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512 acc[NT], acc_min[NT];
    for (int t = 0; t < NT; ++t) acc[t] = acc_min[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; ++b, p += kBlock) {
      const K4Scales16 scales = k4_scales_16(load64(p + 64), load64(p + 128), load64(p + 192));
      const K4Mins16 mins(scales);
      const __m512i byte0 = _mm512_set1_epi32(0xff);
      __m512i sc[8];
      #pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) sc[s] = _mm512_and_si512(_mm512_srli_epi32(s < 4 ? scales.sc03 : scales.sc47, 8 * (s % 4)), byte0);
      __m512i sum[NT];
      #pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) sum[t] = _mm512_setzero_si512();
      const uint8_t* q = p + 256;
      const __m512i d_dmin = load64(p);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d_dmin));
      const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(d_dmin, 16)));
      if constexpr (kPairs) {
        // The mins chain does not depend on the products: its four fmas (pairs in order, as in the
        // oracle) run here, so no pair's mins wait in registers or on the stack for the c loop.
        const K4PairMins16 pm(scales);
        #pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const block_q8_K& a = act_row<block_q8_K>(av, as, t)[b];
          __m512i pair_mins[4];
          pm.times(a, pair_mins);
          const __m512 ad_dmin = _mm512_mul_ps(_mm512_set1_ps(a.d), dmin);
          #pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) acc_min[t] = _mm512_fmadd_ps(ad_dmin, _mm512_cvtepi32_ps(pair_mins[c]), acc_min[t]);
        }
      }
      #pragma GCC unroll 1
      for (int c = 0; c < 4; ++c) {
        __m512i lo_sum[NT], hi_sum[NT];  // sub-blocks 2c and 2c + 1
        #pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) lo_sum[t] = hi_sum[t] = _mm512_setzero_si512();
        #pragma GCC unroll 8
        for (int v = 0; v < 8; ++v) {
          const __m512i raw = load64(q + 64 * (8 * c + v));
          const __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
          #pragma GCC unroll 8
          for (int t = 0; t < NT; ++t) {
            const int8_t* a = act_row<block_q8_K>(av, as, t)[b].qs + 64 * c + 4 * v;
            lo_sum[t] = _mm512_dpbusd_epi32(lo_sum[t], lo, _mm512_set1_epi32(load_i32(a)));
            hi_sum[t] = _mm512_dpbusd_epi32(hi_sum[t], hi, _mm512_set1_epi32(load_i32(a + 32)));
          }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const __m512i pair = _mm512_add_epi32(_mm512_mullo_epi32(lo_sum[t], sc[2 * c]), _mm512_mullo_epi32(hi_sum[t], sc[2 * c + 1]));
          if constexpr (kPairs) {
            const __m512 ad = _mm512_set1_ps(act_row<block_q8_K>(av, as, t)[b].d);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(ad, d), _mm512_cvtepi32_ps(pair), acc[t]);
          } else {
            sum[t] = _mm512_add_epi32(sum[t], pair);
          }
        }
      }
      if constexpr (kPairs) continue;
      #pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const block_q8_K& a = act_row<block_q8_K>(av, as, t)[b];
        const __m512 ad = _mm512_set1_ps(a.d);
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(ad, d), _mm512_cvtepi32_ps(sum[t]), acc[t]);
        acc_min[t] = _mm512_fmadd_ps(_mm512_mul_ps(ad, dmin), _mm512_cvtepi32_ps(mins.times(a)), acc_min[t]);
      }
    }
    for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + size_t(t) * ys, row_mask(nrows), _mm512_sub_ps(acc[t], acc_min[t]));
  }
};

// The GEMMs that keep the oracle's 8 float lanes per output (Q8_0, Q6_K) hold two rows' lanes per
// 512-bit vector, row 2p in the low half and 2p + 1 in the high. K::block<NT>(.., pair0, nrows)
// computes rows 2 * pair0 .. 2 * (pair0 + kBlockPairs) - 1 (those below nrows) x NT <= kBlockTokens
// tokens in registers; run_pair_blocks covers a tile with such blocks and store_pair_sums writes a
// block's outputs (each half's hsum, FloatLanes::sum's order).
constexpr int kBlockPairs = 4, kBlockTokens = 4;  // register block: 4 pairs x 4 tokens of 16 float lanes

template <class K, int NT>
void run_pair_blocks(const void* pv, const void* av, size_t as, int64_t n, float* y, size_t ys, int nrows) {
  for (int pair0 = 0; 2 * pair0 < nrows; pair0 += kBlockPairs)
    for (int t0 = 0; t0 < NT; t0 += kBlockTokens) {
      const void* a = act_row<uint8_t>(av, as, t0);
      float* yt = y + size_t(t0) * ys;
      switch (NT - t0 < kBlockTokens ? NT - t0 : kBlockTokens) {
        case 1: K::template block<1>(pv, a, as, n, yt, ys, pair0, nrows); break;
        case 2: K::template block<2>(pv, a, as, n, yt, ys, pair0, nrows); break;
        case 3: K::template block<3>(pv, a, as, n, yt, ys, pair0, nrows); break;
        default: K::template block<kBlockTokens>(pv, a, as, n, yt, ys, pair0, nrows);
      }
    }
}

template <int NT>
void store_pair_sums(const __m512 (&acc)[kBlockPairs][NT], float* y, size_t ys, int pair0, int nrows) {
  #pragma GCC unroll 4
  for (int k = 0; k < kBlockPairs; ++k)
    #pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const int r = 2 * (pair0 + k);
      if (r < nrows) y[size_t(t) * ys + size_t(r)] = hsum(_mm512_castps512_ps256(acc[k][t]));
      if (r + 1 < nrows)
        y[size_t(t) * ys + size_t(r) + 1] = hsum(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[k][t]), 1)));
    }
}

// Q8_0, 16 rows per group as 8 pairs. Per 32-element block: d as 16 floats, then per pair 64 bytes,
// the two rows' weights + 128 as unsigned bytes (the oracle keeps 8 float lanes per output, so a
// 512-bit vector holds two outputs' lanes, not 16 outputs). w * a = (w + 128) * a - 128 * a: the
// second term depends on the token only, so it seeds the vpdpbusd accumulator once per token and
// block for all rows, replacing the sign trick's two extra uops per row.
//
// Per output: lane i of block b = the exact dot over bytes 4i..4i+3, acc_i = fma(d * a.d, lane_i,
// acc_i), then FloatLanes::sum's order (hsum): cpu_dot.cpp dot_q32.
struct GemmQ8_0 {
  static constexpr size_t kBlock = 64 + 8 * 64;

  static size_t packed_bytes(int64_t n) { return size_t(n / QK8_0) * kBlock; }

  static void pack(const uint8_t* rows, size_t row_bytes, int nrows, int64_t n, void* dst) {
    uint8_t* out = static_cast<uint8_t*>(dst);
    const __m256i bias = _mm256_set1_epi8(char(0x80));
    for (int64_t b = 0; b < n / QK8_0; ++b, out += kBlock) {
      const size_t at = size_t(b) * sizeof(block_q8_0);
      _mm512_storeu_ps(out, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(gather_rows(rows, row_bytes, nrows, at))));
      for (int r = 0; r < kGemmRows; ++r) {
        const __m256i w = r < nrows ? _mm256_xor_si256(loadu(rows + size_t(r) * row_bytes + at + 2), bias) : _mm256_setzero_si256();
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 + 32 * r), w);
      }
    }
  }

  template <int NT>
  static void run(const void* pv, const void* av, size_t as, int64_t n, float* y, size_t ys, int nrows) {
    run_pair_blocks<GemmQ8_0, NT>(pv, av, as, n, y, ys, nrows);
  }

  template <int NT>
  static void block(const void* pv, const void* av, size_t as, int64_t n, float* y, size_t ys, int pair0, int nrows) {
    const uint8_t* p = static_cast<const uint8_t*>(pv);
    const __m512i bias = _mm512_set1_epi8(char(0x80));
    __m512 acc[kBlockPairs][NT];
    #pragma GCC unroll 4
    for (int k = 0; k < kBlockPairs; ++k)
      #pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) acc[k][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; ++b, p += kBlock) {
      __m512i act[NT], seed[NT];
      __m512 ad[NT];
      #pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const block_q8_0& a = act_row<block_q8_0>(av, as, t)[b];
        act[t] = _mm512_broadcast_i64x4(loadu(a.qs));  // both outputs of a pair see the token's 32 bytes
        seed[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, act[t]));
        ad[t] = _mm512_set1_ps(h2f(a.d));
      }
      const __m512 d = _mm512_loadu_ps(p);
      #pragma GCC unroll 4
      for (int k = 0; k < kBlockPairs; ++k) {
        const int pair = pair0 + k;
        const __m512i u = load64(p + 64 + 64 * pair);
        const __m512i lanes = _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm512_set1_epi32(2 * pair));
        const __m512 dpair = _mm512_permutexvar_ps(lanes, d);  // d of row 2 * pair, then of row 2 * pair + 1
        #pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
          acc[k][t] = _mm512_fmadd_ps(_mm512_mul_ps(dpair, ad[t]), _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed[t], u, act[t])), acc[k][t]);
      }
    }
    store_pair_sums<NT>(acc, y, ys, pair0, nrows);
  }
};

// Q6_K, 16 rows per group as 8 pairs, like Q8_0 (the oracle keeps 8 int32 lanes per output: lane i
// = bytes 4i..4i+3 of every 32-byte chunk). Per 256-element block: d as 16 floats; per pair its two
// rows' 16 signed scales as int16 (row 2p in the low 256 bits, 2p + 1 in the high); then per pair and
// 32-element chunk c the two rows' weights as unsigned 6-bit bytes (unpacked once here, not per token).
//
// Per output: lane i = sum_c sc_{2c + i / 4} * (q * a over the chunk's bytes 4i..4i+3), vpmaddubsw +
// vpdpwssd with the chunk's scales as int16, minus 32 * (sc_2i * bsums_2i + sc_2i+1 * bsums_2i+1) (one
// vpdpwssd of the scales against the token's bsums); acc_i = fma(a.d * d, float(lane_i), acc_i), then
// hsum: cpu_dot.cpp dot_q6_K's order.
struct GemmQ6K {
  static constexpr size_t kScales = 64, kWeights = 64 + (kGemmRows / 2) * 64;
  static constexpr size_t kBlock = kWeights + (kGemmRows / 2) * 8 * 64;

  static size_t packed_bytes(int64_t n) { return size_t(n / QK_K) * kBlock; }

  static void pack(const uint8_t* rows, size_t row_bytes, int nrows, int64_t n, void* dst) {
    uint8_t* out = static_cast<uint8_t*>(dst);
    for (int64_t b = 0; b < n / QK_K; ++b, out += kBlock)
      for (int r = 0; r < kGemmRows; ++r) {
        __m256i sc = _mm256_setzero_si256(), q[8];
        float d = 0;
        for (__m256i& v : q) v = _mm256_setzero_si256();
        if (r < nrows) {  // missing rows are packed as zeros
          const block_q6_K& w = reinterpret_cast<const block_q6_K*>(rows + size_t(r) * row_bytes)[b];
          d = h2f(w.d);
          sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales)));
          unpack_q6_K(w, q);
        }
        __builtin_memcpy(out + 4 * r, &d, 4);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kScales + 64 * (r / 2) + 32 * (r % 2)), sc);
        for (int c = 0; c < 8; ++c)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kWeights + 64 * (8 * (r / 2) + c) + 32 * (r % 2)), q[c]);
      }
  }

  template <int NT>
  static void run(const void* pv, const void* av, size_t as, int64_t n, float* y, size_t ys, int nrows) {
    run_pair_blocks<GemmQ6K, NT>(pv, av, as, n, y, ys, nrows);
  }

  template <int NT>
  static void block(const void* pv, const void* av, size_t as, int64_t n, float* y, size_t ys, int pair0, int nrows) {
    const uint8_t* p = static_cast<const uint8_t*>(pv);
    // vpermw index of chunk c's scales: words 0-7 (lanes 0-3 of the low row) take scale 2c, words 8-15
    // scale 2c + 1, and the high row's words the same from its 16 scales at word 16.
    const __m512i scale_pick = _mm512_set_epi64(0x0011001100110011, 0x0011001100110011, 0x0010001000100010, 0x0010001000100010,
                                                0x0001000100010001, 0x0001000100010001, 0x0000000000000000, 0x0000000000000000);
    __m512 acc[kBlockPairs][NT];
    #pragma GCC unroll 4
    for (int k = 0; k < kBlockPairs; ++k)
      #pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) acc[k][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; ++b, p += kBlock) {
      const block_q8_K* a[NT];
      __m512i bsums[NT];
      __m512 ad[NT];
      #pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        a[t] = &act_row<block_q8_K>(av, as, t)[b];
        bsums[t] = _mm512_broadcast_i64x4(loadu(a[t]->bsums));
        ad[t] = _mm512_set1_ps(a[t]->d);
      }
      const __m512 d = _mm512_loadu_ps(p);
      #pragma GCC unroll 1
      for (int k = 0; k < kBlockPairs; ++k) {
        const int pair = pair0 + k;
        const __m512i sc = load64(p + kScales + 64 * pair);
        const uint8_t* q = p + kWeights + 64 * 8 * size_t(pair);
        __m512i lanes[NT];
        #pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) lanes[t] = _mm512_setzero_si512();
        #pragma GCC unroll 8
        for (int c = 0; c < 8; ++c) {
          const __m512i w = load64(q + 64 * c);
          const __m512i scale16 = _mm512_permutexvar_epi16(_mm512_add_epi16(scale_pick, _mm512_set1_epi16(short(2 * c))), sc);
          #pragma GCC unroll 4
          for (int t = 0; t < NT; ++t) {
            const __m512i x = _mm512_broadcast_i64x4(loadu(a[t]->qs + 32 * c));
            lanes[t] = _mm512_dpwssd_epi32(lanes[t], _mm512_maddubs_epi16(w, x), scale16);
          }
        }
        const __m512i lanes_of = _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm512_set1_epi32(2 * pair));
        const __m512 dpair = _mm512_permutexvar_ps(lanes_of, d);  // d of row 2 * pair, then of row 2 * pair + 1
        #pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
          const __m512i bias = _mm512_slli_epi32(_mm512_dpwssd_epi32(_mm512_setzero_si512(), sc, bsums[t]), 5);
          acc[k][t] = _mm512_fmadd_ps(_mm512_mul_ps(dpair, ad[t]), _mm512_cvtepi32_ps(_mm512_sub_epi32(lanes[t], bias)), acc[k][t]);
        }
      }
    }
    store_pair_sums<NT>(acc, y, ys, pair0, nrows);
  }
};

const GemmKernel* gemm_avx512(TensorType t) {
  static const GemmKernel q4_K{GemmQ4K<false>::packed_bytes, GemmQ4K<false>::pack, GemmQ4K<false>::tile};
  static const GemmKernel q8_0{GemmQ8_0::packed_bytes, GemmQ8_0::pack, gemm_tile<GemmQ8_0>};
  static const GemmKernel q6_K{GemmQ6K::packed_bytes, GemmQ6K::pack, gemm_tile<GemmQ6K>};
  switch (t) {
    case TensorType::Q4_K: return &q4_K;
    case TensorType::Q8_0: return &q8_0;
    case TensorType::Q6_K: return &q6_K;
    default: return nullptr;
  }
}

const GemmKernel& gemm_q4_K_pairs_avx512() {
  static const GemmKernel k{GemmQ4K<true>::packed_bytes, GemmQ4K<true>::pack, GemmQ4K<true>::tile};
  return k;
}
