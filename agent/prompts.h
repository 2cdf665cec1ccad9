// The prompt files of prompts/ (README there lists them), loaded once per run and filled in.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace flashfix::agent {

struct Prompts {
  std::string system, task, default_task, tests_failed, reverted, repeat_nudge, call_error;

  // Throws std::runtime_error naming the file that is missing or unreadable.
  static Prompts load(const std::filesystem::path& dir);
};

// Replaces every {{name}} with its value. A placeholder without a value is a broken prompt file:
// std::runtime_error naming it, rather than a model reading "{{name}}".
std::string fill(const std::string& tmpl, const std::vector<std::pair<std::string, std::string>>& values);

}  // namespace flashfix::agent
