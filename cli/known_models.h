// Short names `flashfix pull` understands, each mapping to one GGUF file's download URL (the list
// is in known_models.cpp and in the README; anything else must be given as a URL).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashfix::cli {

struct KnownModel {
  std::string_view name;
  std::string_view url;
  std::string_view sha256;  // empty: not pinned (the download's digest is printed and recorded)
  std::string_view about;
};

const std::vector<KnownModel>& known_models();
std::optional<KnownModel> find_known_model(std::string_view name);

}  // namespace flashfix::cli
