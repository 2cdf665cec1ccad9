#include "engine/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/cpu_dot.h"
#include "engine/cpu_kernels.h"

namespace flashfix::cpu {

MatView mat(Weight w) {
  MatView m{w->type, w->ne[0], w->dim(1), w->data, w->row_bytes()};
  if (m.type == TensorType::Q4_K && m.n_out % 8 == 0) m.order = DotOrder::SubBlockPairs;
  if (m.type == TensorType::F32 && (m.n_out % 4 != 0 || m.n_in % 16 != 0)) m.order = DotOrder::VecDotF32;
  return m;
}

MatView expert(Weight w, int64_t e) {
  size_t rb = w->row_bytes();
  MatView m{w->type, w->ne[0], w->dim(1), w->data + size_t(e) * size_t(w->dim(1)) * rb, rb};
  if (m.type == TensorType::F32) m.order = DotOrder::VecDotF32;
  return m;
}

ActRows convert_rows(ThreadPool& pool, TensorType at, const float* x, int64_t n_tok, int64_t n_in,
                     std::vector<uint8_t>& buf) {
  if (at == TensorType::F32) return {at, reinterpret_cast<const uint8_t*>(x), size_t(n_in) * 4, n_tok};
  const size_t arow = row_bytes(at, n_in);
  if (buf.size() < arow * size_t(n_tok)) buf.resize(arow * size_t(n_tok));
  uint8_t* dst = buf.data();
  pool.parallel_for(n_tok, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) quantize_activation_fast(at, x + t * n_in, dst + size_t(t) * arow, n_in);
  });
  return {at, dst, arow, n_tok};
}

void ActivationCache::reset(const float* x, int64_t n_tok, int64_t n_in) {
  x_ = x, n_tok_ = n_tok, n_in_ = n_in;
  for (Entry& e : entries_) e.valid = false;
}

ActRows ActivationCache::get(ThreadPool& pool, TensorType weight_type) {
  const TensorType at = activation_type(weight_type);
  if (at == TensorType::F32) return {at, reinterpret_cast<const uint8_t*>(x_), size_t(n_in_) * 4, n_tok_};
  Entry* slot = nullptr;
  for (Entry& e : entries_)
    if (e.type == at) slot = &e;
  if (!slot) slot = &entries_.emplace_back(Entry{at, false, {}});
  if (slot->valid) return {at, slot->buf.data(), row_bytes(at, n_in_), n_tok_};
  slot->valid = true;
  return convert_rows(pool, at, x_, n_tok_, n_in_, slot->buf);
}

namespace {

// Rows per work item: a block of rows (~16 KB of Q4_K at n_in 2048) stays in L1/L2 while every
// token tile passes over it, and there are still enough items to balance two or more threads. It is
// also the repacked GEMM's row group.
constexpr int64_t kRowBlock = 16;
static_assert(kRowBlock == kGemmRows);

// From this many tokens a matrix goes through the repacked GEMM where the path has one, below it
// through the GEMV where the path has one, else through dot_tile. Packing a row group costs about 3
// tokens of GEMM work (5% of a 64-token batch, docs/BENCHMARKS.md); per CPU-second on Q4_K rows
// (1024 inputs, L3-resident) pack + GEMM reads 7.6 / 6.7 / 5.6 / 5.1 GB/s of weights at 2 / 4 / 6 /
// 8 tokens, the GEMV 21.4 / 12.6 / 7.6 / 5.8, so the GEMV takes up to one tile of tokens.
constexpr int64_t kGemmMinTokens = kGemvTokens + 1;

// One row group repacked for the GEMM; cache-line aligned so its 64-byte loads never split lines.
struct alignas(64) CacheLine {
  uint8_t bytes[64];
};

void rows_by_dot_tile(const MatmulJob& job, DotTileFn dot, int64_t r0, int64_t r1) {
  for (int64_t t0 = 0; t0 < job.a.n_tok; t0 += kTileTokens) {
    const int nt = int(std::min<int64_t>(kTileTokens, job.a.n_tok - t0));
    const uint8_t* a = job.a.data + size_t(t0) * job.a.row_bytes;
    for (int64_t r = r0; r < r1; ++r)
      dot(job.w.data + size_t(r) * job.w.row_bytes, a, job.a.row_bytes, nt, job.w.n_in, job.y + t0 * job.w.n_out + r,
          size_t(job.w.n_out));
  }
}

// A block of rows for 1..kGemvTokens tokens: a full row group through the GEMV, a matrix's last,
// shorter one through dot_tile.
void rows_by_gemv(const MatmulJob& job, GemvFn gemv, DotTileFn dot, int64_t r0, int64_t r1) {
  if (r1 - r0 < kGemmRows) return rows_by_dot_tile(job, dot, r0, r1);
  gemv(job.w.data + size_t(r0) * job.w.row_bytes, job.w.row_bytes, job.a.data, job.a.row_bytes, int(job.a.n_tok),
       job.w.n_in, job.y + r0, size_t(job.w.n_out));
}

// The packed row group of rows [r0, r0 + nrows) against tokens [t0, t1), in GEMM tiles.
void gemm_tiles(const MatmulJob& job, const GemmKernel& gemm, const void* packed, int64_t r0, int nrows, int64_t t0, int64_t t1) {
  for (; t0 < t1; t0 += kTileTokens)
    gemm.tile(packed, job.a.data + size_t(t0) * job.a.row_bytes, job.a.row_bytes, int(std::min<int64_t>(kTileTokens, t1 - t0)),
              job.w.n_in, job.y + t0 * job.w.n_out + r0, size_t(job.w.n_out), nrows);
}

// A row group of a job not packed at load through the GEMM: packed now into `scratch`, the calling
// thread's buffer of at least gemm.packed_bytes(job.w.n_in), then against every token.
void rows_by_gemm(const MatmulJob& job, const GemmKernel& gemm, int64_t r0, int64_t r1, CacheLine* scratch) {
  gemm.pack(job.w.data + size_t(r0) * job.w.row_bytes, job.w.row_bytes, int(r1 - r0), job.w.n_in, scratch);
  gemm_tiles(job, gemm, scratch, r0, int(r1 - r0), 0, job.a.n_tok);
}

// Row groups [g0, g1) of a job whose rows were packed at load, in three loops sized to the caches:
// chunks of kChunkTokens tokens, runs of groups whose packed rows fit in kGroupRunBytes, then each
// tile of kTileTokens tokens against every group of the run. The tile's activations (9 KB of Q8_K at
// n_in 1024) and the group it reads (9 KB) stay in L1; the run's rows stay in L2 for all the chunk's
// tiles, so they come from L3/DRAM once per chunk, and the chunk's activations (150 KB) stay in L2
// beside them. Chunks of 32 tokens against every group one tile at a time, before, read a chunk's
// 37 KB of activations from L2 for each group: prefill was 1.06-1.09x slower at 512 tokens
// (docs/BENCHMARKS.md). The shapes found no difference between chunks of 64..512 tokens and runs of
// 64..256 KB on this machine's 1 MB L2; these sizes leave room for caches half as large. With
// per-call packing (rows_by_gemm) the groups stay outer: each is packed once.
constexpr int64_t kChunkTokens = 128;
constexpr size_t kGroupRunBytes = 128 * 1024;

void groups_by_packed_gemm(const MatmulJob& job, const GemmKernel& gemm, int64_t g0, int64_t g1) {
  const size_t group_bytes = gemm.packed_bytes(job.w.n_in);
  const int64_t run = std::max<int64_t>(1, int64_t(kGroupRunBytes / group_bytes));
  for (int64_t c0 = 0; c0 < job.a.n_tok; c0 += kChunkTokens) {
    const int64_t c1 = std::min(job.a.n_tok, c0 + kChunkTokens);
    for (int64_t run0 = g0; run0 < g1; run0 += run) {
      const int64_t run1 = std::min(g1, run0 + run);
      for (int64_t t0 = c0; t0 < c1; t0 += kTileTokens)
        for (int64_t g = run0; g < run1; ++g) {
          const int64_t r0 = g * kRowBlock;
          gemm_tiles(job, gemm, job.w.packed + size_t(g) * group_bytes, r0, int(std::min(job.w.n_out, r0 + kRowBlock) - r0), t0,
                     std::min(c1, t0 + kTileTokens));
        }
    }
  }
}

}  // namespace

void matmul_jobs(ThreadPool& pool, std::span<const MatmulJob> jobs) {
  // The caller's scratch (thread_local, so concurrent callers with their own pools do not share it);
  // the workers reach it through these references, not through their own thread_local instances.
  thread_local std::vector<int64_t> first_item_tls;
  thread_local std::vector<DotTileFn> fns_tls;
  thread_local std::vector<const GemmKernel*> gemms_tls;
  thread_local std::vector<GemvFn> gemvs_tls;
  thread_local std::vector<std::vector<CacheLine>> packed_tls;
  std::vector<int64_t>& first_item = first_item_tls;  // prefix sums of each job's row blocks
  std::vector<DotTileFn>& fns = fns_tls;
  std::vector<const GemmKernel*>& gemms = gemms_tls;  // null: the job goes through the GEMV or dot_tile
  std::vector<GemvFn>& gemvs = gemvs_tls;              // null: the job goes through the GEMM or dot_tile
  std::vector<std::vector<CacheLine>>& packed = packed_tls;  // one repacked row group per pool thread
  first_item.assign(1, 0);
  fns.clear();
  gemms.clear();
  gemvs.clear();
  size_t packed_lines = 0;
  for (const MatmulJob& j : jobs) {
    if (j.a.type != activation_type(j.w.type)) throw std::logic_error("matmul: activations converted for another type");
    first_item.push_back(first_item.back() + (j.w.n_out + kRowBlock - 1) / kRowBlock);
    fns.push_back(dot_tile_for(j.w.type, j.w.order));
    // Packed rows take the GEMM at every token count: read front to back, they stream from DRAM at the
    // plain-read rate, which the GEMV's 16 interleaved row streams do not (cpu_packed_weights.h).
    gemms.push_back(j.a.n_tok >= kGemmMinTokens || j.w.packed ? gemm_for(j.w.type, j.w.order) : nullptr);
    gemvs.push_back(j.a.n_tok <= kGemvTokens ? gemv_for(j.w.type, j.w.order) : nullptr);
    if (gemms.back() && !j.w.packed) packed_lines = std::max(packed_lines, (gemms.back()->packed_bytes(j.w.n_in) + sizeof(CacheLine) - 1) / sizeof(CacheLine));
  }
  // Every thread's buffer grows here, before the loop: which threads run GEMM items varies from call
  // to call (a descheduled worker takes none), so growing on first use inside the loop would allocate
  // in a later, already warmed-up step.
  if (packed.size() < size_t(pool.size())) packed.resize(size_t(pool.size()));
  for (std::vector<CacheLine>& buf : packed)
    if (buf.size() < packed_lines) buf.resize(packed_lines);
  pool.parallel_for(first_item.back(), [&](int64_t i0, int64_t i1, int thread) {
    size_t j = size_t(std::upper_bound(first_item.begin(), first_item.end(), i0) - first_item.begin()) - 1;
    for (int64_t item = i0; item < i1; ++item) {
      while (item >= first_item[j + 1]) ++j;
      const MatmulJob& job = jobs[j];
      if (gemms[j] && job.w.packed) {  // this job's items in the range at once
        const int64_t end = std::min(i1, first_item[j + 1]);
        groups_by_packed_gemm(job, *gemms[j], item - first_item[j], end - first_item[j]);
        item = end - 1;
        continue;
      }
      const int64_t r0 = (item - first_item[j]) * kRowBlock, r1 = std::min(job.w.n_out, r0 + kRowBlock);
      if (gemms[j])
        rows_by_gemm(job, *gemms[j], r0, r1, packed[size_t(thread)].data());
      else if (gemvs[j])
        rows_by_gemv(job, gemvs[j], fns[j], r0, r1);
      else
        rows_by_dot_tile(job, fns[j], r0, r1);
    }
  });
}

void matmul(ThreadPool& pool, const MatView& w, const float* x, int64_t n_tok, float* y) {
  thread_local std::vector<uint8_t> buf;
  const MatmulJob job{w, convert_rows(pool, activation_type(w.type), x, n_tok, w.n_in, buf), y};
  matmul_jobs(pool, std::span<const MatmulJob>(&job, 1));
}

namespace {
typedef float Float4 __attribute__((vector_size(16)));
Float4 load4(const float* p) {
  Float4 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
void store4(float* p, Float4 v) { __builtin_memcpy(p, &v, sizeof v); }
}  // namespace

void add_scaled(float* y, float a, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store4(y + i, load4(y + i) + a * load4(x + i));
  for (; i < n; ++i) y[i] += a * x[i];
}

void add_to(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store4(y + i, load4(y + i) + load4(x + i));
  for (; i < n; ++i) y[i] += x[i];
}

void multiply_by(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store4(y + i, load4(y + i) * load4(x + i));
  for (; i < n; ++i) y[i] *= x[i];
}

namespace {
// y = x * scale * w, the product left to right, four lanes at a time (the same two roundings per lane).
void scale_row(const float* x, float scale, const float* w, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store4(y + i, load4(x + i) * scale * load4(w + i));
  for (; i < n; ++i) y[i] = x[i] * scale * w[i];
}
}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) { rms_norm_rows(x, w, y, 1, n, eps); }

void rms_norm_rows(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  // Squares in float, summed in double, mean and scale in float: the reference's exact formula, so
  // normed activations agree to the last bit where they can (they feed 8-bit quantization, where a
  // last-bit difference can move a value across a rounding boundary). Each row's sum is one chain of
  // dependent double adds in element order, so its latency, not the adder's throughput, bounds a lone
  // row; four rows' chains side by side keep the adders busy (each chain's order unchanged).
  constexpr int64_t kChains = 4;
  for (int64_t r0 = 0; r0 < rows; r0 += kChains) {
    const int64_t nr = std::min(kChains, rows - r0);
    const float* xr = x + r0 * n;
    double ss[kChains] = {0, 0, 0, 0};
    if (nr == kChains) {
      for (int64_t i = 0; i < n; ++i) {
        ss[0] += double(xr[i] * xr[i]);
        ss[1] += double(xr[n + i] * xr[n + i]);
        ss[2] += double(xr[2 * n + i] * xr[2 * n + i]);
        ss[3] += double(xr[3 * n + i] * xr[3 * n + i]);
      }
    } else {
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t i = 0; i < n; ++i) ss[r] += double(xr[r * n + i] * xr[r * n + i]);
    }
    for (int64_t r = 0; r < nr; ++r) {
      const float mean = float(ss[r] / double(n));
      const float scale = 1.f / std::sqrt(mean + eps);
      scale_row(xr + r * n, scale, w, y + (r0 + r) * n, n);
    }
  }
}

// YaRN correction range: the rotary dims whose wavelength lies between beta_fast and beta_slow
// rotations over the original context are blended between interpolation and extrapolation.
void yarn_corr_dims(const RopeConfig& p, float dims[2]) {
  auto corr = [&](float n_rot) {
    return p.n_rot * std::log(float(p.n_ctx_orig) / (n_rot * 2.f * float(M_PI))) / (2.f * std::log(p.freq_base));
  };
  dims[0] = std::max(0.f, std::floor(corr(p.beta_fast)));
  dims[1] = std::min(float(p.n_rot - 1), std::ceil(corr(p.beta_slow)));
}

void rope_table(int64_t pos, const RopeConfig& p, const float* freq_factors, float* cs) {
  const int half = p.n_rot / 2;
  float corr[2] = {0, 0};
  if (p.ext_factor != 0.f) yarn_corr_dims(p, corr);
  const float theta_scale = std::pow(p.freq_base, -2.f / float(p.n_rot));
  float theta_base = float(pos);
  for (int i = 0; i < half; ++i, theta_base *= theta_scale) {
    float theta_extrap = freq_factors ? theta_base / freq_factors[i] : theta_base;
    float theta = p.freq_scale * theta_extrap;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.f) {
      float y = (float(i) - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
      float mix = (1.f - std::min(1.f, std::max(0.f, y))) * p.ext_factor;
      theta = theta * (1.f - mix) + theta_extrap * mix;
      mscale *= 1.f + 0.1f * std::log(1.f / p.freq_scale);
    }
    cs[2 * i] = std::cos(theta) * mscale;
    cs[2 * i + 1] = std::sin(theta) * mscale;
  }
}

void rope_apply(float* head, const float* cs, int n_rot) { kernels().rope_f32(head, cs, n_rot); }

void embed_row(Weight table, int32_t token, float* out) {
  const uint8_t* src = table->data + size_t(token) * table->row_bytes();
  dequantize_row(table->type, src, out, table->ne[0]);
}

}  // namespace flashfix::cpu
