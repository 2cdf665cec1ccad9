#include "cli/user_config.h"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace flashfix::cli {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// $XDG_<kind>_HOME, else ~/<fallback>; no HOME at all is a configuration error worth naming.
fs::path xdg_dir(const char* xdg_var, const char* fallback) {
  if (auto x = env(xdg_var); !x.empty()) return fs::path(x) / "flashfix";
  auto home = env("HOME");
  if (home.empty())
    throw std::runtime_error(std::string("neither FLASHFIX_HOME, ") + xdg_var + " nor HOME is set: cannot place flashfix's files");
  return fs::path(home) / fallback / "flashfix";
}

}  // namespace

fs::path config_file() {
  if (auto h = env("FLASHFIX_HOME"); !h.empty()) return fs::path(h) / "config.json";
  return xdg_dir("XDG_CONFIG_HOME", ".config") / "config.json";
}

fs::path default_models_dir() {
  if (auto h = env("FLASHFIX_HOME"); !h.empty()) return fs::path(h) / "models";
  return xdg_dir("XDG_CACHE_HOME", ".cache") / "models";
}

UserConfig UserConfig::load() {
  UserConfig c;
  fs::path path = config_file();
  std::ifstream in(path);
  if (!in) {
    if (fs::exists(path)) throw std::runtime_error("cannot read " + path.string());
    return c;
  }
  try {
    c.json_ = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + " is not valid JSON: " + e.what());
  }
  if (!c.json_.is_object()) throw std::runtime_error(path.string() + " must hold a JSON object");
  if (c.json_.contains("default_model") && !c.json_["default_model"].is_string())
    throw std::runtime_error(path.string() + ": \"default_model\" must be a string");
  return c;
}

void UserConfig::save() const {
  fs::path path = config_file();
  fs::create_directories(path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json_.dump(2) << "\n";
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

std::string UserConfig::default_model() const { return json_.value("default_model", ""); }

void UserConfig::set_default_model(const std::string& path) { json_["default_model"] = path; }

}  // namespace flashfix::cli
