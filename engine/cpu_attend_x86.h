// Attention's inner loops for one run of keys and the query heads of one GQA group (cpu_kernels.h
// attend_scores / attend_softmax / attend_values), x86. Included by cpu_kernels_avx2.cpp and cpu_kernels_avx512.cpp
// after cpu_kernels_x86.h, inside their anonymous namespaces (see the rules there).
//
// Every score must be the bits of a lone dot_f32 (16-element lanes, the lanes folded by hsum's tree,
// then a tail of fmas) and every output element must see the scalar path's multiply and fma key by
// key: on quantized models a last-bit difference moves 8-bit activations across rounding boundaries.
// So the AVX-512 versions change only which loads are shared, never an operation on a lane: a block
// of 4 heads x 4 keys keeps 16 dot accumulators in zmm registers (8 loads feed 16 fmas, where a lone
// dot needs a load per fma), and the 16 dots are folded together by a transposing tree that adds
// exactly the lane pairs hsum adds; the value update keeps 4 heads x 64 floats in registers and loads
// each value row once for all of them. AVX2 has half the registers and keeps the per-head loops.

// One head's value update; its rescales and weights are ms[u * stride], vs[u * stride].
void attend_values_one_head(float* y, int64_t n, int keys, const float* const* v, const float* ms, const float* vs, int stride) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {  // 64 floats of y in 8 registers across the run
    __m256 acc[8];
    #pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_loadu_ps(y + i + 8 * k);
    for (int u = 0; u < keys; ++u) {
      if (ms[u * stride] != 1.f) {
        const __m256 m = _mm256_set1_ps(ms[u * stride]);
        #pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) acc[k] = _mm256_mul_ps(acc[k], m);
      }
      const __m256 a = _mm256_set1_ps(vs[u * stride]);
      #pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) acc[k] = _mm256_fmadd_ps(a, _mm256_loadu_ps(v[u] + i + 8 * k), acc[k]);
    }
    #pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(y + i + 8 * k, acc[k]);
  }
  if (i == n) return;
  for (int u = 0; u < keys; ++u) {
    if (ms[u * stride] != 1.f) scale_f32_x86(ms[u * stride], y + i, n - i);
    axpy_f32_x86(vs[u * stride], v[u] + i, y + i, n - i);
  }
}

#ifdef __AVX512F__

// Folds 16 dot accumulators (lane j of acc[4h + k]: elements j, j + 16, ... of head h's dot with key
// k) into out[4 * k + h], each exactly as hsum(acc.lo256 + acc.hi256) folds one: lane i + (i + 8),
// then i + (i + 4), then (0 + 2) + (1 + 3). Float addition is commutative, so only the pairing matters.
inline void fold_dots_4x4(const __m512* acc, float* out) {
  __m512 r[8], s[4], t[2];
  #pragma GCC unroll 8
  for (int m = 0; m < 8; ++m)  // [a.lo256 + a.hi256 | b.lo256 + b.hi256]
    r[m] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * m], acc[2 * m + 1], 0x44), _mm512_shuffle_f32x4(acc[2 * m], acc[2 * m + 1], 0xEE));
  #pragma GCC unroll 4
  for (int p = 0; p < 4; ++p)  // quarter q: dot 4p + q's lanes i + (i + 4)
    s[p] = _mm512_add_ps(_mm512_shuffle_f32x4(r[2 * p], r[2 * p + 1], 0x88), _mm512_shuffle_f32x4(r[2 * p], r[2 * p + 1], 0xDD));
  #pragma GCC unroll 2
  for (int p = 0; p < 2; ++p)  // quarter q: (0 + 2, 1 + 3) of dots 8p + q and 8p + 4 + q
    t[p] = _mm512_add_ps(_mm512_shuffle_ps(s[2 * p], s[2 * p + 1], 0x44), _mm512_shuffle_ps(s[2 * p], s[2 * p + 1], 0xEE));
  // quarter q, lane j: dot 4j + q
  _mm512_storeu_ps(out, _mm512_add_ps(_mm512_shuffle_ps(t[0], t[1], 0x88), _mm512_shuffle_ps(t[0], t[1], 0xDD)));
}

void attend_scores_x86(const float* q, size_t q_stride, int nh, const float* k, size_t k_stride, int n, int64_t d, float* s) {
  const int64_t body = d / 16 * 16;
  for (int h0 = 0; h0 < nh; h0 += 4) {
    const float* qh[4];
    for (int h = 0; h < 4; ++h) qh[h] = q + size_t(h0 + h < nh ? h0 + h : nh - 1) * q_stride;  // a short block repeats its last row
    for (int u0 = 0; u0 < n; u0 += 4) {
      const float* ku[4];
      for (int u = 0; u < 4; ++u) ku[u] = k + size_t(u0 + u < n ? u0 + u : n - 1) * k_stride;
      __m512 acc[16];
      #pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
      for (int64_t i = 0; i < body; i += 16) {
        __m512 qv[4], kv[4];
        #pragma GCC unroll 4
        for (int h = 0; h < 4; ++h) qv[h] = _mm512_loadu_ps(qh[h] + i);
        #pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) kv[u] = _mm512_loadu_ps(ku[u] + i);
        #pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(qv[j / 4], kv[j % 4], acc[j]);
      }
      float dots[16];
      fold_dots_4x4(acc, dots);
      for (int h = 0; h < 4 && h0 + h < nh; ++h)
        for (int u = 0; u < 4 && u0 + u < n; ++u) {
          float v = dots[4 * u + h];
          for (int64_t i = body; i < d; ++i) v = fma1(qh[h][i], ku[u][i], v);
          s[size_t(u0 + u) * size_t(nh) + size_t(h0 + h)] = v;
        }
    }
  }
}

void attend_values_x86(float* y, size_t y_stride, int nh, int64_t d, int keys, const float* const* v, const float* ms, const float* vs) {
  int h0 = 0;
  for (; h0 + 4 <= nh; h0 += 4) {
    int64_t i = 0;
    for (; i + 64 <= d; i += 64) {  // 4 heads x 64 floats in 16 registers across the run
      __m512 acc[16];
      #pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) acc[j] = _mm512_loadu_ps(y + size_t(h0 + j / 4) * y_stride + i + 16 * (j % 4));
      for (int u = 0; u < keys; ++u) {
        __m512 vv[4];
        #pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) vv[c] = _mm512_loadu_ps(v[u] + i + 16 * c);
        #pragma GCC unroll 4
        for (int h = 0; h < 4; ++h) {
          const size_t at = size_t(u) * size_t(nh) + size_t(h0 + h);
          if (ms[at] != 1.f) {
            const __m512 m = _mm512_set1_ps(ms[at]);
            #pragma GCC unroll 4
            for (int c = 0; c < 4; ++c) acc[4 * h + c] = _mm512_mul_ps(acc[4 * h + c], m);
          }
          const __m512 a = _mm512_set1_ps(vs[at]);
          #pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) acc[4 * h + c] = _mm512_fmadd_ps(a, vv[c], acc[4 * h + c]);
        }
      }
      #pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) _mm512_storeu_ps(y + size_t(h0 + j / 4) * y_stride + i + 16 * (j % 4), acc[j]);
    }
    if (i < d) {  // the last d % 64 floats, head by head (elementwise, so the same operations)
      const float* tail[kTileTokens];
      for (int u = 0; u < keys; ++u) tail[u] = v[u] + i;
      for (int h = h0; h < h0 + 4; ++h) attend_values_one_head(y + size_t(h) * y_stride + i, d - i, keys, tail, ms + h, vs + h, nh);
    }
  }
  for (int h = h0; h < nh; ++h) attend_values_one_head(y + size_t(h) * y_stride, d, keys, v, ms + h, vs + h, nh);
}

#else

void attend_scores_x86(const float* q, size_t q_stride, int nh, const float* k, size_t k_stride, int n, int64_t d, float* s) {
  for (int h = 0; h < nh; ++h)
    tile<FloatRows<LoadF32>>(q + size_t(h) * q_stride, k, k_stride * sizeof(float), n, d, s + h, size_t(nh));
}

void attend_values_x86(float* y, size_t y_stride, int nh, int64_t d, int keys, const float* const* v, const float* ms, const float* vs) {
  for (int h = 0; h < nh; ++h) attend_values_one_head(y + size_t(h) * y_stride, d, keys, v, ms + h, vs + h, nh);
}

#endif

// Eight heads per vector, keys in order; lanes past nh are neither read nor written. The multiply
// and add of S stay two roundings: this file is built with -ffp-contract=off.
void attend_softmax_x86(const float* s, int nh, int n, float scale, float* M, float* S, float* ms, float* vs) {
  // arg is zeroed only because the compiler cannot see that the masked stores cover [0, nh * n).
  float arg[kAttendHeads * kTileTokens] = {}, e[kAttendHeads * kTileTokens], raised[kAttendHeads * kTileTokens];
  const __m256 sc = _mm256_set1_ps(scale), one = _mm256_set1_ps(1.f);
  auto heads_from = [nh](int h0) {  // the mask of lanes h0 + 0..7 that are heads
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nh - h0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  };
  for (int h0 = 0; h0 < nh; h0 += 8) {
    const __m256i lanes = heads_from(h0);
    __m256 m = _mm256_maskload_ps(M + h0, lanes);
    for (int u = 0; u < n; ++u) {
      const int at = u * nh + h0;
      const __m256 x = _mm256_mul_ps(_mm256_maskload_ps(s + at, lanes), sc);
      const __m256 up = _mm256_cmp_ps(x, m, _CMP_GT_OQ);
      _mm256_maskstore_ps(arg + at, lanes, _mm256_blendv_ps(_mm256_sub_ps(x, m), _mm256_sub_ps(m, x), up));
      _mm256_maskstore_ps(raised + at, lanes, up);
      m = _mm256_blendv_ps(m, x, up);
    }
    _mm256_maskstore_ps(M + h0, lanes, m);
  }
  exp_f32_x86(arg, e, int64_t(nh) * n);
  for (int h0 = 0; h0 < nh; h0 += 8) {
    const __m256i lanes = heads_from(h0);
    __m256 sum = _mm256_maskload_ps(S + h0, lanes);
    for (int u = 0; u < n; ++u) {
      const int at = u * nh + h0;
      const __m256 ev = _mm256_maskload_ps(e + at, lanes), up = _mm256_maskload_ps(raised + at, lanes);
      const __m256 msv = _mm256_blendv_ps(one, ev, up), vsv = _mm256_blendv_ps(ev, one, up);
      _mm256_maskstore_ps(ms + at, lanes, msv);
      _mm256_maskstore_ps(vs + at, lanes, vsv);
      sum = _mm256_add_ps(_mm256_mul_ps(sum, msv), vsv);
    }
    _mm256_maskstore_ps(S + h0, lanes, sum);
  }
}
