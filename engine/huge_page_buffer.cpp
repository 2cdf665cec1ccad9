#include "engine/huge_page_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <utility>

namespace flashfix {
namespace {

constexpr uint64_t kUnknown = std::numeric_limits<uint64_t>::max();

// The value after `key` in a "key value [unit]" file (meminfo, memory.stat), times `unit`.
uint64_t keyed_value(const std::string& path, const std::string& key, uint64_t unit) {
  std::ifstream in(path);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v * unit;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return kUnknown;
}

// A file holding one number ("max", v2's no limit, reads as unknown).
uint64_t single_value(const std::string& path) {
  std::ifstream in(path);
  uint64_t v;
  return in >> v ? v : kUnknown;
}

// The cgroup's limit less its anonymous memory (page cache is reclaimed before the limit bites).
uint64_t cgroup_headroom() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    uint64_t limit = kUnknown, anon = kUnknown;
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      const std::string dir = "/sys/fs/cgroup" + path;
      limit = single_value(dir + "/memory.max"), anon = keyed_value(dir + "/memory.stat", "anon", 1);
    } else if (controllers == "memory") {
      const std::string dir = "/sys/fs/cgroup/memory" + path;
      limit = single_value(dir + "/memory.limit_in_bytes"), anon = keyed_value(dir + "/memory.stat", "total_rss", 1);
    }
    if (limit != kUnknown && anon != kUnknown && limit < (uint64_t(1) << 60)) return limit > anon ? limit - anon : 0;
  }
  return kUnknown;
}

}  // namespace

uint64_t available_memory_bytes() {
  return std::min(keyed_value("/proc/meminfo", "MemAvailable:", 1024), cgroup_headroom());
}

HugePageBuffer::HugePageBuffer(size_t bytes, const std::string& what) : size_(bytes) {
  if (bytes == 0) return;
  if (const uint64_t available = available_memory_bytes(); bytes > available)
    throw std::runtime_error("cannot allocate " + std::to_string(bytes >> 20) + " MiB for " + what + ": only " +
                             std::to_string(available >> 20) + " MiB of memory are available");
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("cannot allocate " + std::to_string(bytes >> 20) + " MiB for " + what + ": " + std::strerror(errno));
  data_ = static_cast<uint8_t*>(p);
  madvise(data_, bytes, MADV_HUGEPAGE);
}

HugePageBuffer::~HugePageBuffer() {
  if (data_) munmap(data_, size_);
}

HugePageBuffer::HugePageBuffer(HugePageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(size_, other.size_);
  return *this;
}

}  // namespace flashfix
