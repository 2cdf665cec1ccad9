// Attention's inner loops (cpu_kernels.h attend_scores / attend_values), x86. Included by
// cpu_kernels_avx2.cpp and cpu_kernels_avx512.cpp after cpu_kernels_x86.h, inside their anonymous
// namespaces (see the rules there).
//
// Every score must be the bits of dot_f32_vec (an exact zero's sign aside, attend_scores_blocks) and
// every value lane must see the scalar path's fma key by key: on quantized models a last-bit
// difference moves 8-bit activations across rounding boundaries. So the vector versions change only
// which loads are shared and where sums live, never the value of an operation on a lane.

#ifdef __AVX512F__

// Folds 8 dot registers into one: dot m (acc[m]) ends in lane folded_lane(m) (quarter m % 4, lane
// m / 4), each exactly as hsum(acc.lo256 + acc.hi256) folds one: lane i + (i + 8), then i + (i + 4),
// then (0 + 2) + (1 + 3). Float addition is commutative, so only the pairing matters.
constexpr int folded_lane(int m) { return m < 4 ? 4 * m : 4 * (m - 4) + 1; }
inline __m512 fold_dots_8(const __m512* acc) {
  __m512 r[4], s[2];
  #pragma GCC unroll 4
  for (int m = 0; m < 4; ++m)  // [a.lo256 + a.hi256 | b.lo256 + b.hi256]
    r[m] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * m], acc[2 * m + 1], 0x44), _mm512_shuffle_f32x4(acc[2 * m], acc[2 * m + 1], 0xEE));
  #pragma GCC unroll 2
  for (int p = 0; p < 2; ++p)  // quarter q: dot 4p + q's lanes i + (i + 4)
    s[p] = _mm512_add_ps(_mm512_shuffle_f32x4(r[2 * p], r[2 * p + 1], 0x88), _mm512_shuffle_f32x4(r[2 * p], r[2 * p + 1], 0xDD));
  // quarter q: (0 + 2, 1 + 3) of dots q and 4 + q
  const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(s[0], s[1], 0x44), _mm512_shuffle_ps(s[0], s[1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(t, t, 0x88), _mm512_shuffle_ps(t, t, 0xDD));  // quarter q: dots q, 4 + q
}

// Blocks of 4 heads x 2 keys. dot_f32_vec keeps 4 accumulators per dot (64-element steps, accumulator
// j taking elements 16j.. of each step) and adds them (0 + 2) + (1 + 3): run in the order 0, 2, 1, 3,
// a dot never holds more than three at once, so a block's 8 dots take 24 registers and a step's 6
// loaded rows the rest of the 32. A 4 x 4 block (8 loads per 16 fmas instead of 6 per 8) needs 48
// registers, and its spills ran it at ~0.85x of this; 2 heads x 4 keys (the same registers) prefilled
// 4096 tokens 9-20% slower than 4 x 2 (docs/BENCHMARKS.md).
// kSteps: the number of whole 64-element steps when known at compile time (head_dim 128: 2), else 0.
template <int kSteps>
void attend_scores_blocks(const float* q, size_t q_stride, int nh, const float* k, size_t k_stride, int n, int64_t d, float* s,
                          size_t s_stride) {
  constexpr int kHeads = 4, kKeys = 2;
  const int64_t body = kSteps ? 64 * kSteps : d / 64 * 64;
  for (int h0 = 0; h0 < nh; h0 += kHeads) {
    const float* qh[kHeads];
    for (int h = 0; h < kHeads; ++h) qh[h] = q + size_t(h0 + h < nh ? h0 + h : nh - 1) * q_stride;  // a short block repeats its last row
    for (int u0 = 0; u0 < n; u0 += kKeys) {
      const float* ku[kKeys];
      for (int u = 0; u < kKeys; ++u) ku[u] = k + size_t(u0 + u < n ? u0 + u : n - 1) * k_stride;
      // Accumulator j of dot kKeys * h + u over every step. The first step multiplies (fma onto a
      // zero register needs a copy of the zero or of an operand per dot): q * k and fma(q, k, +0)
      // differ only where the product is an exact -0, which gives +0 through the fma, and a zero's
      // sign cannot reach the softmax's weights (any nonzero term erases it; an all-zero score is
      // scaled, compared and exp'd to the same values). The rows are pinned in registers, or the
      // compiler reads each from L1 once per use and the loads outrun the fmas.
      auto chain = [&](int j, __m512* acc) __attribute__((always_inline)) {
        if (16 * j >= body)  // under 64 elements: the tail is all
          for (int m = 0; m < 8; ++m) acc[m] = _mm512_setzero_ps();
        #pragma GCC unroll 4
        for (int64_t i = 16 * j; i < body; i += 64) {
          __m512 kv[kKeys], qv[kHeads];
          #pragma GCC unroll 4
          for (int u = 0; u < kKeys; ++u) {
            kv[u] = _mm512_loadu_ps(ku[u] + i);
            asm("" : "+v"(kv[u]));
          }
          #pragma GCC unroll 4
          for (int h = 0; h < kHeads; ++h) {
            qv[h] = _mm512_loadu_ps(qh[h] + i);
            asm("" : "+v"(qv[h]));
          }
          #pragma GCC unroll 8
          for (int m = 0; m < 8; ++m)
            acc[m] = i == 16 * j ? _mm512_mul_ps(qv[m / kKeys], kv[m % kKeys]) : _mm512_fmadd_ps(qv[m / kKeys], kv[m % kKeys], acc[m]);
        }
      };
      __m512 a[8], b[8], dots[8];
      chain(0, a);
      chain(2, b);
      #pragma GCC unroll 8
      for (int m = 0; m < 8; ++m) dots[m] = _mm512_add_ps(a[m], b[m]);
      chain(1, a);
      chain(3, b);
      #pragma GCC unroll 8
      for (int m = 0; m < 8; ++m) dots[m] = _mm512_add_ps(dots[m], _mm512_add_ps(a[m], b[m]));
      alignas(64) float folded[16];
      _mm512_store_ps(folded, fold_dots_8(dots));
      if (kSteps && h0 + kHeads <= nh && u0 + kKeys <= n) {  // a whole block, no tail
        #pragma GCC unroll 8
        for (int m = 0; m < 8; ++m) s[size_t(h0 + m / kKeys) * s_stride + size_t(u0 + m % kKeys)] = folded[folded_lane(m)];
        continue;
      }
      for (int h = 0; h < kHeads && h0 + h < nh; ++h)
        for (int u = 0; u < kKeys && u0 + u < n; ++u) {
          const int m = kKeys * h + u;
          float v = folded[folded_lane(m)];
          for (int64_t i = body; i < d; ++i) v = fma1(qh[h][i], ku[u][i], v);
          s[size_t(h0 + h) * s_stride + size_t(u0 + u)] = v;
        }
    }
  }
}

void attend_scores_x86(const float* q, size_t q_stride, int nh, const float* k, size_t k_stride, int n, int64_t d, float* s,
                       size_t s_stride) {
  if (d == 128) return attend_scores_blocks<2>(q, q_stride, nh, k, k_stride, n, d, s, s_stride);
  attend_scores_blocks<0>(q, q_stride, nh, k, k_stride, n, d, s, s_stride);
}

using AttendVec = __m512;
constexpr int kAttendWidth = 16;
inline __m512 attend_load(const float* p) { return _mm512_loadu_ps(p); }
inline void attend_store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
inline __m512 attend_add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
inline __m512 attend_fma(float a, __m512 x, __m512 y) { return _mm512_fmadd_ps(_mm512_set1_ps(a), x, y); }
inline __m512 attend_zero() { return _mm512_setzero_ps(); }

#else

// Each head's query row is the tile's weight row and up to kTileTokens of the run's keys its
// activation rows: the query is loaded once per 64-element step for all of them.
void attend_scores_x86(const float* q, size_t q_stride, int nh, const float* k, size_t k_stride, int n, int64_t d, float* s,
                       size_t s_stride) {
  for (int u0 = 0; u0 < n; u0 += kTileTokens)
    for (int h = 0; h < nh; ++h)
      tile<FloatVecDot>(q + size_t(h) * q_stride, k + size_t(u0) * k_stride, k_stride * sizeof(float), std::min(kTileTokens, n - u0), d,
                        s + size_t(h) * s_stride + size_t(u0), 1);
}

using AttendVec = __m256;
constexpr int kAttendWidth = 8;
inline __m256 attend_load(const float* p) { return _mm256_loadu_ps(p); }
inline void attend_store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
inline __m256 attend_add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
inline __m256 attend_fma(float a, __m256 x, __m256 y) { return _mm256_fmadd_ps(_mm256_set1_ps(a), x, y); }
inline __m256 attend_zero() { return _mm256_setzero_ps(); }

#endif

// A slice of kAttendWidth output elements at a time: a group of kValueHeads heads' lanes l0 ..
// l0 + kValueLanes - 1 sit in registers while a block of keys goes by (key u feeds lane u % 16; each
// lane still sees its keys in order, so which lanes share a pass is free), and in L1 between blocks.
// One loaded value slice feeds the group's heads: 1.5 loads per fma instead of a slice and a weight
// (2, three 256-bit load ops) when a pass took one head's 16 lanes. Where the heads take more than
// one group (kCopy), the block's value slices are first copied into one contiguous buffer: read in
// place, a column of rows 4 * kAttendWidth bytes apart maps to a few L1 sets and would come from L2
// again for every group (the copy doubled the kernel's rate). Where one group takes every head, each
// slice is read once and the copy would only add a store per load (a third of the kernel's time).
// At the end the lanes are folded.
template <int kValueHeads, int kValueLanes, bool kCopy>
void attend_values_groups(float* y, size_t y_stride, int nh, int64_t d, int64_t first, int64_t n, const float* const* v, const float* p,
                          size_t p_stride) {
  constexpr int64_t kKeyBlock = 256;
  int64_t i = 0;
  for (; i + kAttendWidth <= d; i += kAttendWidth) {
    // Not zero-initialised: the first block starts its lanes from zero registers and every later
    // block (and the fold) reads only what an earlier block stored. Clearing all kAttendHeads heads'
    // state for every element slice was 16 KB of memset per slice, ~2% of a 512-token prefill.
    alignas(64) float state[kAttendHeads][kAttendLanes][kAttendWidth];
    alignas(64) float slices[kCopy ? kKeyBlock : 1][kAttendWidth];  // slices[u - b0]: key u's elements i..
    const int64_t block0 = first / kAttendLanes * kAttendLanes;
    for (int64_t b0 = block0; b0 < n; b0 += kKeyBlock) {
      const int64_t b1 = b0 + kKeyBlock < n ? b0 + kKeyBlock : n;
      if constexpr (kCopy)
        for (int64_t u = b0 > first ? b0 : first; u < b1; ++u) attend_store(slices[u - b0], attend_load(v[u] + i));
      // Key u's slice: copied, or in place.
      auto slice = [&](int64_t u) { return kCopy ? slices[u - b0] : v[u] + i; };
      for (int h0 = 0; h0 < nh; h0 += kValueHeads) {
        const float* ph[kValueHeads];  // a short group repeats its last head (and stores only its own)
        for (int g = 0; g < kValueHeads; ++g) ph[g] = p + size_t(h0 + g < nh ? h0 + g : nh - 1) * p_stride;
        for (int l0 = 0; l0 < kAttendLanes; l0 += kValueLanes) {
          AttendVec lane[kValueHeads][kValueLanes];
          #pragma GCC unroll 8
          for (int g = 0; g < kValueHeads; ++g)
            #pragma GCC unroll 4
            for (int l = 0; l < kValueLanes; ++l)
              lane[g][l] = b0 == block0 ? attend_zero() : attend_load(state[h0 + g < nh ? h0 + g : nh - 1][l0 + l]);
          for (int64_t u0 = b0 + l0; u0 < b1; u0 += kAttendLanes) {  // keys u0.. feed lanes l0..
            if (u0 - l0 >= first && u0 - l0 + kAttendLanes <= b1) {   // a whole chunk: all but the window's first and the last
              #pragma GCC unroll 4
              for (int l = 0; l < kValueLanes; ++l) {
                const AttendVec x = attend_load(slice(u0 + l));
                #pragma GCC unroll 8
                for (int g = 0; g < kValueHeads; ++g) lane[g][l] = attend_fma(ph[g][u0 + l], x, lane[g][l]);
              }
              continue;
            }
            #pragma GCC unroll 4
            for (int l = 0; l < kValueLanes; ++l)
              if (u0 + l >= first && u0 + l < b1) {
                const AttendVec x = attend_load(slice(u0 + l));
                #pragma GCC unroll 8
                for (int g = 0; g < kValueHeads; ++g) lane[g][l] = attend_fma(ph[g][u0 + l], x, lane[g][l]);
              }
          }
          #pragma GCC unroll 8
          for (int g = 0; g < kValueHeads; ++g)
            #pragma GCC unroll 4
            for (int l = 0; l < kValueLanes; ++l)
              if (h0 + g < nh) attend_store(state[h0 + g][l0 + l], lane[g][l]);
        }
      }
    }
    for (int h = 0; h < nh; ++h) {
      AttendVec lane[kAttendLanes];
      #pragma GCC unroll 16
      for (int l = 0; l < kAttendLanes; ++l) lane[l] = attend_load(state[h][l]);
      #pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) lane[l] = attend_add(lane[l], lane[l + 8]);
      #pragma GCC unroll 4
      for (int l = 0; l < 4; ++l) lane[l] = attend_add(lane[l], lane[l + 4]);
      attend_store(y + size_t(h) * y_stride + size_t(i), attend_add(attend_add(lane[0], lane[2]), attend_add(lane[1], lane[3])));
    }
  }
  for (; i < d; ++i)  // the tail, element by element as the scalar path
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
