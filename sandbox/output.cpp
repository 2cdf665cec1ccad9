#include "sandbox/output.h"

#include <algorithm>

namespace flashfix::sandbox {

void OutputCapture::append(std::string_view bytes) {
  total_ += bytes.size();
  std::size_t to_head = std::min(bytes.size(), head_cap_ - head_.size());
  head_.append(bytes.substr(0, to_head));
  bytes.remove_prefix(to_head);
  if (bytes.empty() || tail_cap_ == 0) return;
  if (bytes.size() >= tail_cap_) {  // the chunk alone fills the tail
    tail_.assign(bytes.substr(bytes.size() - tail_cap_));
    tail_pos_ = 0;
    return;
  }
  if (tail_.size() < tail_cap_) {
    std::size_t room = tail_cap_ - tail_.size();
    tail_.append(bytes.substr(0, room));
    bytes.remove_prefix(std::min(room, bytes.size()));
  }
  while (!bytes.empty()) {  // ring: overwrite the oldest bytes
    std::size_t n = std::min(bytes.size(), tail_cap_ - tail_pos_);
    tail_.replace(tail_pos_, n, bytes.substr(0, n));
    tail_pos_ = (tail_pos_ + n) % tail_cap_;
    bytes.remove_prefix(n);
  }
}

Output OutputCapture::finish() const {
  Output out;
  out.total = total_;
  out.cut = total_ - head_.size() - tail_.size();
  out.data = head_;
  if (out.cut) out.data += "\n[flashfix sandbox: " + std::to_string(out.cut) + " bytes cut]\n";
  out.data.append(tail_, tail_pos_, std::string::npos);
  out.data.append(tail_, 0, tail_pos_);
  return out;
}

}  // namespace flashfix::sandbox
