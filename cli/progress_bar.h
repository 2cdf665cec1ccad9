// One progress line on stderr: redrawn in place on a terminal, or a plain line every tenth of the
// way otherwise (so CI logs stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace flashfix::cli {

class ProgressBar {
 public:
  enum class Unit { Count, Bytes };
  // total 0: unknown (the line shows what is done and the rate only).
  ProgressBar(std::string label, uint64_t total, Unit unit);
  void update(uint64_t done, const std::string& note = "");
  void finish(const std::string& note = "");  // final line, ends with a newline

 private:
  std::string line(uint64_t done, const std::string& note) const;
  std::string label_;
  uint64_t total_;
  Unit unit_;
  bool tty_;
  int last_decile_ = -1;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_draw_{};
};

std::string human_bytes(double bytes);

}  // namespace flashfix::cli
