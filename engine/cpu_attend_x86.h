// Attention's inner loops (cpu_kernels.h attend_scores / attend_values), x86. Included by
// cpu_kernels_avx2.cpp and cpu_kernels_avx512.cpp after cpu_kernels_x86.h, inside their anonymous
// namespaces (see the rules there).
//
// Every score must be the bits of dot_f32_vec (an exact zero's sign aside, attend_scores_pass) and
// every value lane must see the scalar path's fma key by key: on quantized models a last-bit
// difference moves 8-bit activations across rounding boundaries. So the vector versions change only
// which loads are shared and where sums live, never the value of an operation on a lane.

#ifdef __AVX512F__

using AttendVec = __m512;
constexpr int kAttendWidth = 16;
inline __m512 attend_load(const float* p) { return _mm512_loadu_ps(p); }
inline void attend_store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
inline __m512 attend_add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
inline __m512 attend_fma(float a, __m512 x, __m512 y) { return _mm512_fmadd_ps(_mm512_set1_ps(a), x, y); }
inline __m512 attend_mul(float a, __m512 x) { return _mm512_mul_ps(_mm512_set1_ps(a), x); }
constexpr int kScoreHeads = 4;  // 16 accumulators of 32 registers
inline __m512 attend_zero() { return _mm512_setzero_ps(); }

#else

using AttendVec = __m256;
constexpr int kAttendWidth = 8;
inline __m256 attend_load(const float* p) { return _mm256_loadu_ps(p); }
inline void attend_store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
inline __m256 attend_add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
inline __m256 attend_fma(float a, __m256 x, __m256 y) { return _mm256_fmadd_ps(_mm256_set1_ps(a), x, y); }
inline __m256 attend_mul(float a, __m256 x) { return _mm256_mul_ps(_mm256_set1_ps(a), x); }
constexpr int kScoreHeads = 2;  // 8 accumulators of 16 registers
inline __m256 attend_zero() { return _mm256_setzero_ps(); }

#endif

// 16 lanes folded as one 16-lane register is (l + (l + 8), then + (l + 4), then (0 + 2) + (1 + 3)),
// each lane here a vector: lane l at lane0 + l * stride. dot_f32_vec's sum over its lanes and the
// KQV product's over its key lanes are both this fold.
inline AttendVec attend_fold16(const float* lane0, size_t stride) {
  AttendVec lane[16];
  #pragma GCC unroll 16
  for (int l = 0; l < 16; ++l) lane[l] = attend_load(lane0 + size_t(l) * stride);
  #pragma GCC unroll 8
  for (int l = 0; l < 8; ++l) lane[l] = attend_add(lane[l], lane[l + 8]);
  #pragma GCC unroll 4
  for (int l = 0; l < 4; ++l) lane[l] = attend_add(lane[l], lane[l + 4]);
  return attend_add(attend_add(lane[0], lane[2]), attend_add(lane[1], lane[3]));
}

// Attention scores with the keys in vector lanes. CpuKvStore keeps each KV block's keys lane-major
// (element i of the key at block offset u at kt[i * kAttendLanes + u]), so one load brings element i
// of 16 keys (8 with AVX2: two halves) and one fma advances 16 dots. dot_f32_vec's order per key:
// accumulator j (of 4) lane l takes elements 64s + 16j + l over the steps s, lane l = (acc0 + acc2) +
// (acc1 + acc3), the 16 lanes fold l + (l + 8), then + (l + 4), then (0 + 2) + (1 + 3), then the
// tail's fmas. Here each of those scalars is a vector over keys, so every key's score sees exactly
// its dot's operations, and the fold costs adds of whole vectors. With keys in rows (4 heads x 2
// keys of dots, folded by shuffles, the query rows loaded again per pair of keys) the fma pipe sat
// idle a third of the time: in a 4096-token prefill ~33 -> ~44 GMAC/s per core (docs/BENCHMARKS.md).
// NH heads per pass share each element's load; the lanes wait for the fold in `lanes` (on the stack:
// 4 heads' 16 lanes would not fit the registers beside the accumulators). The first step multiplies:
// q * k and fma(q, k, +0) differ only where the product is an exact -0, which the fma makes +0, and a
// zero's sign cannot reach the softmax's weights (any nonzero term erases it; an all-zero score is
// scaled, compared and exp'd to the same values).
// kSteps: the number of whole 64-element steps when known at compile time (head_dim 128: 2), else 0.
template <int NH, int kSteps>
void attend_scores_pass(const float* const* qh, const float* kt, int64_t d, float (*out)[kAttendLanes]) {
  const int64_t steps = kSteps ? kSteps : d / 64;
  for (int half = 0; half < kAttendLanes / kAttendWidth; ++half) {
    const float* k = kt + half * kAttendWidth;
    AttendVec score[NH];
    if (steps == 0) {
      for (int h = 0; h < NH; ++h) score[h] = attend_zero();
    } else {
      alignas(64) float lanes[16][NH][kAttendWidth];
      #pragma GCC unroll 1
      for (int l = 0; l < 16; ++l) {
        AttendVec acc[4][NH];
        #pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          const AttendVec kv = attend_load(k + (16 * j + l) * kAttendLanes);
          #pragma GCC unroll 8
          for (int h = 0; h < NH; ++h) acc[j][h] = attend_mul(qh[h][16 * j + l], kv);
          #pragma GCC unroll 4
          for (int64_t e = 64 + 16 * j + l; e < 64 * steps; e += 64) {
            const AttendVec kv2 = attend_load(k + e * kAttendLanes);
            #pragma GCC unroll 8
            for (int h = 0; h < NH; ++h) acc[j][h] = attend_fma(qh[h][e], kv2, acc[j][h]);
          }
        }
        #pragma GCC unroll 8
        for (int h = 0; h < NH; ++h) attend_store(lanes[l][h], attend_add(attend_add(acc[0][h], acc[2][h]), attend_add(acc[1][h], acc[3][h])));
      }
      #pragma GCC unroll 8
      for (int h = 0; h < NH; ++h) score[h] = attend_fold16(lanes[0][h], NH * kAttendWidth);
    }
    for (int64_t e = steps * 64; e < d; ++e) {
      const AttendVec kv = attend_load(k + e * kAttendLanes);
      for (int h = 0; h < NH; ++h) score[h] = attend_fma(qh[h][e], kv, score[h]);
    }
    for (int h = 0; h < NH; ++h) attend_store(out[h] + half * kAttendWidth, score[h]);
  }
}

template <int kSteps>
void attend_scores_lanes(const float* q, size_t q_stride, int nh, const float* kt, int u0, int n, int64_t d, float* s, size_t s_stride) {
  alignas(64) float out[kScoreHeads][kAttendLanes];
  for (int h0 = 0; h0 < nh; h0 += kScoreHeads) {
    const int m = nh - h0 < kScoreHeads ? nh - h0 : kScoreHeads;
    const float* qh[kScoreHeads];
    for (int h = 0; h < m; ++h) qh[h] = q + size_t(h0 + h) * q_stride;
    switch (m) {
      case 1: attend_scores_pass<1, kSteps>(qh, kt, d, out); break;
      case 2: attend_scores_pass<2, kSteps>(qh, kt, d, out); break;
      case 3: if constexpr (kScoreHeads > 2) attend_scores_pass<3, kSteps>(qh, kt, d, out); break;
      default: attend_scores_pass<kScoreHeads, kSteps>(qh, kt, d, out);
    }
    for (int h = 0; h < m; ++h) {
      float* sh = s + size_t(h0 + h) * s_stride;
      if (n == kAttendLanes) {  // a whole block in vectors (copied float by float, the kernel ran ~3% slower)
        for (int v = 0; v < kAttendLanes; v += kAttendWidth) attend_store(sh + v, attend_load(out[h] + v));
      } else {
        for (int u = 0; u < n; ++u) sh[u] = out[h][u0 + u];
      }
    }
  }
}

void attend_scores_x86(const float* q, size_t q_stride, int nh, const float* kt, int u0, int n, int64_t d, float* s, size_t s_stride) {
  if (d == 128) return attend_scores_lanes<2>(q, q_stride, nh, kt, u0, n, d, s, s_stride);
  if (d == 64) return attend_scores_lanes<1>(q, q_stride, nh, kt, u0, n, d, s, s_stride);
  attend_scores_lanes<0>(q, q_stride, nh, kt, u0, n, d, s, s_stride);
}

// out[u * kHeads + g] = ph[g][u] for u0 <= u < u1: a group's attention weights key by key.
template <int kHeads>
void interleave_heads(const float* const* ph, int64_t u0, int64_t u1, float* out) {
  int64_t u = u0;
#ifdef __AVX512F__
  if constexpr (kHeads == 8)  // 16 keys at a time: an 8 x 16 transpose in three shuffle stages
    for (; u + 16 <= u1; u += 16) {
      __m512 r[8], a[8], b[8];
      #pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) r[g] = _mm512_loadu_ps(ph[g] + u);
      // a[2q]: per 128-bit lane c, heads 2q, 2q + 1 of keys 4c, 4c + 1; a[2q + 1]: of keys 4c + 2, 4c + 3
      #pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) a[2 * q] = _mm512_unpacklo_ps(r[2 * q], r[2 * q + 1]), a[2 * q + 1] = _mm512_unpackhi_ps(r[2 * q], r[2 * q + 1]);
      // b[m]: per lane c, heads 0-3 of key 4c + m; b[4 + m]: heads 4-7
      #pragma GCC unroll 2
      for (int q = 0; q < 2; ++q)
        #pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) {
          const __m512d lo = _mm512_castps_pd(a[4 * q + j]), hi = _mm512_castps_pd(a[4 * q + 2 + j]);
          b[4 * q + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi)), b[4 * q + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi));
        }
      // Key 4c + m is lane c of b[m] then lane c of b[4 + m]: two keys per register, stored 256 bits each.
      const __m512i keys_0_1 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
      const __m512i keys_2_3 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
      #pragma GCC unroll 4
      for (int m = 0; m < 4; ++m) {
        const __m512 k01 = _mm512_permutex2var_ps(b[m], keys_0_1, b[4 + m]), k23 = _mm512_permutex2var_ps(b[m], keys_2_3, b[4 + m]);
        float* o = out + (u + m) * 8;
        _mm256_storeu_ps(o, _mm512_castps512_ps256(k01));
        _mm256_storeu_ps(o + 4 * 8, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(k01), 1)));
        _mm256_storeu_ps(o + 8 * 8, _mm512_castps512_ps256(k23));
        _mm256_storeu_ps(o + 12 * 8, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(k23), 1)));
      }
    }
#endif
  for (; u < u1; ++u)
    for (int g = 0; g < kHeads; ++g) out[u * kHeads + g] = ph[g][u];
}

// Lanes l0 .. l0 + kValueLanes - 1 of a group of kValueHeads heads sit in registers while a pass goes
// over a block of keys for one slice of kAttendWidth output elements (key u feeds lane u % 16; each
// lane still sees its keys in order, so which lanes share a pass is free), and in L1/L2 between
// passes. One loaded value slice feeds the group's heads.
//
// Blocks outside, slices inside: a block's value rows (256 KB at 512 keys of 128 dims) come from
// L3 or DRAM once and stay in L2 for all its slices, where sweeping every key for each slice in turn
// read each row again per slice on long contexts. Larger blocks keep the lanes in registers longer
// but outgrow L2 (512 measured best of 32..2048). The lanes of all slices wait in `state` between
// blocks: 128 KB of stack, which every thread that runs attention has (8 MB by default). The block's
// weights are first interleaved key by key (weights[u][g]) so that the group's broadcasts of one key
// come from one pointer and constant displacements: with a pointer per head row the compiler ran out
// of general registers and moved them in and out of vector registers in the hot loop. Together:
// `bench --kernels` attend_values 30 -> 44 GMAC/s per CPU-second (docs/BENCHMARKS.md). Each pass
// also asks for its lines of the next block's rows (into L2): in decode the rows come from DRAM (the
// prefetch during scoring has long left L2 on a long context), and three quarters of the kernel's
// samples sat on the fmas waiting for value loads; asking one block ahead made decode at 4096
// positions 1.3x faster. Where the heads take more than one group (kCopy), each slice of the block is
// first copied into one contiguous buffer: read in place, a column of rows 4 * kAttendWidth bytes
// apart maps to a few L1 sets and would come from L2 again for every group. Where one group takes
// every head, each slice is read once and the copy would only add a store per load. At the end the
// lanes are folded.
template <int kValueHeads, int kValueLanes, bool kCopy>
void attend_values_groups(float* y, size_t y_stride, int nh, int64_t d, int64_t first, int64_t n, const float* const* v, const float* p,
                          size_t p_stride) {
  constexpr int64_t kKeyBlock = kCopy ? 256 : 512;
  constexpr int kRunSlices = 128 / kAttendWidth;  // slices whose lanes are kept across blocks: 128 elements
  constexpr int kGroups = kAttendHeads / kValueHeads;
  const int groups = (nh + kValueHeads - 1) / kValueHeads;
  // Not zero-initialised: the first block starts its lanes from zero registers and every later
  // block (and the fold) reads only what an earlier block stored.
  alignas(64) float state[kRunSlices][kAttendHeads][kAttendLanes][kAttendWidth];
  alignas(64) float weights[kGroups][kKeyBlock][kValueHeads];  // weights[g / kValueHeads][u - b0][g % kValueHeads]
  alignas(64) float slices[kCopy ? kKeyBlock : 1][kAttendWidth];  // slices[u - b0]: key u's elements i..
  const int64_t block0 = first / kAttendLanes * kAttendLanes, whole = d / kAttendWidth * kAttendWidth;
  for (int64_t i0 = 0; i0 < whole; i0 += kRunSlices * kAttendWidth) {
    const int run_slices = int(std::min<int64_t>(kRunSlices, (whole - i0) / kAttendWidth));
    for (int64_t b0 = block0; b0 < n; b0 += kKeyBlock) {
      const int64_t b1 = b0 + kKeyBlock < n ? b0 + kKeyBlock : n, u_begin = b0 > first ? b0 : first;
      for (int grp = 0; grp < groups; ++grp) {  // a short group repeats its last head (and stores only its own)
        const float* ph[kValueHeads];
        for (int g = 0; g < kValueHeads; ++g) ph[g] = p + size_t(std::min(grp * kValueHeads + g, nh - 1)) * p_stride;
        interleave_heads<kValueHeads>(ph, u_begin, b1, &weights[grp][0][0] - b0 * kValueHeads);
      }
      for (int s = 0; s < run_slices; ++s) {
        const int64_t i = i0 + int64_t(s) * kAttendWidth;
        if constexpr (kCopy)
          for (int64_t u = u_begin; u < b1; ++u) attend_store(slices[u - b0], attend_load(v[u] + i));
        // Key u's slice: copied, or in place.
        auto slice = [&](int64_t u) { return kCopy ? slices[u - b0] : v[u] + i; };
        for (int grp = 0; grp < groups; ++grp) {
          const int h0 = grp * kValueHeads;
          const float* const pw = &weights[grp][0][0] - b0 * kValueHeads;  // key u's weights at pw + u * kValueHeads
          for (int l0 = 0; l0 < kAttendLanes; l0 += kValueLanes) {
            AttendVec lane[kValueHeads][kValueLanes];
            #pragma GCC unroll 8
            for (int g = 0; g < kValueHeads; ++g)
              #pragma GCC unroll 4
              for (int l = 0; l < kValueLanes; ++l)
                lane[g][l] = b0 == block0 ? attend_zero() : attend_load(state[s][std::min(h0 + g, nh - 1)][l0 + l]);
            for (int64_t u0 = b0 + l0; u0 < b1; u0 += kAttendLanes) {  // keys u0.. feed lanes l0..
              if (u0 - l0 >= first && u0 - l0 + kAttendLanes <= b1) {   // a whole chunk: all but the window's first and the last
                const bool ahead = grp == 0 && u0 + kKeyBlock + kValueLanes <= n;
                #pragma GCC unroll 4
                for (int l = 0; l < kValueLanes; ++l) {
                  if (ahead) __builtin_prefetch(v[u0 + l + kKeyBlock] + i, 0, 2);
                  const AttendVec x = attend_load(slice(u0 + l));
                  #pragma GCC unroll 8
                  for (int g = 0; g < kValueHeads; ++g) lane[g][l] = attend_fma(pw[(u0 + l) * kValueHeads + g], x, lane[g][l]);
                }
                continue;
              }
              #pragma GCC unroll 4
              for (int l = 0; l < kValueLanes; ++l)
                if (u0 + l >= first && u0 + l < b1) {
                  const AttendVec x = attend_load(slice(u0 + l));
                  #pragma GCC unroll 8
                  for (int g = 0; g < kValueHeads; ++g) lane[g][l] = attend_fma(pw[(u0 + l) * kValueHeads + g], x, lane[g][l]);
                }
            }
            #pragma GCC unroll 8
            for (int g = 0; g < kValueHeads; ++g)
              #pragma GCC unroll 4
              for (int l = 0; l < kValueLanes; ++l)
                if (h0 + g < nh) attend_store(state[s][h0 + g][l0 + l], lane[g][l]);
          }
        }
      }
    }
    for (int s = 0; s < run_slices; ++s)
      for (int h = 0; h < nh; ++h)
        attend_store(y + size_t(h) * y_stride + size_t(i0 + int64_t(s) * kAttendWidth), attend_fold16(state[s][h][0], kAttendWidth));
  }
  for (int64_t i = whole; i < d; ++i)  // the tail, element by element as the scalar path
    for (int h = 0; h < nh; ++h) {
      float lane[kAttendLanes] = {};
      for (int64_t u = first; u < n; ++u) lane[u % kAttendLanes] = fma1(p[size_t(h) * p_stride + size_t(u)], v[u][i], lane[u % kAttendLanes]);
      float h8[8], h4[4];
      for (int l = 0; l < 8; ++l) h8[l] = lane[l] + lane[l + 8];
      for (int l = 0; l < 4; ++l) h4[l] = h8[l] + h8[l + 4];
      y[size_t(h) * y_stride + size_t(i)] = (h4[0] + h4[2]) + (h4[1] + h4[3]);
    }
}

// 16 or 8 accumulators of 32 or 16 registers: a group of up to 8 heads x 2 lanes (AVX-512; the GQA
// groups of 8 here in one group, each value slice read once), else 4 heads x 4 lanes (2 x 4 on AVX2).
void attend_values_x86(float* y, size_t y_stride, int nh, int64_t d, int64_t first, int64_t n, const float* const* v, const float* p,
                       size_t p_stride) {
  if constexpr (kAttendWidth == 16) {
    if (nh > 4 && nh <= 8) return attend_values_groups<8, 2, false>(y, y_stride, nh, d, first, n, v, p, p_stride);
    if (nh <= 4) return attend_values_groups<4, 4, false>(y, y_stride, nh, d, first, n, v, p, p_stride);
    return attend_values_groups<4, 4, true>(y, y_stride, nh, d, first, n, v, p, p_stride);
  } else {
    if (nh <= 2) return attend_values_groups<2, 4, false>(y, y_stride, nh, d, first, n, v, p, p_stride);
    return attend_values_groups<2, 4, true>(y, y_stride, nh, d, first, n, v, p, p_stride);
  }
}

// The scalar attend_exp's multiply, subtraction and exp 8 lanes at a time; the max over 8 lanes (any
// order gives the same value; where it is a zero, its sign cannot change x - m or its exp).
void attend_exp_x86(float* x, int64_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale);
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
    _mm256_storeu_ps(x + i, v);
    mv = _mm256_max_ps(mv, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  float m = lanes[0];
  for (int l = 1; l < 8; ++l) m = std::max(m, lanes[l]);
  for (; i < n; ++i) m = std::max(m, x[i] *= scale);
  const __m256 mb = _mm256_set1_ps(m);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
  for (; i < n; ++i) x[i] -= m;
  exp_vector_f32_x86(x, x, n);
}
