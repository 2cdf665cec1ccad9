// A fixed-capacity FIFO of ints; pushing onto a full buffer drops the oldest value.
#pragma once
#include <cstddef>
#include <optional>
#include <vector>

class RingBuffer {
 public:
  explicit RingBuffer(std::size_t capacity);

  void push(int value);
  std::optional<int> pop();  // the oldest value, or nothing when empty
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }

 private:
  std::vector<int> slots_;
  std::size_t head_ = 0;  // index of the oldest value
  std::size_t size_ = 0;
};
