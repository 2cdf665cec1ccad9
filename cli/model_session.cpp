#include "cli/model_session.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "agent/utf8.h"

namespace flashfix::cli {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return ss.str();
}

std::string Utf8Stream::push(const std::string& bytes) {
  pending_ += bytes;
  const size_t complete = pending_.size() - agent::incomplete_utf8_tail(pending_);
  std::string out = pending_.substr(0, complete);
  pending_.erase(0, complete);
  return out;
}

std::string Utf8Stream::flush() { return std::exchange(pending_, {}); }

}  // namespace flashfix::cli
