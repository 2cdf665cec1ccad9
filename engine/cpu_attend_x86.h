// Attention's inner loops for one run of keys and the query heads of one GQA group (cpu_kernels.h
// attend_scores / attend_values), x86. Included by cpu_kernels_avx2.cpp and cpu_kernels_avx512.cpp
// after cpu_kernels_x86.h, inside their anonymous namespaces (see the rules there).
//
// Every score must be the bits of dot_f32_vec and every value accumulator must see the scalar path's
// fma key by key: on quantized models a last-bit difference moves 8-bit activations across rounding
// boundaries. So the vector versions change only which loads are shared, never an operation on a lane.

// Each head's query row is the tile's weight row and the run's keys its activation rows: the query is
// loaded once per 64-element step for all the keys.
void attend_scores_x86(const float* q, size_t q_stride, int nh, const float* k, size_t k_stride, int n, int64_t d, float* s,
                       size_t s_stride) {
  for (int h = 0; h < nh; ++h) tile<FloatVecDot>(q + size_t(h) * q_stride, k, k_stride * sizeof(float), n, d, s + size_t(h) * s_stride, 1);
}

#ifdef __AVX512F__
using AttendVec = __m512;
constexpr int kAttendWidth = 16;
inline __m512 attend_load(const float* p) { return _mm512_loadu_ps(p); }
inline void attend_store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
inline __m512 attend_fma(float a, __m512 x, __m512 y) { return _mm512_fmadd_ps(_mm512_set1_ps(a), x, y); }
#else
using AttendVec = __m256;
constexpr int kAttendWidth = 8;
inline __m256 attend_load(const float* p) { return _mm256_loadu_ps(p); }
inline void attend_store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
inline __m256 attend_fma(float a, __m256 x, __m256 y) { return _mm256_fmadd_ps(_mm256_set1_ps(a), x, y); }
#endif

// One slice of the value rows at a time, loaded once for all the group's heads.
void attend_values_x86(float* acc, size_t head_stride, int nh, int64_t d, int lane0, int keys, const float* const* v, const float* p,
                       size_t p_stride) {
  int64_t i = 0;
  for (; i + kAttendWidth <= d; i += kAttendWidth)
    for (int u = 0; u < keys; ++u) {
      const AttendVec vv = attend_load(v[u] + i);
      float* lane = acc + size_t((lane0 + u) % kAttendLanes) * size_t(d) + i;
      for (int h = 0; h < nh; ++h) {
        float* y = lane + size_t(h) * head_stride;
        attend_store(y, attend_fma(p[size_t(h) * p_stride + size_t(u)], vv, attend_load(y)));
      }
    }
  for (; i < d; ++i)
    for (int u = 0; u < keys; ++u)
      for (int h = 0; h < nh; ++h) {
        float* y = acc + size_t(h) * head_stride + size_t((lane0 + u) % kAttendLanes) * size_t(d) + i;
        *y = fma1(p[size_t(h) * p_stride + size_t(u)], v[u][i], *y);
      }
}
