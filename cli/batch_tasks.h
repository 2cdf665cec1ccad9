// The task list and results file of `flashfix batch`. Tasks are JSONL lines {"id", "repo", "test",
// "task"?, "script"?, "max_turns"?} (relative paths are relative to the task file); results are
// JSONL lines appended one per finished task, each written whole with one write(2) on an O_APPEND
// descriptor and synced, so concurrent workers and a crash never interleave or tear lines.
#pragma once
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flashfix::cli {

struct BatchTask {
  size_t index = 0;  // position in the task file (for --shard)
  std::string id;
  std::filesystem::path repo;
  std::string task, test;
  std::filesystem::path script;  // empty: the shared backend
  std::optional<int> max_turns;
};

// Throws UsageError naming the line for malformed lines, missing fields or duplicate ids.
std::vector<BatchTask> read_batch_tasks(const std::filesystem::path& file);

// Ids already finished in a results file: lines that parse and whose outcome is not an error (those
// are retried). A missing file is empty; a torn last line is ignored.
std::set<std::string> finished_task_ids(const std::filesystem::path& results);

class ResultsFile {
 public:
  explicit ResultsFile(const std::filesystem::path& path);  // throws naming the path
  ~ResultsFile();
  ResultsFile(const ResultsFile&) = delete;
  ResultsFile& operator=(const ResultsFile&) = delete;
  void append(const nlohmann::json& line);

 private:
  void append_raw(const std::string& text);
  int fd_ = -1;
  std::mutex mutex_;
  std::filesystem::path path_;
};

// "i/N" with 0 <= i < N; throws UsageError otherwise.
std::pair<size_t, size_t> parse_shard(const std::string& text);

}  // namespace flashfix::cli
