#include "agent/trajectory.h"

#include <stdexcept>

#include "engine/json_text.h"

namespace flashfix::agent {

TrajectoryWriter::TrajectoryWriter(const std::filesystem::path& path) : path_(path) {
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_) throw TrajectoryError("cannot write the trajectory file " + path.string());
}

void TrajectoryWriter::write(std::string_view type, const nlohmann::ordered_json& fields) {
  if (!enabled()) return;
  nlohmann::ordered_json line{{"type", type}};
  for (const auto& [key, value] : fields.items()) line[key] = value;
  out_ << json_text(line) << '\n';
  // Flushed per line: the log of a run that is killed must still hold everything before the kill.
  out_.flush();
  if (!out_) throw TrajectoryError("writing the trajectory file " + path_.string() + " failed");
}

std::vector<nlohmann::ordered_json> read_trajectory(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the trajectory file " + path.string());
  std::vector<nlohmann::ordered_json> lines;
  std::string text;
  for (int n = 1; std::getline(in, text); ++n) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
      throw std::runtime_error(path.string() + ":" + std::to_string(n) + ": not a trajectory line (a JSON object with a \"type\")");
    lines.push_back(std::move(j));
  }
  return lines;
}

std::string_view flashfix_version() { return "0.1.0"; }

}  // namespace flashfix::agent
