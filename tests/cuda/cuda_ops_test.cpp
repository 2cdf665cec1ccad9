// Every CUDA op against the CPU engine's implementation of the same step, on random inputs (in the
// manner of llama.cpp's test-backend-ops). Skipped, with the reason, where no CUDA device is usable.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cpu_dot.h"
#include "engine/cpu_ops.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_ops.h"

namespace flashfix {
namespace {

template <class T>
class Dev {
 public:
  explicit Dev(size_t n) : n_(n) {
    cuda::check(cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc");
    cuda::check(cudaMemset(p_, 0, std::max<size_t>(n, 1) * sizeof(T)), "cudaMemset");
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) {
    cuda::check(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() const { return p_; }
  std::vector<T> host() const {
    cuda::check(cudaDeviceSynchronize(), "sync");
    std::vector<T> v(n_);
    cuda::check(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
  }
  std::vector<float> random(size_t n, float sd = 1.f) {
    std::normal_distribution<float> g(0.f, sd);
    std::vector<float> v(n);
    for (float& x : v) x = g(rng_);
    return v;
  }
  std::mt19937 rng_{7};
};

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += double(a[i] - b[i]) * (a[i] - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST_F(CudaOps, ActivationConversionIsBitIdenticalToCpu) {
  const int64_t rows = 5, n = 512;
  std::vector<float> x = random(size_t(rows * n), 3.f);
  x[7] = NAN, x[300] = INFINITY, x[700] = -INFINITY;  // sanitized as quant.cpp does
  std::fill_n(x.begin() + 1024, 256, 0.f);             // an all-zero block
  Dev<float> dx(x);
  for (TensorType at : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q8_K}) {
    const size_t rb = row_bytes(at, n);
    std::vector<uint8_t> want(rb * rows);
    for (int64_t r = 0; r < rows; ++r) cpu::quantize_activation(at, &x[size_t(r * n)], &want[size_t(r) * rb], n);
    Dev<uint8_t> out(rb * rows);
    cuda::convert_rows(at, dx.get(), rows, n, out.get(), nullptr);
    EXPECT_EQ(out.host(), want) << type_traits(at).name;
  }
}

// Each weight type, plain and as experts (one routed slot per group, and grouped by expert, each slot
// reading its token's row), one token and a tile with a ragged tail, against cpu::vec_dot on the same
// converted activations.
TEST_F(CudaOps, MatvecMatchesCpuDotForEveryType) {
  for (TensorType wt : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    const bool blocky = type_traits(wt).block_elems > 1;
    for (int64_t n_in : {int64_t(512), int64_t(blocky ? 768 : 300)}) {
      const int64_t n_out = 37, n_exp = 3, rows = 13;
      const size_t wrb = row_bytes(wt, n_in);
      std::vector<float> wf = random(size_t(n_exp * n_out * n_in), 0.05f);
      std::vector<uint8_t> w(wrb * size_t(n_exp * n_out));
      for (int64_t r = 0; r < n_exp * n_out; ++r) quantize_row(wt, &wf[size_t(r * n_in)], &w[size_t(r) * wrb], n_in);
      const TensorType at = cpu::activation_type(wt);
      std::vector<float> x = random(size_t(rows * n_in));
      const size_t arb = at == TensorType::F32 ? size_t(n_in) * 4 : row_bytes(at, n_in);
      std::vector<uint8_t> a(arb * rows);
      for (int64_t r = 0; r < rows; ++r) cpu::quantize_activation(at, &x[size_t(r * n_in)], &a[size_t(r) * arb], n_in);
      Dev<uint8_t> dw(w), da(a);
      Dev<float> dx(x);
      // The device's own conversion feeds the same bits (checked above), so a is converted there too.
      if (at != TensorType::F32) {
        cuda::convert_rows(at, dx.get(), rows, n_in, da.get(), nullptr);
        ASSERT_EQ(da.host(), a);
      }
      auto cpu_row = [&](int64_t e, int64_t o, int64_t r) {
        return cpu::vec_dot(wt, &w[size_t(e * n_out + o) * wrb], &a[size_t(r) * arb], n_in);
      };
      const std::string what = std::string(type_traits(wt).name) + " n_in " + std::to_string(n_in);

      for (int64_t n_rows : {int64_t(1), rows}) {  // plain matrix (expert 0), accumulate on top of 1
        cuda::Matvec m;
        m.type = wt, m.w = dw.get(), m.w_row_bytes = wrb, m.n_in = n_in, m.n_out = n_out;
        m.a = da.get(), m.a_row_bytes = arb, m.n_rows = n_rows;
        std::vector<float> ones(size_t(n_rows * n_out), 1.f);
        Dev<float> dy(ones);
        m.y = dy.get(), m.y_stride = n_out, m.accumulate = true;
        cuda::matvec(m, nullptr);
        std::vector<float> want(size_t(n_rows * n_out));
        for (int64_t r = 0; r < n_rows; ++r)
          for (int64_t o = 0; o < n_out; ++o) want[size_t(r * n_out + o)] = 1.f + cpu_row(0, o, r);
        EXPECT_LE(rel_l2(dy.host(), want), 2e-6) << what << " rows " << n_rows;
      }
      // Routed slots read their token's activation row: slot r reads row token[r].
      std::vector<int32_t> token(rows);
      for (int64_t r = 0; r < rows; ++r) token[size_t(r)] = int32_t((r * 5 + 3) % rows);
      Dev<int32_t> dtoken(token);
      // One routed slot per group: slot r meets expert ids[r] and reads token row (5r + 3) % rows. 13
      // slots give a launch of few rows (a block per row), 40 one of many (a warp per row).
      for (int64_t slots : {rows, int64_t(40)}) {
        std::vector<int32_t> ids(slots), slot_token(slots);
        for (int64_t r = 0; r < slots; ++r) ids[size_t(r)] = int32_t((r * 7 + 1) % n_exp), slot_token[size_t(r)] = int32_t((r * 5 + 3) % rows);
        Dev<int32_t> did(ids), dslot_token(slot_token);
        Dev<float> dy(size_t(slots * n_out));
        cuda::Matvec m;
        m.type = wt, m.w = dw.get(), m.w_row_bytes = wrb, m.n_in = n_in, m.n_out = n_out, m.expert_bytes = wrb * n_out;
        m.expert_of = did.get(), m.n_z = int(slots), m.max_rows_per_z = 1;
        m.a = da.get(), m.a_row_bytes = arb, m.a_row_of = dslot_token.get(), m.n_rows = slots, m.y = dy.get(), m.y_stride = n_out;
        cuda::matvec(m, nullptr);
        std::vector<float> want(size_t(slots * n_out));
        for (int64_t r = 0; r < slots; ++r)
          for (int64_t o = 0; o < n_out; ++o) want[size_t(r * n_out + o)] = cpu_row(ids[size_t(r)], o, slot_token[size_t(r)]);
        EXPECT_LE(rel_l2(dy.host(), want), 2e-6) << what << " slot-wise experts, " << slots << " slots";
      }
      {  // grouped: expert e owns rows [first[e], first[e+1]); expert 1 none
        std::vector<int32_t> first{0, 9, 9, int32_t(rows)};
        Dev<int32_t> dfirst(first);
        Dev<float> dy(size_t(rows * n_out));
        cuda::Matvec m;
        m.type = wt, m.w = dw.get(), m.w_row_bytes = wrb, m.n_in = n_in, m.n_out = n_out, m.expert_bytes = wrb * n_out;
        m.z_first = dfirst.get(), m.n_z = int(n_exp), m.max_rows_per_z = rows;
        m.a = da.get(), m.a_row_bytes = arb, m.a_row_of = dtoken.get(), m.n_rows = rows, m.y = dy.get(), m.y_stride = n_out;
        cuda::matvec(m, nullptr);
        std::vector<float> want(size_t(rows * n_out));
        for (int64_t e = 0; e < n_exp; ++e)
          for (int64_t r = first[size_t(e)]; r < first[size_t(e) + 1]; ++r)
            for (int64_t o = 0; o < n_out; ++o) want[size_t(r * n_out + o)] = cpu_row(e, o, token[size_t(r)]);
        EXPECT_LE(rel_l2(dy.host(), want), 2e-6) << what << " grouped experts";
      }
    }
  }
}

// RMSNorm against the CPU's; the activation rows it converts in the same kernel are those
// convert_rows makes of its output.
TEST_F(CudaOps, RmsNormMatchesCpuAndConvertsItsOutput) {
  const int64_t rows = 3, n = 1024;
  std::vector<float> x = random(size_t(rows * n)), w = random(size_t(n));
  std::vector<int32_t> src{2, 0, 2};
  Dev<float> dx(x), dw(w), dy(size_t(rows * n));
  Dev<int32_t> ds(src);
  for (TensorType at : {TensorType::F32, TensorType::Q8_K, TensorType::Q8_0, TensorType::BF16}) {
    const size_t rb = at == TensorType::F32 ? 0 : row_bytes(at, n);
    Dev<uint8_t> act(rb * rows);
    cuda::rms_norm_rows(dx.get(), ds.get(), dw.get(), dy.get(), rows, n, 1e-6f, nullptr, at, rb ? act.get() : nullptr);
    std::vector<float> want(size_t(rows * n));
    for (int64_t r = 0; r < rows; ++r) cpu::rms_norm(&x[size_t(src[size_t(r)] * n)], w.data(), &want[size_t(r * n)], n, 1e-6f);
    const std::vector<float> y = dy.host();
    EXPECT_LE(rel_l2(y, want), 1e-6);
    if (!rb) continue;
    std::vector<uint8_t> want_act(rb * rows);
    for (int64_t r = 0; r < rows; ++r) cpu::quantize_activation(at, &y[size_t(r * n)], &want_act[size_t(r) * rb], n);
    EXPECT_EQ(act.host(), want_act) << type_traits(at).name;
  }
}

// Token positions spread over two sequences' block tables.
struct KvFixture {
  std::vector<int32_t> pos, table, off;
};

// q/k norm + RoPE (partial rotary, frequency factors, YaRN) + K/V placement in the paged cache.
TEST_F(CudaOps, QkNormRopeStoreMatchesCpu) {
  const int H = 4, Hkv = 2, hd = 64, vd = 32, T = 3;
  RopeConfig rc;
  rc.n_rot = 32, rc.freq_base = 5e6f, rc.use_freq_factors = true;
  rc.freq_scale = 0.25f, rc.ext_factor = 1.f, rc.attn_factor = 1.f, rc.n_ctx_orig = 4096;
  std::vector<float> ff(size_t(rc.n_rot / 2));
  for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.f + 0.5f * float(i);
  std::vector<float> q = random(size_t(T * H * hd)), k = random(size_t(T * Hkv * hd)), v = random(size_t(T * Hkv * vd));
  std::vector<float> qn = random(size_t(hd)), kn = random(size_t(hd));
  // Sequence A holds blocks {3, 1}, sequence B {0}: tokens at A:17, A:5, B:2.
  KvFixture kv{{17, 5, 2}, {3, 1, 0}, {0, 0, 2}};
  const int64_t n_rows = 4 * cuda::kBlockTokens;
  Dev<float> dq(q), dk(k), dv(v), dqn(qn), dkn(kn), dff(ff), kc(size_t(n_rows * Hkv * hd)), vc(size_t(n_rows * Hkv * vd));
  Dev<int32_t> dpos(kv.pos), dtab(kv.table), doff(kv.off);
  cuda::QkStore a;
  a.q = dq.get(), a.k = dk.get(), a.v = dv.get(), a.q_norm = dqn.get(), a.k_norm = dkn.get(), a.eps = 1e-6f;
  a.n_tok = T, a.n_head = H, a.n_head_kv = Hkv, a.head_dim = hd, a.v_head_dim = vd;
  a.rope.n_rot = rc.n_rot, a.rope.theta_scale = std::pow(rc.freq_base, -2.f / float(rc.n_rot));
  a.rope.freq_scale = rc.freq_scale, a.rope.ext_factor = rc.ext_factor;
  a.rope.mscale = rc.attn_factor * (1.f + 0.1f * std::log(1.f / rc.freq_scale));
  float corr[2];
  cpu::yarn_corr_dims(rc, corr);
  a.rope.corr0 = corr[0], a.rope.corr1 = corr[1], a.rope.freq_factors = dff.get();
  a.kv = {dpos.get(), dtab.get(), doff.get()}, a.k_cache = kc.get(), a.v_cache = vc.get();
  cuda::qk_norm_rope_store(a, nullptr);

  std::vector<float> want_q = q, want_kc(size_t(n_rows * Hkv * hd), 0.f), want_vc(size_t(n_rows * Hkv * vd), 0.f);
  std::vector<float> cs(size_t(rc.n_rot));
  for (int t = 0; t < T; ++t) {
    cpu::rope_table(kv.pos[size_t(t)], rc, ff.data(), cs.data());
    for (int h = 0; h < H; ++h) {
      float* head = &want_q[size_t((t * H + h) * hd)];
      cpu::rms_norm(head, qn.data(), head, hd, 1e-6f);
      cpu::rope_apply(head, cs.data(), rc.n_rot);
    }
    const int64_t row = int64_t(kv.table[size_t(kv.off[size_t(t)] + kv.pos[size_t(t)] / 16)]) * 16 + kv.pos[size_t(t)] % 16;
    for (int h = 0; h < Hkv; ++h) {
      float* dst = &want_kc[size_t((row * Hkv + h) * hd)];
      std::copy_n(&k[size_t((t * Hkv + h) * hd)], hd, dst);
      cpu::rms_norm(dst, kn.data(), dst, hd, 1e-6f);
      cpu::rope_apply(dst, cs.data(), rc.n_rot);
      std::copy_n(&v[size_t((t * Hkv + h) * vd)], vd, &want_vc[size_t((row * Hkv + h) * vd)]);
    }
  }
  EXPECT_LE(rel_l2(dq.host(), want_q), 1e-5);
  EXPECT_LE(rel_l2(kc.host(), want_kc), 1e-5);
  EXPECT_EQ(vc.host(), want_vc);
}

// Attention with GQA, a sliding window, the head gate, one split and many, against a double-precision
// softmax over the same cache.
TEST_F(CudaOps, AttentionMatchesReference) {
  const int H = 4, Hkv = 2, hd = 64, vd = 32, T = 2;
  const int64_t n_rows = 64 * cuda::kBlockTokens;
  std::vector<float> kc = random(size_t(n_rows * Hkv * hd)), vc = random(size_t(n_rows * Hkv * vd));
  std::vector<float> q = random(size_t(T * H * hd)), gate = random(size_t(T * H));
  std::vector<int32_t> table(64);
  std::iota(table.begin(), table.end(), 0);
  std::reverse(table.begin(), table.end());  // logical block b lives in physical block 63 - b
  KvFixture kv{{700, 33}, table, {0, 0}};
  Dev<float> dkc(kc), dvc(vc), dq(q), dg(gate), out(size_t(T * H * vd));
  Dev<int32_t> dpos(kv.pos), dtab(kv.table), doff(kv.off);
  for (int window : {0, 100})
    for (int split : {1, 32, cuda::kMaxSplits})  // 256 splits: most hold 1-3 keys, some none
      for (bool gated : {false, true}) {
        Dev<float> part(cuda::attention_partial_floats(T, H, vd, split));
        cuda::Attention a;
        a.q = dq.get(), a.k_cache = dkc.get(), a.v_cache = dvc.get(), a.kv = {dpos.get(), dtab.get(), doff.get()};
        a.n_tok = T, a.n_head = H, a.n_head_kv = Hkv, a.head_dim = hd, a.v_head_dim = vd, a.window = window;
        a.gate = gated ? dg.get() : nullptr, a.out = out.get(), a.partial = part.get(), a.n_split = split;
        cuda::attention(a, nullptr);
        std::vector<float> want(size_t(T * H * vd));
        for (int t = 0; t < T; ++t)
          for (int h = 0; h < H; ++h) {
            const int kvh = h / (H / Hkv);
            const int64_t pos = kv.pos[size_t(t)], start = window ? std::max<int64_t>(0, pos - window + 1) : 0;
            std::vector<double> s;
            for (int64_t j = start; j <= pos; ++j) {
              const int64_t row = int64_t(table[size_t(j / 16)]) * 16 + j % 16;
              double d = 0;
              for (int i = 0; i < hd; ++i) d += double(q[size_t((t * H + h) * hd + i)]) * kc[size_t((row * Hkv + kvh) * hd + i)];
              s.push_back(d / std::sqrt(double(hd)));
            }
            const double mx = *std::max_element(s.begin(), s.end());
            double sum = 0;
            for (double& x : s) sum += (x = std::exp(x - mx));
            const double g = gated ? 1 / (1 + std::exp(-double(gate[size_t(t * H + h)]))) : 1;
            for (int i = 0; i < vd; ++i) {
              double acc = 0;
              for (int64_t j = start; j <= pos; ++j) {
                const int64_t row = int64_t(table[size_t(j / 16)]) * 16 + j % 16;
                acc += s[size_t(j - start)] * vc[size_t((row * Hkv + kvh) * vd + i)];
              }
              want[size_t((t * H + h) * vd + i)] = float(acc / sum * g);
            }
          }
        EXPECT_LE(rel_l2(out.host(), want), 2e-5) << "window " << window << " splits " << split << " gate " << gated;
      }
}

// Softmax and sigmoid routers, with and without the selection bias, renorm and scale; then the
// grouping by expert and the combine, against the CPU backend's rules.
TEST_F(CudaOps, RoutingGroupingAndCombineMatchCpuRules) {
  const int64_t T = 20, n = 64;
  const int X = 16, K = 4;
  std::vector<float> logits = random(size_t(T * X)), bias = random(size_t(X), 0.1f);
  logits[3] = logits[5];  // a tie: the lower expert wins
  Dev<float> dl(logits), db(bias), dw(size_t(T * K));
  Dev<int32_t> dids(size_t(T * K));
  for (bool softmax : {true, false})
    for (bool biased : {false, true}) {
      cuda::Route r;
      r.logits = dl.get(), r.n_tok = T, r.n_expert = X, r.k = K, r.softmax = softmax, r.bias = biased ? db.get() : nullptr;
      r.renorm = softmax, r.scale = softmax ? 1.f : 3.f, r.ids = dids.get(), r.weights = dw.get();
      cuda::route(r, nullptr);
      const std::vector<int32_t> ids = dids.host();
      const std::vector<float> wts = dw.host();
      for (int64_t t = 0; t < T; ++t) {
        std::vector<float> p(logits.begin() + t * X, logits.begin() + (t + 1) * X);
        if (softmax) {
          const float mx = *std::max_element(p.begin(), p.end());
          float sum = 0;
          for (float& v : p) sum += (v = std::exp(v - mx));
          for (float& v : p) v /= sum;
        } else {
          for (float& v : p) v = cpu::sigmoid(v);
        }
        std::vector<int> order(X);
        std::iota(order.begin(), order.end(), 0);
        auto sel = [&](int e) { return biased ? p[size_t(e)] + bias[size_t(e)] : p[size_t(e)]; };
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sel(a) > sel(b); });
        float wsum = 0;
        for (int k = 0; k < K; ++k) wsum += p[size_t(order[size_t(k)])];
        for (int k = 0; k < K; ++k) {
          ASSERT_EQ(ids[size_t(t * K + k)], order[size_t(k)]) << "token " << t << " rank " << k;
          const float want = p[size_t(order[size_t(k)])] * (r.renorm ? 1.f / wsum : 1.f) * r.scale;
          EXPECT_NEAR(wts[size_t(t * K + k)], want, 1e-6f * std::max(1.f, std::fabs(want)));
        }
      }
    }

  // Grouping: a stable counting sort by expert.
  const std::vector<int32_t> ids = dids.host();
  Dev<int32_t> first(size_t(X + 1)), slot_token(size_t(T * K)), entry_slot(size_t(T * K));
  cuda::group_by_expert(dids.get(), T, K, X, first.get(), slot_token.get(), entry_slot.get(), nullptr);
  std::vector<int32_t> want_first(size_t(X + 1), 0), want_token, want_entry_slot(size_t(T * K));
  for (int32_t e : ids) ++want_first[size_t(e) + 1];
  std::partial_sum(want_first.begin(), want_first.end(), want_first.begin());
  for (int e = 0; e < X; ++e)
    for (int64_t i = 0; i < T * K; ++i)
      if (ids[size_t(i)] == e) want_entry_slot[size_t(i)] = int32_t(want_token.size()), want_token.push_back(int32_t(i / K));
  EXPECT_EQ(first.host(), want_first);
  EXPECT_EQ(slot_token.host(), want_token);
  EXPECT_EQ(entry_slot.host(), want_entry_slot);

  // SwiGLU with the clamp, then the combine in expert order plus a shared expert.
  // (and its output converted in the same kernel, as convert_rows would)
  std::vector<float> g = random(size_t(T * K * n), 4.f), u = random(size_t(T * K * n), 4.f);
  Dev<float> dg(g), du(u);
  const size_t hrb = row_bytes(TensorType::Q8_0, n);
  Dev<uint8_t> hact(hrb * size_t(T * K));
  cuda::swiglu(dg.get(), du.get(), T * K, n, 2.5f, nullptr, TensorType::Q8_0, hact.get());
  std::vector<float> h(g.size());
  for (size_t i = 0; i < g.size(); ++i) h[i] = std::min(cpu::silu(g[i]), 2.5f) * std::clamp(u[i], -2.5f, 2.5f);
  const std::vector<float> got_h = dg.host();
  EXPECT_LE(rel_l2(got_h, h), 1e-6);
  std::vector<uint8_t> want_hact(hrb * size_t(T * K));
  for (int64_t r = 0; r < T * K; ++r) cpu::quantize_activation(TensorType::Q8_0, &got_h[size_t(r * n)], &want_hact[size_t(r) * hrb], n);
  EXPECT_EQ(hact.host(), want_hact);

  std::vector<float> sh = random(size_t(T * n)), x = random(size_t(T * n));
  Dev<float> dsh(sh), dx(x);
  cuda::moe_combine(dg.get(), dids.get(), dw.get(), entry_slot.get(), dsh.get(), T, K, n, dx.get(), nullptr);
  const std::vector<float> hout = dg.host(), wts = dw.host();
  const std::vector<int32_t> es = entry_slot.host();
  std::vector<float> want = x;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int> ks(K);
    std::iota(ks.begin(), ks.end(), 0);
    std::sort(ks.begin(), ks.end(), [&](int a, int b) { return ids[size_t(t * K + a)] < ids[size_t(t * K + b)]; });
    for (int64_t d = 0; d < n; ++d) {
      float acc = 0;
      for (int k : ks) acc += wts[size_t(t * K + k)] * hout[size_t(es[size_t(t * K + k)] * n + d)];
      want[size_t(t * n + d)] += acc + sh[size_t(t * n + d)];
    }
  }
  EXPECT_LE(rel_l2(dx.host(), want), 1e-6);
}

TEST_F(CudaOps, CopyBandwidthIsMeasured) {
  const double gbs = cuda::copy_bandwidth_gbs(size_t(256) << 20);
  EXPECT_GT(gbs, 50.0) << "a GPU copies device memory far faster than this";
}

}  // namespace
}  // namespace flashfix
