// The CUDA backend's host side: weights uploaded once, KV blocks in device memory with the CPU
// store's byte layout, and the forward pass queued as kernels on one stream (cuda_ops.h). Like the
// CPU reference (cpu_backend.cpp) it reads only ModelConfig's per-layer data.
//
// A micro-batch costs the host one upload of its metadata (embedding rows, positions, block tables)
// and one download of its logits; routing, expert selection and grouping stay on the device, so no
// layer waits for the host. A decode step of a given shape (tokens, rows wanting logits) is captured
// once as a CUDA graph and replayed: the ~20 launches per layer then cost one graph launch.
#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/cpu_dot.h"
#include "engine/cpu_ops.h"
#include "engine/cuda/cuda_ops.h"

namespace flashfix {
namespace {

using cuda::check;
static_assert(cuda::kBlockTokens == kKvBlockTokens);

// A device allocation owned by one object; never resized after the backend is built, so captured
// graphs keep valid pointers.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) { reset(n); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (p_) cudaFree(p_);
  }
  void reset(size_t n) {
    if (p_) cudaFree(p_), p_ = nullptr;
    n_ = n;
    if (n) check(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)), "cudaMalloc");
    if (n) check(cudaMemset(p_, 0, n * sizeof(T)), "cudaMemset");
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Page-locked host memory: the only kind an asynchronous copy (and a graph replay) reads at launch.
template <class T>
class PinnedArray {
 public:
  PinnedArray(const PinnedArray&) = delete;
  PinnedArray& operator=(const PinnedArray&) = delete;
  PinnedArray() = default;
  ~PinnedArray() {
    if (p_) cudaFreeHost(p_);
  }
  void reset(size_t n) {
    if (p_) cudaFreeHost(p_), p_ = nullptr;
    if (n) check(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T)), "cudaMallocHost");
    n_ = n;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

void select_device(int device) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("the cuda backend found no usable CUDA device: ") + cudaGetErrorString(e));
  if (device < 0 || device >= n)
    throw std::runtime_error("the cuda backend has no CUDA device " + std::to_string(device) + " (" + std::to_string(n) + " found)");
  check(cudaSetDevice(device), "cudaSetDevice");
}

// KV blocks on the device, laid out as CpuKvStore lays them out (per kind: K then V of every layer
// of that kind, then for Full blocks the hidden state), so a block's bytes mean the same on either
// backend and the prefix cache's files move between them. MTP layers have their slots in Full blocks,
// as on the CPU, though this backend does not draft with them: the bytes still travel.
class CudaKvStore final : public KvStore {
 public:
  CudaKvStore(const ModelConfig& c, int64_t full_blocks, int64_t sliding_blocks) : c_(c), serial_(next_serial_++) {
    n_blocks_[0] = full_blocks, n_blocks_[1] = sliding_blocks;
    for (int il = 0; il < int(c.layers.size()); ++il) {
      const LayerConfig& L = c.layers[size_t(il)];
      const int kind = kind_of(L);
      slot_.push_back(int(k_[kind].size()));
      const auto rows = size_t(n_blocks_[kind] * kKvBlockTokens);
      k_[kind].push_back(std::make_unique<DeviceArray<float>>(rows * size_t(L.n_head_kv * c.head_dim)));
      v_[kind].push_back(std::make_unique<DeviceArray<float>>(rows * size_t(L.n_head_kv * c.v_head_dim)));
      row_floats_[kind] += size_t(L.n_head_kv) * size_t(c.head_dim + c.v_head_dim);
    }
    row_floats_[0] += size_t(c.n_embd);
    hidden_.reset(size_t(full_blocks * kKvBlockTokens * c.n_embd));
  }

  int64_t n_blocks(KvKind kind) const override { return n_blocks_[int(kind)]; }
  size_t block_bytes(KvKind kind) const override { return row_floats_[int(kind)] * kKvBlockTokens * sizeof(float); }

  float* k_base(int il) const { return array(k_, il); }
  float* v_base(int il) const { return array(v_, il); }
  float* hidden() const { return hidden_.get(); }
  // Unique per store ever made: graphs captured against one store's arrays are keyed by it, so a new
  // store at a freed one's address never replays them.
  uint64_t serial() const { return serial_; }

  void copy_block(KvKind kind, int32_t src, int32_t dst, int64_t n) override {
    for_each_span(kind, [&](float* base, size_t per_row) {
      check(cudaMemcpy(base + size_t(dst) * per_row * kKvBlockTokens, base + size_t(src) * per_row * kKvBlockTokens,
                       size_t(n) * per_row * sizeof(float), cudaMemcpyDeviceToDevice),
            "KV block copy");
    });
  }
  void read_block(KvKind kind, int32_t block, std::span<uint8_t> out) const override {
    check_size(kind, out.size());
    uint8_t* dst = out.data();
    for_each_span(kind, [&](float* base, size_t per_row) {
      const size_t bytes = per_row * kKvBlockTokens * sizeof(float);
      check(cudaMemcpy(dst, base + size_t(block) * per_row * kKvBlockTokens, bytes, cudaMemcpyDeviceToHost), "KV block read");
      dst += bytes;
    });
  }
  void write_block(KvKind kind, int32_t block, std::span<const uint8_t> in) override {
    check_size(kind, in.size());
    const uint8_t* src = in.data();
    for_each_span(kind, [&](float* base, size_t per_row) {
      const size_t bytes = per_row * kKvBlockTokens * sizeof(float);
      check(cudaMemcpy(base + size_t(block) * per_row * kKvBlockTokens, src, bytes, cudaMemcpyHostToDevice), "KV block write");
      src += bytes;
    });
  }

 private:
  using Arrays = std::vector<std::unique_ptr<DeviceArray<float>>>;
  float* array(const Arrays (&arr)[2], int il) const {
    return arr[kind_of(c_.layers[size_t(il)])][size_t(slot_[size_t(il)])]->get();
  }
  static int kind_of(const LayerConfig& L) { return L.sliding && !L.mtp ? 1 : 0; }
  void check_size(KvKind kind, size_t bytes) const {
    if (bytes != block_bytes(kind)) throw std::invalid_argument("KV block buffer of the wrong size");
  }
  template <class Fn>
  void for_each_span(KvKind kind, Fn&& fn) const {
    const int k = int(kind);
    const size_t rows = size_t(n_blocks_[k] * kKvBlockTokens);
    for (size_t i = 0; i < k_[k].size(); ++i) {
      fn(k_[k][i]->get(), k_[k][i]->size() / rows);
      fn(v_[k][i]->get(), v_[k][i]->size() / rows);
    }
    if (kind == KvKind::Full) fn(hidden_.get(), size_t(c_.n_embd));
  }

  static inline std::atomic<uint64_t> next_serial_{0};
  const ModelConfig& c_;
  uint64_t serial_;
  int64_t n_blocks_[2] = {0, 0};
  size_t row_floats_[2] = {0, 0};
  std::vector<int> slot_;
  Arrays k_[2], v_[2];
  DeviceArray<float> hidden_;
};

// Every weight the trunk and the head read, copied once into one device arena.
class DeviceWeights {
 public:
  explicit DeviceWeights(const Model& model) {
    const ModelWeights& w = model.weights();
    const ModelConfig& c = model.config();
    std::vector<Weight> all{w.output_norm, w.output, w.rope_freqs};
    for (int il = 0; il < c.n_layer; ++il) {
      const LayerWeights& l = w.layers[size_t(il)];
      for (Weight t : {l.attn_norm, l.attn_q, l.attn_k, l.attn_v, l.attn_output, l.attn_q_norm, l.attn_k_norm, l.attn_gate,
                       l.ffn_norm, l.ffn_gate, l.ffn_up, l.ffn_down, l.ffn_gate_inp, l.exp_probs_b, l.ffn_gate_exps,
                       l.ffn_up_exps, l.ffn_down_exps, l.ffn_gate_shexp, l.ffn_up_shexp, l.ffn_down_shexp})
        all.push_back(t);
    }
    size_t total = 0;
    for (Weight t : all)
      if (t && !offset_.count(t)) offset_[t] = total, total += (t->nbytes + 255) / 256 * 256;
    arena_.reset(total);
    for (const auto& [t, off] : offset_)
      check(cudaMemcpy(arena_.get() + off, t->data, t->nbytes, cudaMemcpyHostToDevice), "weight upload");
  }
  const uint8_t* operator[](Weight t) const { return t ? arena_.get() + offset_.at(t) : nullptr; }
  const float* f32(Weight t) const { return reinterpret_cast<const float*>((*this)[t]); }

 private:
  DeviceArray<uint8_t> arena_;
  std::unordered_map<Weight, size_t> offset_;
};

// One activation input converted at most once per activation type (q, k, v and the gate share the
// normed layer input), as the CPU's ActivationCache does.
class DeviceActs {
 public:
  // Every activation type's rows fit in as many floats as the row has elements (Q8_K, the widest,
  // takes 292 bytes per 256).
  void init(int64_t max_rows, int64_t max_n) {
    for (TensorType t : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q8_K})
      bufs_[t].reset(size_t(max_rows * max_n) * sizeof(float));
  }
  void reset(const float* x, int64_t n_rows, int64_t n) {
    x_ = x, rows_ = n_rows, n_ = n;
    valid_.clear();
  }
  // The buffer for weights of type `weight_type`'s activation type, marked converted: the caller's
  // kernel (RMSNorm, SwiGLU) fills it before any reader in stream order. Null for F32 (no conversion).
  uint8_t* claim(TensorType weight_type) {
    const TensorType at = cpu::activation_type(weight_type);
    if (at == TensorType::F32) return nullptr;
    if (std::find(valid_.begin(), valid_.end(), at) == valid_.end()) valid_.push_back(at);
    return bufs_.at(at).get();
  }
  // The input converted for weights of type `weight_type`, and its row bytes.
  std::pair<const uint8_t*, size_t> get(TensorType weight_type, cudaStream_t s) {
    const TensorType at = cpu::activation_type(weight_type);
    if (at == TensorType::F32) return {reinterpret_cast<const uint8_t*>(x_), size_t(n_) * sizeof(float)};
    uint8_t* buf = bufs_.at(at).get();
    if (std::find(valid_.begin(), valid_.end(), at) == valid_.end()) {
      cuda::convert_rows(at, x_, rows_, n_, buf, s);
      valid_.push_back(at);
    }
    return {buf, row_bytes(at, n_)};
  }

 private:
  const float* x_ = nullptr;
  int64_t rows_ = 0, n_ = 0;
  std::map<TensorType, DeviceArray<uint8_t>> bufs_;
  std::vector<TensorType> valid_;
};

// FLASHFIX_CUDA_PROFILE=1: the device time of every op of every forward pass, from events recorded
// between the ops (captured into the decode graphs too, as event-record nodes, so replays are timed
// as they run), printed per op to stderr when the backend is destroyed. For finding where a step's
// time goes; when off, a mark costs one branch.
class OpProfile {
 public:
  // The events of one sequence of ops: one set for eager passes, one per captured graph.
  struct Marks {
    std::vector<cudaEvent_t> events;
    std::vector<const char*> names;
    size_t used = 0;
  };
  OpProfile() : on_(std::getenv("FLASHFIX_CUDA_PROFILE") != nullptr) {}
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;
  ~OpProfile() {
    if (!on_) return;
    print();
    for (auto& m : marks_)
      for (cudaEvent_t e : m->events) cudaEventDestroy(e);
  }
  // Starts recording a sequence into fresh (or, for eager passes, reused) marks.
  Marks* begin(Marks* reuse = nullptr) {
    if (!on_) return current_ = nullptr;
    if (!reuse) marks_.push_back(std::make_unique<Marks>()), reuse = marks_.back().get();
    reuse->used = 0;
    return current_ = reuse;
  }
  // The op called `name` starts here (and the previous one ends).
  void mark(const char* name, cudaStream_t s) {
    if (!current_) return;
    Marks& m = *current_;
    if (m.used == m.events.size()) {
      cudaEvent_t e = nullptr;
      check(cudaEventCreate(&e), "profile event");
      m.events.push_back(e), m.names.push_back(nullptr);
    }
    m.names[m.used] = name;
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(s, &st), "cudaStreamIsCapturing");
    check(cudaEventRecordWithFlags(m.events[m.used], s, st == cudaStreamCaptureStatusActive ? cudaEventRecordExternal : 0),
          "profile event record");
    ++m.used;
  }
  void end(cudaStream_t s) {
    mark("", s);
    current_ = nullptr;
  }
  // After the stream finished a pass that recorded into m; `kind` prefixes its ops' names.
  void collect(const Marks* m, const char* kind) {
    if (!m) return;
    ++passes_;
    for (size_t i = 0; i + 1 < m->used; ++i) {
      float ms = 0;
      check(cudaEventElapsedTime(&ms, m->events[i], m->events[i + 1]), "cudaEventElapsedTime");
      auto& [n, total] = totals_[std::string(kind) + m->names[i]];
      ++n, total += ms;
    }
  }

 private:
  void print() const {
    std::vector<std::pair<std::string, std::pair<int64_t, double>>> rows(totals_.begin(), totals_.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
    double all = 0;
    for (const auto& r : rows) all += r.second.second;
    std::fprintf(stderr, "cuda op profile: %lld passes, %.3f ms of device time\n%-28s %10s %12s %10s %7s\n", (long long)passes_, all,
                 "op", "calls", "total ms", "avg us", "share");
    for (const auto& [name, v] : rows)
      std::fprintf(stderr, "%-28s %10lld %12.3f %10.2f %6.1f%%\n", name.c_str(), (long long)v.first, v.second,
                   1e3 * v.second / double(v.first), 100 * v.second / all);
  }

  bool on_;
  std::vector<std::unique_ptr<Marks>> marks_;
  Marks* current_ = nullptr;
  int64_t passes_ = 0;
  std::map<std::string, std::pair<int64_t, double>> totals_;
};

// Decode batches up to this many tokens run their experts one routed slot per launch group
// (expert_of); larger batches group the slots by expert on the device so each expert's weights are
// read once per batch.
constexpr int64_t kSlotwiseMaxTokens = 8;
// Key splits of decode's attention (flash-decoding; prefill has enough (token, head) pairs): about
// this many keys per split, the split count rounded up to a power of two so a captured decode graph
// serves every position up to twice the one it was captured at.
constexpr int64_t kKeysPerSplit = 64;
int splits_for(int64_t keys) {
  int s = 1;
  while (s < cuda::kMaxSplits && int64_t(s) * kKeysPerSplit < keys) s *= 2;
  return s;
}
// Rows of logits computed per output-head pass.
constexpr int64_t kHeadRows = 64;

class CudaBackend final : public Backend {
 public:
  CudaBackend(const Model& model, int device) : model_(model), c_(model.config()) {
    select_device(device);
    check_types();
    weights_ = std::make_unique<DeviceWeights>(model);
    check(cudaStreamCreate(&stream_), "cudaStreamCreate");
    allocate_scratch();
  }
  ~CudaBackend() override {
    for (auto& [key, g] : graphs_) cudaGraphExecDestroy(g.first);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return "cuda"; }
  const Model& model() const override { return model_; }

  std::unique_ptr<KvStore> new_kv_store(int64_t full_blocks, int64_t sliding_blocks) override {
    if (full_blocks < 0 || sliding_blocks < 0) throw std::invalid_argument("negative KV block count");
    return std::make_unique<CudaKvStore>(c_, full_blocks, sliding_blocks);
  }
  // A store of no blocks allocates nothing: its block size is the one every store has (MTP slots too).
  size_t kv_block_bytes(KvKind kind) const override { return CudaKvStore(c_, 0, 0).block_bytes(kind); }

  void forward(KvStore& store_base, std::span<const BatchRun> runs) override {
    auto& store = static_cast<CudaKvStore&>(store_base);
    splitter_.run(c_, store, runs, [&](std::span<const int32_t> tokens, std::span<const UbatchToken> meta) { ubatch(store, tokens, meta); });
  }

  void logits_from_hidden(const KvStore& store_base, const BlockTable& blocks, int64_t pos0, int64_t n, float* logits) override {
    const auto& store = static_cast<const CudaKvStore&>(store_base);
    for (int64_t g = 0; g < n; g += kHeadRows) {
      const int64_t rows = std::min(kHeadRows, n - g);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t p = pos0 + g + i;
        const int32_t b = block_of(blocks.full, p);
        if (b < 0 || b >= store.n_blocks(KvKind::Full)) throw std::logic_error("logits of a position whose block is not held");
        h_meta_.get()[i] = int32_t(int64_t(b) * kKvBlockTokens + p % kKvBlockTokens);
      }
      check(cudaMemcpyAsync(d_meta_.get(), h_meta_.get(), size_t(rows) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
            "upload");
      output_head(store.hidden(), d_meta_.get(), rows);
      download_logits(rows, [&](int64_t i) { return logits + (g + i) * c_.n_vocab; });
    }
  }

 private:
  void check_types() const {
    const ModelWeights& w = model_.weights();
    auto need = [&](Weight t, bool f32_only) {
      if (!t) return;
      if (f32_only ? t->type != TensorType::F32 : !cuda::matvec_supported(t->type))
        throw std::runtime_error("the cuda backend cannot run " + std::string(t->name) + " of type " +
                                 std::string(type_traits(t->type).name) +
                                 (f32_only ? " (norms, biases and rope factors must be f32)" : " (supported: f32, f16, bf16, q8_0, q4_K, q5_K, q6_K)"));
    };
    need(w.output_norm, true), need(w.output, false), need(w.rope_freqs, true);
    for (int il = 0; il < c_.n_layer; ++il) {
      const LayerWeights& l = w.layers[size_t(il)];
      for (Weight t : {l.attn_norm, l.attn_q_norm, l.attn_k_norm, l.ffn_norm, l.exp_probs_b}) need(t, true);
      for (Weight t : {l.attn_q, l.attn_k, l.attn_v, l.attn_output, l.attn_gate, l.ffn_gate, l.ffn_up, l.ffn_down, l.ffn_gate_inp,
                       l.ffn_gate_exps, l.ffn_up_exps, l.ffn_down_exps, l.ffn_gate_shexp, l.ffn_up_shexp, l.ffn_down_shexp})
        need(t, false);
    }
  }

  // Scratch for the largest micro-batch, allocated once (graphs hold these pointers).
  void allocate_scratch() {
    const int64_t T = kMaxUbatchTokens, E = c_.n_embd, K = std::max(1, c_.n_expert_used);
    int64_t qw = 0, kw = 0, vw = 0, heads = 0, ff = 0, ff_sh = 0;
    for (int il = 0; il < c_.n_layer; ++il) {
      const LayerConfig& L = c_.layers[size_t(il)];
      qw = std::max<int64_t>(qw, int64_t(L.n_head) * c_.head_dim);
      kw = std::max<int64_t>(kw, int64_t(L.n_head_kv) * c_.head_dim);
      vw = std::max<int64_t>(vw, int64_t(L.n_head) * c_.v_head_dim);
      heads = std::max<int64_t>(heads, L.n_head);
      ff = std::max<int64_t>(ff, L.n_ff);
    }
    ff_sh = std::max<int64_t>({ff, c_.n_ff_shexp, c_.n_ff_exp});
    x_.reset(size_t(T * E)), xn_.reset(size_t(T * E));
    q_.reset(size_t(T * qw)), k_.reset(size_t(T * kw)), v_.reset(size_t(T * vw)), att_.reset(size_t(T * vw));
    gate_.reset(size_t(T * heads));
    partial_.reset(std::max(cuda::attention_partial_floats(T, int(heads), c_.v_head_dim, 1),
                            cuda::attention_partial_floats(kSlotwiseMaxTokens * 2, int(heads), c_.v_head_dim, cuda::kMaxSplits)));
    const int64_t slots = T * K;
    router_.reset(size_t(T * std::max(1, c_.n_expert)));
    ids_.reset(size_t(slots)), weights_k_.reset(size_t(slots));
    expert_first_.reset(size_t(c_.n_expert + 1)), slot_token_.reset(size_t(slots)), entry_slot_.reset(size_t(slots));
    decode_slot_token_.reset(size_t(kSlotwiseMaxTokens * K));
    cuda::entry_tokens(kSlotwiseMaxTokens, int(K), decode_slot_token_.get(), stream_);
    const int64_t hid_rows = std::max(slots, T);
    hid_gate_.reset(size_t(hid_rows * ff_sh)), hid_up_.reset(size_t(hid_rows * ff_sh));
    expert_out_.reset(size_t(hid_rows * E)), shared_out_.reset(size_t(T * E));
    const int64_t widest = std::max<int64_t>({E, qw, vw, ff_sh});
    acts_.init(T, widest);
    hid_acts_.init(hid_rows, ff_sh);
    head_in_.reset(size_t(kHeadRows * E)), logits_.reset(size_t(kHeadRows * c_.n_vocab));
    h_logits_.reset(size_t(kHeadRows * c_.n_vocab));
    // Metadata: pos, two table offsets, hidden row, logit rows per token; then the block tables.
    meta_capacity_ = size_t(5 * T) + 2 * size_t(T) * size_t((c_.context_length > 0 ? c_.context_length : 1 << 20) / kKvBlockTokens + 1);
    meta_capacity_ = std::min<size_t>(meta_capacity_, size_t(8) << 20);
    d_meta_.reset(meta_capacity_), h_meta_.reset(meta_capacity_);
    h_x_.reset(size_t(T * E));
  }

  void ubatch(CudaKvStore& store, std::span<const int32_t> tokens, std::span<const UbatchToken> meta);
  void layers(CudaKvStore& store, int64_t T);
  void norm(Weight w, TensorType next, int64_t T);
  void attention(CudaKvStore& store, int il, int64_t T);
  void ffn(int il, int64_t T);
  void dense_ffn(Weight gate, Weight up, Weight down, float clamp, int64_t T, float* out, bool accumulate);
  void output_head(const float* hidden, const int32_t* rows, int64_t n);
  template <class Dst>
  void download_logits(int64_t n, Dst&& dst);
  cuda::Matvec mv(Weight w, std::pair<const uint8_t*, size_t> a, int64_t n_rows, float* y, bool accumulate = false) const {
    cuda::Matvec m;
    m.type = w->type, m.w = (*weights_)[w], m.w_row_bytes = w->row_bytes(), m.n_in = w->ne[0], m.n_out = w->dim(1);
    m.a = a.first, m.a_row_bytes = a.second, m.n_rows = n_rows, m.y = y, m.y_stride = m.n_out, m.accumulate = accumulate;
    return m;
  }

  const Model& model_;
  const ModelConfig& c_;
  std::unique_ptr<DeviceWeights> weights_;
  cudaStream_t stream_ = nullptr;
  UbatchSplitter splitter_;

  DeviceArray<float> x_, xn_, q_, k_, v_, att_, gate_, partial_, router_, weights_k_, hid_gate_, hid_up_, expert_out_,
      shared_out_, head_in_, logits_;
  DeviceArray<int32_t> ids_, expert_first_, slot_token_, entry_slot_, decode_slot_token_, d_meta_;
  DeviceActs acts_, hid_acts_;
  PinnedArray<int32_t> h_meta_;
  PinnedArray<float> h_x_, h_logits_;
  size_t meta_capacity_ = 0;
  int decode_splits_ = 1;  // attention key splits of a full-attention layer in this micro-batch
  // Device views into d_meta_ for the current micro-batch.
  const int32_t *pos_ = nullptr, *table_ = nullptr, *off_full_ = nullptr, *off_sliding_ = nullptr, *hidden_row_ = nullptr,
                *logit_rows_ = nullptr;
  // Captured decode steps by (tokens, rows wanting logits, store serial, attention splits).
  std::map<std::tuple<int64_t, int64_t, uint64_t, int>, std::pair<cudaGraphExec_t, OpProfile::Marks*>> graphs_;
  OpProfile profile_;
  OpProfile::Marks* eager_marks_ = nullptr;
};

void CudaBackend::ubatch(CudaKvStore& store, std::span<const int32_t> tokens, std::span<const UbatchToken> meta) {
  const int64_t T = int64_t(tokens.size()), E = c_.n_embd;
  // Embedding rows are dequantized on the host from the mapped file (the table never goes to the
  // device: a row per token is all a step reads of it).
  for (int64_t t = 0; t < T; ++t) cpu::embed_row(model_.weights().token_embd, tokens[size_t(t)], h_x_.get() + t * E);

  // Metadata layout in h_meta_: pos[T] off_full[T] off_sliding[T] hidden_row[T] logit_rows[T] tables...
  int32_t* h = h_meta_.get();
  size_t used = size_t(5 * T);
  std::vector<const BlockTable*> seen;
  std::vector<std::pair<int32_t, int32_t>> offs;
  int64_t n_logits = 0;
  for (int64_t t = 0; t < T; ++t) {
    const UbatchToken& m = meta[size_t(t)];
    size_t which = size_t(std::find(seen.begin(), seen.end(), m.blocks) - seen.begin());
    if (which == seen.size()) {
      const size_t need = m.blocks->full.size() + m.blocks->sliding.size();
      if (used + need > meta_capacity_) throw std::length_error("the cuda backend's block-table buffer is too small for this batch");
      offs.push_back({int32_t(used), int32_t(used + m.blocks->full.size())});
      std::copy(m.blocks->full.begin(), m.blocks->full.end(), h + used);
      std::copy(m.blocks->sliding.begin(), m.blocks->sliding.end(), h + used + m.blocks->full.size());
      used += need;
      seen.push_back(m.blocks);
    }
    h[t] = int32_t(m.pos);
    h[T + t] = offs[which].first;
    h[2 * T + t] = offs[which].second;
    h[3 * T + t] = int32_t(int64_t(block_of(m.blocks->full, m.pos)) * kKvBlockTokens + m.pos % kKvBlockTokens);
    if (m.logits) h[4 * T + n_logits++] = int32_t(t);
  }
  int64_t max_pos = 0;
  for (const UbatchToken& m : meta) max_pos = std::max(max_pos, m.pos);
  decode_splits_ = splits_for(max_pos + 1);
  check(cudaMemcpyAsync(d_meta_.get(), h, used * sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "metadata upload");
  check(cudaMemcpyAsync(x_.get(), h_x_.get(), size_t(T * E) * sizeof(float), cudaMemcpyHostToDevice, stream_), "embedding upload");
  const int32_t* d = d_meta_.get();
  pos_ = d, off_full_ = d + T, off_sliding_ = d + 2 * T, hidden_row_ = d + 3 * T, logit_rows_ = d + 4 * T, table_ = d;

  // A decode step (few tokens) replays a graph captured the first time its shape was seen: kernel
  // arguments are device pointers fixed at construction, so only the uploads above change.
  if (T <= kSlotwiseMaxTokens) {
    const auto key = std::make_tuple(T, n_logits, store.serial(), decode_splits_);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      cudaGraph_t graph = nullptr;
      check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      OpProfile::Marks* marks = nullptr;
      try {
        marks = profile_.begin();
        layers(store, T);
        profile_.mark("head", stream_);
        output_head(x_.get(), logit_rows_, n_logits);
        if (marks) profile_.end(stream_);
      } catch (...) {
        cudaStreamEndCapture(stream_, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
      cudaGraphExec_t exec = nullptr;
      const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      check(e, "cudaGraphInstantiate");
      it = graphs_.emplace(key, std::make_pair(exec, marks)).first;
    }
    check(cudaGraphLaunch(it->second.first, stream_), "cudaGraphLaunch");
    download_logits(n_logits, [&](int64_t i) { return meta[size_t(h[4 * T + i])].logits; });
    profile_.collect(it->second.second, "decode ");
    return;
  }
  OpProfile::Marks* marks = profile_.begin(eager_marks_);
  if (marks) eager_marks_ = marks;
  layers(store, T);
  if (marks) profile_.end(stream_);
  if (n_logits == 0 || marks) check(cudaStreamSynchronize(stream_), "forward");
  profile_.collect(marks, "batch ");
  for (int64_t g = 0; g < n_logits; g += kHeadRows) {
    const int64_t rows = std::min(kHeadRows, n_logits - g);
    output_head(x_.get(), logit_rows_ + g, rows);
    download_logits(rows, [&](int64_t i) { return meta[size_t(h[4 * T + g + i])].logits; });
  }
}

void CudaBackend::layers(CudaKvStore& store, int64_t T) {
  const ModelWeights& w = model_.weights();
  const int64_t E = c_.n_embd;
  for (int il = 0; il < c_.n_layer; ++il) {
    const LayerWeights& lw = w.layers[size_t(il)];
    profile_.mark("attn_norm", stream_);
    norm(lw.attn_norm, lw.attn_q->type, T);
    attention(store, il, T);
    profile_.mark("ffn_norm", stream_);
    norm(lw.ffn_norm, c_.layers[size_t(il)].moe ? lw.ffn_gate_exps->type : lw.ffn_gate->type, T);
    ffn(il, T);
  }
  profile_.mark("hidden_store", stream_);
  cuda::scatter_rows(x_.get(), T, E, hidden_row_, store.hidden(), stream_);
}

// RMSNorm of the trunk into xn_, converted in the same kernel for `next`, the type of the first
// quantized matrix that reads it (the others of that type reuse it; other types convert on demand).
void CudaBackend::norm(Weight w, TensorType next, int64_t T) {
  acts_.reset(xn_.get(), T, c_.n_embd);
  cuda::rms_norm_rows(x_.get(), nullptr, weights_->f32(w), xn_.get(), T, c_.n_embd, c_.rms_eps, stream_,
                      cpu::activation_type(next), acts_.claim(next));
}

void CudaBackend::attention(CudaKvStore& store, int il, int64_t T) {
  const LayerConfig& L = c_.layers[size_t(il)];
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  profile_.mark("qkv", stream_);
  const cuda::Matvec qkvg[4] = {mv(lw.attn_q, acts_.get(lw.attn_q->type, stream_), T, q_.get()),
                                mv(lw.attn_k, acts_.get(lw.attn_k->type, stream_), T, k_.get()),
                                mv(lw.attn_v, acts_.get(lw.attn_v->type, stream_), T, v_.get()),
                                L.attn_gate ? mv(lw.attn_gate, acts_.get(lw.attn_gate->type, stream_), T, gate_.get()) : cuda::Matvec{}};
  cuda::matvec(qkvg, L.attn_gate ? 4 : 3, stream_);

  const cuda::TokenKv kv{pos_, table_, L.sliding ? off_sliding_ : off_full_};
  cuda::QkStore qs;
  qs.q = q_.get(), qs.k = k_.get(), qs.v = v_.get();
  qs.q_norm = weights_->f32(lw.attn_q_norm), qs.k_norm = weights_->f32(lw.attn_k_norm), qs.eps = c_.rms_eps;
  qs.n_tok = T, qs.n_head = L.n_head, qs.n_head_kv = L.n_head_kv, qs.head_dim = c_.head_dim, qs.v_head_dim = c_.v_head_dim;
  const RopeConfig& r = L.rope;
  qs.rope.n_rot = r.n_rot;
  qs.rope.theta_scale = std::pow(r.freq_base, -2.f / float(r.n_rot));
  qs.rope.freq_scale = r.freq_scale, qs.rope.ext_factor = r.ext_factor;
  qs.rope.mscale = r.ext_factor != 0.f ? r.attn_factor * (1.f + 0.1f * std::log(1.f / r.freq_scale)) : r.attn_factor;
  if (r.ext_factor != 0.f) {
    float corr[2];
    cpu::yarn_corr_dims(r, corr);
    qs.rope.corr0 = corr[0], qs.rope.corr1 = corr[1];
  }
  qs.rope.freq_factors = r.use_freq_factors ? weights_->f32(model_.weights().rope_freqs) : nullptr;
  qs.kv = kv, qs.k_cache = store.k_base(il), qs.v_cache = store.v_base(il);
  profile_.mark("qk_rope_store", stream_);
  cuda::qk_norm_rope_store(qs, stream_);

  cuda::Attention a;
  a.q = q_.get(), a.k_cache = store.k_base(il), a.v_cache = store.v_base(il), a.kv = kv, a.n_tok = T;
  a.n_head = L.n_head, a.n_head_kv = L.n_head_kv, a.head_dim = c_.head_dim, a.v_head_dim = c_.v_head_dim;
  a.window = L.sliding ? c_.sliding_window : 0;
  a.gate = L.attn_gate ? gate_.get() : nullptr;
  a.out = att_.get(), a.partial = partial_.get();
  a.n_split = T <= kSlotwiseMaxTokens * 2
                  ? std::min(decode_splits_, L.sliding ? splits_for(c_.sliding_window) : cuda::kMaxSplits)
                  : 1;
  profile_.mark("attention", stream_);
  cuda::attention(a, stream_);
  profile_.mark("attn_output", stream_);

  acts_.reset(att_.get(), T, int64_t(L.n_head) * c_.v_head_dim);
  cuda::matvec(mv(lw.attn_output, acts_.get(lw.attn_output->type, stream_), T, x_.get(), /*accumulate=*/true), stream_);
}

// SwiGLU MLP over all T rows of xn (acts_ holds them): out (+)= down(act(gate) * up).
void CudaBackend::dense_ffn(Weight gate, Weight up, Weight down, float clamp, int64_t T, float* out, bool accumulate) {
  const cuda::Matvec gate_up[2] = {mv(gate, acts_.get(gate->type, stream_), T, hid_gate_.get()),
                                   mv(up, acts_.get(up->type, stream_), T, hid_up_.get())};
  cuda::matvec(gate_up, 2, stream_);
  const int64_t F = gate->dim(1);
  hid_acts_.reset(hid_gate_.get(), T, F);
  cuda::swiglu(hid_gate_.get(), hid_up_.get(), T, F, clamp, stream_, cpu::activation_type(down->type), hid_acts_.claim(down->type));
  cuda::matvec(mv(down, hid_acts_.get(down->type, stream_), T, out, accumulate), stream_);
}

void CudaBackend::ffn(int il, int64_t T) {
  const LayerConfig& L = c_.layers[size_t(il)];
  const LayerWeights& lw = model_.weights().layers[size_t(il)];
  const int64_t E = c_.n_embd;
  profile_.mark(L.moe ? "router" : "dense_ffn", stream_);
  if (!L.moe) return dense_ffn(lw.ffn_gate, lw.ffn_up, lw.ffn_down, L.clamp_shexp, T, x_.get(), true);

  const int X = c_.n_expert, K = c_.n_expert_used;
  const int64_t slots = T * K, F = lw.ffn_gate_exps->dim(1);
  cuda::matvec(mv(lw.ffn_gate_inp, acts_.get(lw.ffn_gate_inp->type, stream_), T, router_.get()), stream_);
  cuda::Route rt;
  rt.logits = router_.get(), rt.n_tok = T, rt.n_expert = X, rt.k = K, rt.softmax = c_.router == RouterKind::Softmax;
  rt.bias = weights_->f32(lw.exp_probs_b), rt.renorm = c_.router_renorm, rt.scale = c_.expert_weights_scale;
  rt.ids = ids_.get(), rt.weights = weights_k_.get();
  profile_.mark("route", stream_);
  cuda::route(rt, stream_);

  // Which activation rows each launch group meets, and which expert's slab: one routed slot per group
  // in decode (expert ids straight from the router), every expert's slots together otherwise.
  const bool slotwise = T <= kSlotwiseMaxTokens;
  // The token of each slot: t for entry t*K+j in decode (constant, filled at construction), the
  // expert-sorted order otherwise.
  const int32_t* slot_token = slotwise ? decode_slot_token_.get() : slot_token_.get();
  if (!slotwise) cuda::group_by_expert(ids_.get(), T, K, X, expert_first_.get(), slot_token_.get(), entry_slot_.get(), stream_);
  auto experts = [&](Weight wt, std::pair<const uint8_t*, size_t> a, const int32_t* a_row_of, float* y) {
    cuda::Matvec m = mv(wt, a, slots, y);
    m.expert_bytes = size_t(m.n_out) * m.w_row_bytes, m.a_row_of = a_row_of;
    if (slotwise) {
      m.expert_of = ids_.get(), m.n_z = int(slots), m.max_rows_per_z = 1;
    } else {
      m.z_first = expert_first_.get(), m.n_z = X, m.max_rows_per_z = T;
    }
    return m;
  };
  // Gate and up read each slot's token row of the layer input; down reads the slots' own hidden rows.
  profile_.mark("expert_gate_up", stream_);
  const cuda::Matvec gate_up[2] = {
      experts(lw.ffn_gate_exps, acts_.get(lw.ffn_gate_exps->type, stream_), slot_token, hid_gate_.get()),
      experts(lw.ffn_up_exps, acts_.get(lw.ffn_up_exps->type, stream_), slot_token, hid_up_.get())};
  cuda::matvec(gate_up, 2, stream_);
  hid_acts_.reset(hid_gate_.get(), slots, F);
  profile_.mark("expert_swiglu", stream_);
  cuda::swiglu(hid_gate_.get(), hid_up_.get(), slots, F, L.clamp_exp, stream_, cpu::activation_type(lw.ffn_down_exps->type),
               hid_acts_.claim(lw.ffn_down_exps->type));
  profile_.mark("expert_down", stream_);
  cuda::matvec(experts(lw.ffn_down_exps, hid_acts_.get(lw.ffn_down_exps->type, stream_), nullptr, expert_out_.get()), stream_);

  profile_.mark("shared_expert", stream_);
  if (L.shared_expert) dense_ffn(lw.ffn_gate_shexp, lw.ffn_up_shexp, lw.ffn_down_shexp, L.clamp_shexp, T, shared_out_.get(), false);
  profile_.mark("moe_combine", stream_);
  cuda::moe_combine(expert_out_.get(), ids_.get(), weights_k_.get(), slotwise ? nullptr : entry_slot_.get(),
                    L.shared_expert ? shared_out_.get() : nullptr, T, K, E, x_.get(), stream_);
}

// Final norm and output projection of n hidden rows (rows[i] of `hidden`) into logits_.
void CudaBackend::output_head(const float* hidden, const int32_t* rows, int64_t n) {
  if (n == 0) return;
  const ModelWeights& w = model_.weights();
  acts_.reset(head_in_.get(), n, c_.n_embd);
  cuda::rms_norm_rows(hidden, rows, weights_->f32(w.output_norm), head_in_.get(), n, c_.n_embd, c_.rms_eps, stream_,
                      cpu::activation_type(w.output->type), acts_.claim(w.output->type));
  cuda::matvec(mv(w.output, acts_.get(w.output->type, stream_), n, logits_.get()), stream_);
}

// Copies n rows of logits_ to the host and then to dst(i); waits for the stream.
template <class Dst>
void CudaBackend::download_logits(int64_t n, Dst&& dst) {
  const size_t row = size_t(c_.n_vocab);
  if (n > 0)
    check(cudaMemcpyAsync(h_logits_.get(), logits_.get(), size_t(n) * row * sizeof(float), cudaMemcpyDeviceToHost, stream_),
          "logits download");
  check(cudaStreamSynchronize(stream_), "forward");
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst(i), h_logits_.get() + size_t(i) * row, row * sizeof(float));
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const Model& model, int device) {
  return std::make_unique<CudaBackend>(model, device);
}

CudaDeviceReport cuda_device_report(int device) {
  select_device(device);
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  CudaDeviceReport r;
  r.name = prop.name;
  r.memory_bytes = prop.totalGlobalMem;
  // Far larger than the L2 cache (50-60 MB on Hopper), small enough for any GPU.
  r.copy_gbs = cuda::copy_bandwidth_gbs(size_t(1) << 30);
  return r;
}

std::string cuda_unavailable_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  if (n == 0) return "no CUDA device";
  return "";
}

}  // namespace flashfix
