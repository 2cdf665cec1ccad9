#include "ring_buffer.h"

#include <stdexcept>

RingBuffer::RingBuffer(std::size_t capacity) : slots_(capacity) {
  if (capacity == 0) throw std::invalid_argument("capacity must be positive");
}

void RingBuffer::push(int value) {
  std::size_t tail = (head_ + size_) % slots_.size();
  slots_[tail] = value;
  if (size_ < slots_.size()) {
    ++size_;
  }
}

std::optional<int> RingBuffer::pop() {
  if (size_ == 0) return std::nullopt;
  int value = slots_[head_];
  head_ = (head_ + 1) % slots_.size();
  --size_;
  return value;
}
