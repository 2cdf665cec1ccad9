// Weight matrices repacked once at load into the active kernel path's GEMM layout (cpu_kernels.h
// GemmKernel), for every type whose packed row group holds exactly its rows' bytes (Q4_K).
//
// Why: decode reads every active weight once per token, so its speed is how fast the cores stream
// weights from DRAM. In the file's layout a 16-row group is read block by block across its rows:
// 16 interleaved streams that the hardware prefetchers do not follow, and software prefetch
// recovers only part of it (one core: ~15 GB/s where a plain read gets ~23). A packed group is read
// front to back, which the prefetchers stream at the plain-read rate; and it is the GEMM's own input,
// so prefill no longer repacks per call and a verify pass of a few tokens runs the register-blocked
// GEMM tile instead of a kernel whose per-token work grows faster.
//
// Memory: the copy replaces the file's pages, not adds to them: each matrix's pages are dropped from
// this process's mapping once it is packed (GgufFile::drop_pages; the page cache keeps them,
// reclaimable), so resident memory stays about one model. A model that must stay paged from disk
// (larger than memory) should be run with repacking off (EngineOptions::repack_weights).
//
// The copy belongs to the kernel path that made it: after a switch (tests, select_cpu_path) the
// other paths read the file's layout, which is still mapped.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "engine/cpu_kernels.h"
#include "engine/huge_page_buffer.h"
#include "engine/model.h"
#include "engine/thread_pool.h"

namespace flashfix::cpu {

class PackedWeights {
 public:
  PackedWeights() = default;  // nothing packed
  // Packs every matrix the forward pass multiplies by whose type qualifies on the active path.
  PackedWeights(const Model& model, ThreadPool& pool);
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  // Slab e (0 for a 2-D tensor, the expert for a stacked one) of t as consecutive packed row groups
  // (group g at + g * packed_bytes(n_in)); null when t is not packed or another path is active.
  const uint8_t* slab(Weight t, int64_t e) const;
  uint64_t bytes() const { return mem_.size(); }
  int64_t matrices() const { return int64_t(slabs_.size()); }

 private:
  struct Slabs {
    size_t offset;      // of slab 0 in mem_
    size_t slab_bytes;  // one slab's packed groups
  };
  CpuPath path_ = CpuPath::Scalar;
  std::unordered_map<Weight, Slabs> slabs_;
  HugePageBuffer mem_;
};

}  // namespace flashfix::cpu
