// Where flashfix keeps its per-user state: the config file (the default model) and pulled models.
// $FLASHFIX_HOME moves both (tests and CI point it at a scratch folder); otherwise the XDG places:
// ~/.config/flashfix/config.json and ~/.cache/flashfix/models.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace flashfix::cli {

std::filesystem::path config_file();
std::filesystem::path default_models_dir();

// The config file's JSON, kept whole so keys this version does not know survive a rewrite.
class UserConfig {
 public:
  // A missing file is an empty config; an unreadable or malformed one throws naming the file.
  static UserConfig load();
  void save() const;  // writes a temporary file and renames it, so a crash never leaves half a config

  std::string default_model() const;  // empty: none configured
  void set_default_model(const std::string& path);

 private:
  nlohmann::json json_ = nlohmann::json::object();
};

}  // namespace flashfix::cli
