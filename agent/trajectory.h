// The trajectory log: one JSON object per line, flushed as the run goes so a crash or a kill leaves
// everything up to that point readable. docs/TRAJECTORY.md documents every line type.
#pragma once
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flashfix::agent {

// The trajectory file cannot be written: the run cannot keep its promise of a log, so it stops.
struct TrajectoryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class TrajectoryWriter {
 public:
  TrajectoryWriter() = default;  // writes nothing
  // Creates or truncates the file; throws TrajectoryError naming the path when it cannot.
  explicit TrajectoryWriter(const std::filesystem::path& path);
  bool enabled() const { return out_.is_open(); }
  // Adds "type" first, then the fields, as one line. Invalid UTF-8 from a model is replaced, not fatal.
  void write(std::string_view type, const nlohmann::ordered_json& fields);

 private:
  std::ofstream out_;
  std::filesystem::path path_;
};

// Every line of a trajectory file, parsed; throws std::runtime_error naming the line when one is not
// a JSON object with a "type".
std::vector<nlohmann::ordered_json> read_trajectory(const std::filesystem::path& path);

// The version string written into the "start" line.
std::string_view flashfix_version();

}  // namespace flashfix::agent
