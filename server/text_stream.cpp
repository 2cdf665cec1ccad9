#include "server/text_stream.h"

#include <algorithm>
#include <utility>

#include "agent/utf8.h"

namespace flashfix::server {
namespace {

// Length of the longest suffix of s that is a proper prefix of some stop string.
size_t partial_stop_tail(std::string_view s, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const auto& stop : stops)
    for (size_t len = std::min(s.size(), stop.size() - 1); len > best; --len)
      if (s.substr(s.size() - len) == std::string_view(stop).substr(0, len)) {
        best = len;
        break;
      }
  return best;
}

}  // namespace

std::string TextStream::push(std::string_view piece) {
  if (stopped_) return {};
  pending_ += piece;
  // The earliest stop string wins; the search covers held-back text, as a stop may span pieces.
  size_t cut = std::string::npos;
  for (const auto& stop : stops_) cut = std::min(cut, pending_.find(stop));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  const size_t hold = std::max(partial_stop_tail(pending_, stops_), agent::incomplete_utf8_tail(pending_));
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string TextStream::finish() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

}  // namespace flashfix::server
