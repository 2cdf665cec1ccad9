#include "cli/progress_bar.h"

#include <unistd.h>

#include <cstdio>

namespace flashfix::cli {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

ProgressBar::ProgressBar(std::string label, uint64_t total, Unit unit)
    : label_(std::move(label)), total_(total), unit_(unit), tty_(isatty(STDERR_FILENO) == 1) {}

std::string ProgressBar::line(uint64_t done, const std::string& note) const {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? double(done) / secs : 0;
  auto amount = [&](double v) { return unit_ == Unit::Bytes ? human_bytes(v) : std::to_string(uint64_t(v)); };
  std::string s = label_ + " ";
  if (total_ > 0) {
    constexpr int kWidth = 24;
    int filled = int(double(done) / double(total_) * kWidth);
    if (filled > kWidth) filled = kWidth;
    s += "[" + std::string(size_t(filled), '#') + std::string(size_t(kWidth - filled), ' ') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%% ", int(double(done) * 100 / double(total_)));
    s += pct + amount(double(done)) + "/" + amount(double(total_));
  } else {
    s += amount(double(done));
  }
  if (unit_ == Unit::Bytes) s += "  " + human_bytes(rate) + "/s";
  if (!note.empty()) s += "  " + note;
  return s;
}

void ProgressBar::update(uint64_t done, const std::string& note) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    // Redraw at most ten times a second: a download calls this per received chunk.
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r\033[K%s", line(done, note).c_str());
    std::fflush(stderr);
    return;
  }
  int decile = total_ > 0 ? int(double(done) * 10 / double(total_)) : -1;
  if (unit_ == Unit::Count || decile > last_decile_) {
    last_decile_ = decile;
    std::fprintf(stderr, "%s\n", line(done, note).c_str());
  }
}

void ProgressBar::finish(const std::string& note) {
  std::fprintf(stderr, tty_ ? "\r\033[K%s\n" : "%s\n", line(done_, note).c_str());
  std::fflush(stderr);
}

}  // namespace flashfix::cli
