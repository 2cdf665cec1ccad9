// Keeps the head and the tail of a stream within a byte budget, so a flood costs bounded memory
// and the reader still sees how it started and how it ended. Bytes are kept verbatim (binary safe).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "sandbox/sandbox.h"

namespace flashfix::sandbox {

class OutputCapture {
 public:
  explicit OutputCapture(std::size_t keep) : head_cap_(keep - keep / 2), tail_cap_(keep / 2) {}
  void append(std::string_view bytes);
  std::uint64_t total() const { return total_; }
  Output finish() const;

 private:
  std::size_t head_cap_, tail_cap_;
  std::string head_;
  std::string tail_;       // ring buffer of the last tail_cap_ bytes once full
  std::size_t tail_pos_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace flashfix::sandbox
