// Anonymous memory asked for in huge pages (transparent huge pages, madvise mode): what large
// streamed buffers live in, so a stream is not slowed by a TLB miss every 4 KB. The packed weights
// (cpu_packed_weights.h) and `bench --membw`, whose figure is the limit decode is measured against,
// both use it, so they read the same kind of memory. Huge pages are a hint; the buffer works without.
// The buffer is written right after it is made, so it is refused up front when the machine (or the
// process's cgroup) cannot hold it: with overcommit the mmap would succeed and the writes would end
// in the OOM killer instead of an error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace flashfix {

class HugePageBuffer {
 public:
  HugePageBuffer() = default;
  // Throws std::runtime_error "cannot allocate N MiB for <what>: <reason>" when more than
  // available_memory_bytes() is asked for or the kernel refuses.
  HugePageBuffer(size_t bytes, const std::string& what);
  ~HugePageBuffer();
  HugePageBuffer(HugePageBuffer&& other) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& other) noexcept;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Memory a new anonymous buffer can take without pushing out anything but caches: the kernel's
// MemAvailable, capped by the process's cgroup limit (v1 or v2) less the cgroup's anonymous memory.
// UINT64_MAX when neither can be read.
uint64_t available_memory_bytes();

}  // namespace flashfix
