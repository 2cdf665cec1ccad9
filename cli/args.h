// A small, strict flag parser shared by every subcommand: unknown flags, missing values and
// malformed numbers are usage errors with a message, never ignored.
#pragma once
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashfix::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FlagSpec {
  std::string name;        // "--model"
  bool takes_value;        // false: a switch
  bool repeatable = false; // values accumulate
};

class Args {
 public:
  // Parses args against specs. Everything after "--" and every non-flag word is positional.
  Args(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs);

  bool has(const std::string& flag) const;
  std::optional<std::string> get(const std::string& flag) const;
  std::string require(const std::string& flag) const;
  std::vector<std::string> all(const std::string& flag) const;
  long long get_int(const std::string& flag, long long fallback, long long min, long long max) const;
  double get_double(const std::string& flag, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }
  bool help() const { return help_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

}  // namespace flashfix::cli
