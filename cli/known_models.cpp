#include "cli/known_models.h"

namespace flashfix::cli {

// Q4_K_M quantizations: the size/quality point that fits a 32 GB machine for the 30B-A3B models.
const std::vector<KnownModel>& known_models() {
  static const std::vector<KnownModel> list = {
      {"qwen3-coder-30b-a3b",
       "https://huggingface.co/unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF/resolve/main/Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf",
       "", "Qwen3-Coder-30B-A3B-Instruct, Q4_K_M (about 18.6 GB)"},
      {"qwen3-30b-a3b",
       "https://huggingface.co/Qwen/Qwen3-30B-A3B-GGUF/resolve/main/Qwen3-30B-A3B-Q4_K_M.gguf",
       "", "Qwen3-30B-A3B, Q4_K_M (about 18.6 GB)"},
  };
  return list;
}

std::optional<KnownModel> find_known_model(std::string_view name) {
  for (const auto& m : known_models())
    if (m.name == name) return m;
  return std::nullopt;
}

}  // namespace flashfix::cli
