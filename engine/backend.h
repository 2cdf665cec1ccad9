// The seam between the model description and the hardware that runs it.
//
// A Backend owns everything device-specific (weights in device memory, KV storage, kernels); the
// model description (Model, ModelConfig), tokenizer, sampler and the drivers above are shared. The
// CPU backend is the reference every other backend is compared against.
//
// KV lives in paged blocks of kKvBlockTokens positions held by a KvStore, one pool per layer kind:
// a Full block holds K and V of every full-attention layer (and the trunk's final hidden state, from
// which the logits of a cached position can be recomputed, and K and V of every MTP head, whatever
// its window: chained heads read several windows back), a Sliding block those of every
// sliding-window layer of the trunk. Which physical blocks a sequence's positions live in is its BlockTable; the
// engine owns the tables (sharing, prefix cache, eviction), the backend only reads and writes rows.
// One forward call runs a batch of token runs from any number of sequences: dense matmuls and the
// MoE experts see all their tokens together, attention reads each token's own sequence's blocks.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model.h"

namespace flashfix {

constexpr int64_t kKvBlockTokens = 16;

enum class KvKind { Full = 0, Sliding = 1 };

// Device storage for KV blocks. Block contents travel as opaque bytes (block_bytes long) so the
// engine can copy them and persist them without knowing the layout.
class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual int64_t n_blocks(KvKind kind) const = 0;
  virtual size_t block_bytes(KvKind kind) const = 0;
  // Copies the first n_positions rows of block src into dst (copy-on-write of a shared partial block).
  virtual void copy_block(KvKind kind, int32_t src, int32_t dst, int64_t n_positions) = 0;
  virtual void read_block(KvKind kind, int32_t block, std::span<uint8_t> out) const = 0;
  virtual void write_block(KvKind kind, int32_t block, std::span<const uint8_t> in) = 0;
};

// Physical block of each logical block (position / kKvBlockTokens) of one sequence; -1: not held
// (sliding-window blocks behind the window are released).
struct BlockTable {
  std::vector<int32_t> full, sliding;
};

// One sequence's run of consecutive tokens in a batch.
struct BatchRun {
  const BlockTable* blocks = nullptr;
  int64_t pos0 = 0;                  // position of tokens[0]; earlier positions are in the blocks
  std::span<const int32_t> tokens;
  int64_t logits_from = 0;           // rows [logits_from, tokens.size()) get logits; tokens.size(): none
  float* logits = nullptr;           // [(tokens.size() - logits_from) x n_vocab]
};

enum class Logits { Last, All };

// One sequence's request for drafts from the model's MTP (nextn) heads. Head k (1-based) runs on
// the token at position s and head k-1's output hidden state at s - 1 (head 0: the trunk's, pre
// output-norm), and predicts the token at s + 1; its K/V row lives at position s of the sequence's
// Full blocks, so a row at a position below tokens.size() depends only on accepted tokens. One call
// recomputes head 1 at positions [from, c], head k at [from + k - 1, c + k - 1] (c = tokens.size()
// - 1, the newest token, whose trunk row is not computed yet), chaining each head's draft into the
// next: drafts[k-1] is head k's greedy token for position c + k. Rows of head k below from + k - 1
// must be up to date (written by an earlier call over the same tokens); rows at positions >= c hold
// drafted tokens and are rewritten by the next call. The trunk's hidden states of [from - 1, c - 1]
// must be in the blocks, and the table must hold positions [0, c + n_heads).
struct MtpRun {
  const BlockTable* blocks = nullptr;
  std::span<const int32_t> tokens;  // tokens[p] sits at position p
  int64_t from = 1;                 // >= 1: head 1 has no input before position 1
  int n_heads = 0;                  // 1 .. mtp_heads()
  int32_t* drafts = nullptr;        // [n_heads]
  float* logits = nullptr;          // optional [n_heads x n_vocab]: each head's logits at its last row
};

class Sequence;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual const Model& model() const = 0;
  // Weight bytes every forward and MTP draft so far has read, counting the experts its tokens
  // actually selected (a verify pass of k+1 tokens reads more experts than one step: the price
  // speculation pays); 0 from a backend that does not count them.
  virtual uint64_t weight_bytes_read() const { return 0; }

  virtual std::unique_ptr<KvStore> new_kv_store(int64_t full_blocks, int64_t sliding_blocks) = 0;
  // Bytes of one block of each kind (what a memory budget buys).
  virtual size_t kv_block_bytes(KvKind kind) const = 0;

  // Runs every run's tokens through the trunk, writing their K/V (and hidden state) into the blocks
  // the tables name, and writes the requested logits. The tables must hold every position a token
  // writes or attends to. Throws std::out_of_range for a token outside the vocabulary before any work.
  virtual void forward(KvStore& store, std::span<const BatchRun> runs) = 0;

  // Logits of positions [pos0, pos0 + n) of a sequence from the hidden states stored in its Full
  // blocks (positions computed earlier, e.g. restored from the prefix cache): [n x n_vocab].
  virtual void logits_from_hidden(const KvStore& store, const BlockTable& blocks, int64_t pos0, int64_t n,
                                  float* logits) = 0;

  // MTP heads the backend can run (0: the model has none, or the backend cannot run them).
  virtual int mtp_heads() const { return 0; }
  // Runs the MTP heads for every run (rows of all runs batched per head) and writes their drafts.
  // Throws std::invalid_argument for a malformed run, std::out_of_range for a token outside the
  // vocabulary, before any work.
  virtual void mtp_draft(KvStore& store, std::span<const MtpRun> runs);

  // A standalone sequence with its own store for n_ctx positions (tests, tools): the same batched
  // path with one run. Sliding-window layers reuse a ring of blocks.
  std::unique_ptr<Sequence> new_sequence(int64_t n_ctx);

  // Runs `tokens` at positions seq.n_past() onward, extending the sequence, and writes float logits:
  // [tokens.size() x n_vocab] for Logits::All, [n_vocab] for Logits::Last. Throws std::length_error
  // (and leaves the sequence unchanged) if the tokens do not fit n_ctx.
  void forward(Sequence& seq, std::span<const int32_t> tokens, Logits which, float* logits);
};

class Sequence {
 public:
  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }

 private:
  friend class Backend;
  Sequence(std::unique_ptr<KvStore> store, BlockTable blocks, int64_t n_ctx)
      : store_(std::move(store)), blocks_(std::move(blocks)), n_ctx_(n_ctx) {}
  std::unique_ptr<KvStore> store_;
  BlockTable blocks_;
  int64_t n_past_ = 0;
  int64_t n_ctx_;
};

// Positions a micro-batch may span: the backend splits larger batches. A sliding-window sequence
// needs blocks for window + this many positions at once.
constexpr int64_t kMaxUbatchTokens = 512;

// Shared by the backends' forward: every run checked (malformed runs, tokens outside the
// vocabulary, positions whose KV block is not held: the errors forward documents), then the runs
// cut into micro-batches of at most kMaxUbatchTokens tokens, a run possibly across two.
struct UbatchToken {
  const BlockTable* blocks;
  int64_t pos;
  float* logits;  // where this token's logits go; null: none
};
class UbatchSplitter {
 public:
  template <class Fn>  // fn(std::span<const int32_t> tokens, std::span<const UbatchToken> meta)
  void run(const ModelConfig& c, const KvStore& store, std::span<const BatchRun> runs, Fn&& fn) {
    for (const BatchRun& r : runs) check_run(c, store, r);
    tokens_.clear(), meta_.clear();
    for (const BatchRun& r : runs)
      for (int64_t i = 0; i < int64_t(r.tokens.size()); ++i) {
        tokens_.push_back(r.tokens[size_t(i)]);
        meta_.push_back({r.blocks, r.pos0 + i, i >= r.logits_from ? r.logits + (i - r.logits_from) * c.n_vocab : nullptr});
        if (int64_t(tokens_.size()) == kMaxUbatchTokens) fn(std::span<const int32_t>(tokens_), std::span<const UbatchToken>(meta_)), tokens_.clear(), meta_.clear();
      }
    if (!tokens_.empty()) fn(std::span<const int32_t>(tokens_), std::span<const UbatchToken>(meta_));
  }
  static void check_run(const ModelConfig& c, const KvStore& store, const BatchRun& r);

 private:
  std::vector<int32_t> tokens_;
  std::vector<UbatchToken> meta_;
};

// Physical block holding position pos in a table; -1 when not held.
inline int32_t block_of(const std::vector<int32_t>& table, int64_t pos) {
  const auto i = size_t(pos / kKvBlockTokens);
  return i < table.size() ? table[i] : -1;
}

// The reference CPU backend; n_threads <= 0 uses every core. repack_weights: matrices whose GEMM
// layout costs no extra bytes are packed into it at load (cpu_packed_weights.h); false keeps every
// weight in the mapped file only (a model that must stay paged from disk).
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int n_threads, bool repack_weights = true);

// The backend called `name`: "cpu", or "cuda" (engine/cuda, built when nvcc was found; n_threads is
// then unused). Throws std::invalid_argument for an unknown name and std::runtime_error naming why a
// known backend cannot run here (built without CUDA, no CUDA device): never a silent fallback.
std::unique_ptr<Backend> make_backend(const Model& model, std::string_view name, int n_threads, bool repack_weights = true);
// Whether this build contains the CUDA backend.
bool cuda_backend_built();

struct CudaDeviceReport {
  std::string name;
  size_t memory_bytes = 0;
  double copy_gbs = 0;  // measured device-to-device copy bandwidth, bytes read + written per second
};
// CUDA device `device`'s name, memory and copy bandwidth (decode's ceiling). Throws
// std::runtime_error as make_backend("cuda") does where the build or the machine has none.
CudaDeviceReport cuda_device_report(int device = 0);

}  // namespace flashfix
