// The decode GEMVs (cpu_kernels.h GemvFn), AVX-512 VNNI only: kGemmRows rows read in place from the
// file's layout against 1..kGemvTokens tokens (a decode step, a speculative verify pass, an expert's
// few tokens in a prefill batch). Include only from cpu_kernels_avx512.cpp, inside its anonymous
// namespace, after cpu_gemm_avx512.h (same rules).
//
// Why: dot_tile works one row at a time, so every row pays its own scale unpacking, a shuffle per
// sub-block scale, two multiplies per 32 products (maddubs + dpwssd), a horizontal sum and two scalar
// fmas; with one token that is ~50 instructions per 256 products, and decode became compute-bound
// below DRAM bandwidth. Here 16 rows share all per-block work that does not depend on the row:
//  - one 512-bit vpdpbusd does 64 of a row's products, against activation vectors permuted once per
//    block and token to match the nibble layout (the low nibbles of qs bytes 0..63 are sub-blocks 0
//    and 2, so their activation vector is a.qs[0..31] then a.qs[64..95]); high nibbles are taken as
//    they sit (byte & 0xf0, i.e. 16 x the nibble), and the factor 16 is taken out of the block integer;
//  - the int32 lanes of the 16 rows are reduced by one transposed tree to one lane per (row,
//    sub-block), not 16 horizontal sums; its first two levels happen inside the dots (four rows'
//    bytes blended and permuted against activations permuted alike, see below), the third is one
//    128-bit swap and add per 8 rows, so a verify pass's extra tokens cost little more than their dots;
//  - the sub-block scales and mins are unpacked for 16 rows at once from the rows' block headers
//    (transposed in registers), and applied after the reduction with one vpmulld per 16 outputs;
//  - the float chains of 16 rows sit in the lanes of one register: one vfmadd per block and token.
//
// Float order: per output, acc = fma(float(isum), d * a.d, acc) and acc_min likewise with the mins,
// blocks in order, result acc - acc_min: cpu_dot.cpp dot_q45_K's order for Q4_K, so the results are
// bit-identical to the scalar oracle, dot_tile and the GEMM.

// The last level of the transposed reduction: a and b hold 16 int32 lanes each; lanes whose bit 2 is
// clear get a's sum of the lane pair (l, l ^ 4), the others b's (one 128-bit swap, two blends, an add).
inline __m512i fold_quads(__m512i a, __m512i b) {
  const __m512i keep = _mm512_mask_blend_epi32(0xF0F0, a, b);  // a's lanes where bit 2 is clear, b's where set
  const __m512i move = _mm512_mask_blend_epi32(0xF0F0, b, a);  // the partners, still in the wrong lanes
  return _mm512_add_epi32(keep, _mm512_shuffle_i32x4(move, move, 0xB1));
}

// Decode streams the weights from DRAM, and 16 rows read block by block are 16 interleaved streams,
// more than the hardware prefetchers follow (without this the kernel reads ~4 GB/s from DRAM on one
// core, with it ~15); so each block step requests the matching share of the next 16 rows (rows are
// adjacent in a matrix, and a thread's chunk of row groups is contiguous) into L2, in address order.
// Into L1 (T0) is 2x slower, all of the next group at once 2x slower, two groups ahead no better.
inline void prefetch_next_group(const uint8_t* w, size_t rb, int64_t b, int64_t nb) {
  const size_t share = size_t(kGemmRows) * rb / size_t(nb);  // bytes of the next group per block step
  const char* next = reinterpret_cast<const char*>(w) + size_t(kGemmRows) * rb + size_t(b) * share;
  for (size_t at = 0; at < share; at += 64) _mm_prefetch(next + at, _MM_HINT_T1);
}

// Q4_K, 16 rows. Per block: the rows' 16-byte headers (d, dmin, 12 scale bytes) are transposed into
// dword vectors (lane r = row r); each row's 128 nibble bytes are two 64-byte loads, i.e. four vpdpbusd
// per token ("part" k: 0 = low nibbles of bytes 0..63 = sub-blocks 0 | 2, 1 = high nibbles there =
// sub-blocks 1 | 3, 2 and 3 likewise for bytes 64..127 = sub-blocks 4 | 6 and 5 | 7; lanes 0..7 are
// the first sub-block's, 8..15 the second's). The tree leaves, per part and half h of the rows, lane i
// = row 8h + i of the part's first sub-block, lane 8 + i = of its second.
// kPairs (DotOrder::SubBlockPairs): both chains take one fma per pair of sub-blocks; qs bytes 64c..
// hold pairs 2c (lanes 0..7 of the summed parts) and 2c + 1 (lanes 8..15).
template <bool kPairs>
struct GemvQ4K {
  template <int NT>
  static void run(const uint8_t* w, size_t rb, const void* av, size_t as, int64_t n, float* y, size_t ys) {
    const __m512i low = _mm512_set1_epi8(0x0f), high = _mm512_set1_epi8(char(0xf0));
    __m512 acc[NT], acc_min[NT];
    for (int t = 0; t < NT; ++t) acc[t] = acc_min[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; ++b) {
      const uint8_t* blk = w + size_t(b) * sizeof(block_q4_K);
      prefetch_next_group(w, rb, b, n / QK_K);
      __m512i hdr[4];
      header_dwords(blk, rb, hdr);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hdr[0]));
      const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(hdr[0], 16)));
      const K4Scales16 scales = k4_scales_16(hdr[1], hdr[2], hdr[3]);
      const K4Mins16 mins(scales);
      // Per half h and part k, the scales in the tree's lane order; the low-nibble parts' times 16, to
      // match the high nibbles' factor (the block integer is then exactly 16 x isum, below 2^31).
      __m512i sc[2][4];
      #pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const int pick = h ? 0xEE : 0x44;  // rows 8h..8h+7 into both halves
        const __m512i s03 = _mm512_shuffle_i64x2(scales.sc03, scales.sc03, pick);
        const __m512i s47 = _mm512_shuffle_i64x2(scales.sc47, scales.sc47, pick);
        // Rotations bring scale byte j (first sub-block, lanes 0..7) or j + 2 (second, lanes 8..15) to
        // bits 4..11 (low-nibble parts) or 0..7 (high-nibble parts).
        const __m512i rot_lo = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 20, 20, 20, 20, 20, 20, 20, 20);
        const __m512i rot_hi = _mm512_setr_epi32(24, 24, 24, 24, 24, 24, 24, 24, 8, 8, 8, 8, 8, 8, 8, 8);
        const __m512i mask_lo = _mm512_set1_epi32(0xff0), mask_hi = _mm512_set1_epi32(0xff);
        sc[h][0] = _mm512_and_si512(_mm512_rolv_epi32(s03, rot_lo), mask_lo);
        sc[h][1] = _mm512_and_si512(_mm512_rolv_epi32(s03, rot_hi), mask_hi);
        sc[h][2] = _mm512_and_si512(_mm512_rolv_epi32(s47, rot_lo), mask_lo);
        sc[h][3] = _mm512_and_si512(_mm512_rolv_epi32(s47, rot_hi), mask_hi);
      }
      // act[t][k][s]: token t's activations for part k, dword l moved to lane l ^ s (s = 0..3).
      __m512i act[NT][4][4];
      #pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const int8_t* q = act_row<block_q8_K>(av, as, t)[b].qs;
        #pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {  // part k: a.qs[128 (k / 2) + 32 (k % 2) ..] then 64 bytes further
          const int8_t* at = q + 128 * (k / 2) + 32 * (k % 2);
          act[t][k][0] = _mm512_inserti64x4(_mm512_castsi256_si512(loadu(at)), loadu(at + 64), 1);
          act[t][k][1] = _mm512_shuffle_epi32(act[t][k][0], _MM_PERM_CDAB);
          act[t][k][2] = _mm512_shuffle_epi32(act[t][k][0], _MM_PERM_BADC);
          act[t][k][3] = _mm512_shuffle_epi32(act[t][k][0], _MM_PERM_ABCD);
        }
      }
      __m512i isum[NT][2];  // 16 x the block integer of rows 8h..8h+7, twice (lanes i and 8 + i)
      #pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) isum[t][0] = isum[t][1] = _mm512_setzero_si512();
      __m512i pair_mins[kPairs ? NT : 1][4];
      if constexpr (kPairs) {
        const K4PairMins16 pm(scales);
        for (int t = 0; t < NT; ++t) pm.times(act_row<block_q8_K>(av, as, t)[b], pair_mins[t]);
      }
      #pragma GCC unroll 1
      for (int c = 0; c < 2; ++c) {  // qs bytes 64c..64c+63 of every row: parts 2c (low nibbles), 2c + 1
        if constexpr (kPairs)
          for (int t = 0; t < NT; ++t) isum[t][0] = isum[t][1] = _mm512_setzero_si512();
        #pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          __m512i quad[2][NT][2];
          #pragma GCC unroll 2
          for (int qd = 0; qd < 2; ++qd) {
            // The tree's first two levels happen in the dot itself. Output lane l belongs to row
            // i = l & 3 of the four and must sum that row's lanes l ^ s, s = 0..3: vector s holds in
            // lane l row i's bytes of lane l ^ s (rows blended so that lane m holds row (m & 3) ^ s,
            // then dwords permuted by ^ s), which meet the activations permuted the same way.
            const uint8_t* qs = blk + size_t(8 * h + 4 * qd) * rb + offsetof(block_q4_K, qs) + 64 * size_t(c);
            const __m512i rows[4] = {load64(qs), load64(qs + rb), load64(qs + 2 * rb), load64(qs + 3 * rb)};
            __m512i nib[4][2];  // [s][low, high nibbles]
            #pragma GCC unroll 4
            for (int sw = 0; sw < 4; ++sw) {
              __m512i v = rows[sw];
              v = _mm512_mask_blend_epi32(0x2222, v, rows[1 ^ sw]);
              v = _mm512_mask_blend_epi32(0x4444, v, rows[2 ^ sw]);
              v = _mm512_mask_blend_epi32(0x8888, v, rows[3 ^ sw]);
              if (sw == 1) v = _mm512_shuffle_epi32(v, _MM_PERM_CDAB);
              if (sw == 2) v = _mm512_shuffle_epi32(v, _MM_PERM_BADC);
              if (sw == 3) v = _mm512_shuffle_epi32(v, _MM_PERM_ABCD);
              nib[sw][0] = _mm512_and_si512(v, low), nib[sw][1] = _mm512_and_si512(v, high);
            }
            #pragma GCC unroll 4
            for (int t = 0; t < NT; ++t)
              #pragma GCC unroll 2
              for (int kk = 0; kk < 2; ++kk) {
                __m512i d4 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nib[0][kk], act[t][2 * c + kk][0]);
                #pragma GCC unroll 3
                for (int sw = 1; sw < 4; ++sw) d4 = _mm512_dpbusd_epi32(d4, nib[sw][kk], act[t][2 * c + kk][sw]);
                quad[qd][t][kk] = d4;
              }
          }
          #pragma GCC unroll 4
          for (int t = 0; t < NT; ++t)
            #pragma GCC unroll 2
            for (int kk = 0; kk < 2; ++kk)
              isum[t][h] = _mm512_add_epi32(isum[t][h], _mm512_mullo_epi32(fold_quads(quad[0][t][kk], quad[1][t][kk]), sc[h][2 * c + kk]));
        }
        if constexpr (kPairs) {
          #pragma GCC unroll 4
          for (int t = 0; t < NT; ++t) {
            const __m512 ad = _mm512_set1_ps(act_row<block_q8_K>(av, as, t)[b].d);
            #pragma GCC unroll 2
            for (int e = 0; e < 2; ++e) {  // pair 2c + e of row r in lane r
              const __m512i pair16 = e ? _mm512_shuffle_i64x2(isum[t][0], isum[t][1], 0xEE) : _mm512_shuffle_i64x2(isum[t][0], isum[t][1], 0x44);
              acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(ad, d), _mm512_cvtepi32_ps(_mm512_srai_epi32(pair16, 4)), acc[t]);
              acc_min[t] = _mm512_fmadd_ps(_mm512_mul_ps(ad, dmin), _mm512_cvtepi32_ps(pair_mins[t][2 * c + e]), acc_min[t]);
            }
          }
        }
      }
      if constexpr (kPairs) continue;
      #pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const block_q8_K& a = act_row<block_q8_K>(av, as, t)[b];
        // Lanes 0..7 of both halves' vectors, plus lanes 8..15: row r in lane r.
        const __m512i sum16 = _mm512_add_epi32(_mm512_shuffle_i64x2(isum[t][0], isum[t][1], 0x44),
                                               _mm512_shuffle_i64x2(isum[t][0], isum[t][1], 0xEE));
        const __m512 ad = _mm512_set1_ps(a.d);
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(ad, d), _mm512_cvtepi32_ps(_mm512_srai_epi32(sum16, 4)), acc[t]);
        acc_min[t] = _mm512_fmadd_ps(_mm512_mul_ps(ad, dmin), _mm512_cvtepi32_ps(mins.times(a)), acc_min[t]);
      }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + size_t(t) * ys, _mm512_sub_ps(acc[t], acc_min[t]));
  }

  // hdr[k] = dword k (0..3) of the 16-byte header (d | dmin, then the 12 scale bytes) of the block at
  // blk in each of the 16 rows, row r in lane r: four rows per vector by 128-bit loads, then two rounds
  // of two-source permutes.
  static void header_dwords(const uint8_t* blk, size_t rb, __m512i hdr[4]) {
    __m512i x[4];  // lane 4i + k of x[q]: dword k of row 4q + i
    #pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const uint8_t* r = blk + size_t(4 * q) * rb;
      x[q] = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r)));
      x[q] = _mm512_inserti32x4(x[q], _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + rb)), 1);
      x[q] = _mm512_inserti32x4(x[q], _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * rb)), 2);
      x[q] = _mm512_inserti32x4(x[q], _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 3 * rb)), 3);
    }
    // Dword k of rows 0..7 of the pair (x[0], x[1]) in lanes 0..7, dword k + 1 in lanes 8..15.
    const __m512i pick = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i pick2 = _mm512_add_epi32(pick, _mm512_set1_epi32(2));
    const __m512i lo01 = _mm512_permutex2var_epi32(x[0], pick, x[1]), lo23 = _mm512_permutex2var_epi32(x[0], pick2, x[1]);
    const __m512i hi01 = _mm512_permutex2var_epi32(x[2], pick, x[3]), hi23 = _mm512_permutex2var_epi32(x[2], pick2, x[3]);
    hdr[0] = _mm512_shuffle_i64x2(lo01, hi01, 0x44), hdr[1] = _mm512_shuffle_i64x2(lo01, hi01, 0xEE);
    hdr[2] = _mm512_shuffle_i64x2(lo23, hi23, 0x44), hdr[3] = _mm512_shuffle_i64x2(lo23, hi23, 0xEE);
  }
};

template <class K>
void gemv_rows(const uint8_t* w, size_t rb, const void* a, size_t as, int nt, int64_t n, float* y, size_t ys) {
  run_for_tokens<K>(nt, w, rb, a, as, n, y, ys);
}

GemvFn gemv_avx512(TensorType t) {
  switch (t) {
    case TensorType::Q4_K: return gemv_rows<GemvQ4K<false>>;
    default: return nullptr;
  }
}
