#include "cli/args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace flashfix::cli {

Args::Args(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      positional_.insert(positional_.end(), args.begin() + long(i) + 1, args.end());
      break;
    }
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    if (a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    std::string name = a, inline_value;
    bool has_inline = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
      has_inline = true;
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs)
      if (s.name == name) spec = &s;
    if (!spec) throw UsageError("unknown option " + name);
    auto& slot = values_[name];
    if (!slot.empty() && !spec->repeatable) throw UsageError("option " + name + " given twice");
    if (!spec->takes_value) {
      if (has_inline) throw UsageError("option " + name + " takes no value");
      slot.push_back("");
      continue;
    }
    if (has_inline) {
      slot.push_back(inline_value);
    } else {
      if (i + 1 >= args.size()) throw UsageError("option " + name + " needs a value");
      slot.push_back(args[++i]);
    }
  }
}

bool Args::has(const std::string& flag) const { return values_.count(flag) != 0; }

std::optional<std::string> Args::get(const std::string& flag) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::string Args::require(const std::string& flag) const {
  auto v = get(flag);
  if (!v) throw UsageError("missing required option " + flag);
  return *v;
}

std::vector<std::string> Args::all(const std::string& flag) const {
  auto it = values_.find(flag);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

long long Args::get_int(const std::string& flag, long long fallback, long long min, long long max) const {
  auto v = get(flag);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno == ERANGE)
    throw UsageError("option " + flag + " expects an integer, got '" + *v + "'");
  if (x < min || x > max)
    throw UsageError("option " + flag + " must be between " + std::to_string(min) + " and " + std::to_string(max));
  return x;
}

double Args::get_double(const std::string& flag, double fallback) const {
  auto v = get(flag);
  if (!v) return fallback;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0' || !std::isfinite(x))
    throw UsageError("option " + flag + " expects a number, got '" + *v + "'");
  return x;
}

}  // namespace flashfix::cli
