#include "agent/prompts.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "agent/agent.h"

namespace flashfix::agent {
namespace {

std::string read_prompt(const std::filesystem::path& dir, const char* name) {
  const std::filesystem::path path = dir / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the prompt file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();  // files end with a newline; turns do not
  return s;
}

}  // namespace

Prompts Prompts::load(const std::filesystem::path& dir) {
  return Prompts{read_prompt(dir, "system.md"),       read_prompt(dir, "task.md"),
                 read_prompt(dir, "default_task.md"), read_prompt(dir, "tests_failed.md"),
                 read_prompt(dir, "reverted.md"),     read_prompt(dir, "repeat_nudge.md"),
                 read_prompt(dir, "call_error.md")};
}

std::string fill(const std::string& tmpl, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  size_t pos = 0;
  for (size_t open; (open = tmpl.find("{{", pos)) != std::string::npos;) {
    const size_t close = tmpl.find("}}", open + 2);
    if (close == std::string::npos) break;
    const std::string name = tmpl.substr(open + 2, close - open - 2);
    auto it = std::find_if(values.begin(), values.end(), [&](const auto& kv) { return kv.first == name; });
    if (it == values.end()) throw std::runtime_error("prompt placeholder {{" + name + "}} has no value");
    // Values are inserted verbatim and never rescanned: a file's text may itself contain "{{".
    out.append(tmpl, pos, open - pos).append(it->second);
    pos = close + 2;
  }
  return out.append(tmpl, pos);
}

std::filesystem::path default_prompts_dir() {
  if (const char* env = std::getenv("FLASHFIX_PROMPTS_DIR"); env && *env) return env;
  return FLASHFIX_PROMPTS_DIR;
}

}  // namespace flashfix::agent
