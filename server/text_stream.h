// Generated token pieces → text a client may be sent: whole UTF-8 characters only (a character can
// span tokens), and nothing past a stop string. Text that could still become a stop string is held
// back until the next piece decides it, so a streamed response never shows part of a stop sequence.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace flashfix::server {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {}

  // Returns the text that is now safe to emit. After a stop string matched, stopped() is true and the
  // text up to (without) the stop string has been returned; later pushes return nothing.
  std::string push(std::string_view piece);
  // End of generation: everything still held back (an incomplete UTF-8 tail is passed on as is; the
  // JSON writer replaces invalid bytes).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // received, not yet emitted
  bool stopped_ = false;
};

}  // namespace flashfix::server
