#include "cli/batch_tasks.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>

#include "cli/args.h"
#include "engine/json_text.h"

namespace flashfix::cli {
namespace fs = std::filesystem;

std::vector<BatchTask> read_batch_tasks(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw UsageError("cannot read task file " + file.string());
  fs::path base = fs::absolute(file).parent_path();
  auto resolve = [&](const std::string& p) { return fs::path(p).is_absolute() ? fs::path(p) : base / p; };
  std::vector<BatchTask> tasks;
  std::set<std::string> ids;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = file.string() + ":" + std::to_string(line_no) + ": ";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(where + "not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw UsageError(where + "a task must be a JSON object");
    auto text = [&](const char* key, bool required) -> std::string {
      if (!j.contains(key)) {
        if (required) throw UsageError(where + "missing \"" + key + "\"");
        return "";
      }
      if (!j[key].is_string() || (required && j[key].get<std::string>().empty()))
        throw UsageError(where + "\"" + key + "\" must be a non-empty string");
      return j[key].get<std::string>();
    };
    BatchTask t;
    t.index = tasks.size();
    t.id = text("id", true);
    t.repo = resolve(text("repo", true));
    t.test = text("test", true);
    t.task = text("task", false);
    if (auto s = text("script", false); !s.empty()) t.script = resolve(s);
    if (j.contains("max_turns")) {
      if (!j["max_turns"].is_number_integer() || j["max_turns"].get<int64_t>() < 1)
        throw UsageError(where + "\"max_turns\" must be a positive integer");
      t.max_turns = j["max_turns"].get<int>();
    }
    if (!ids.insert(t.id).second) throw UsageError(where + "duplicate task id \"" + t.id + "\"");
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::set<std::string> finished_task_ids(const fs::path& results) {
  std::set<std::string> done;
  std::ifstream in(results);
  std::string line;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      std::string outcome = j.value("outcome", "");
      if (j.contains("id") && j["id"].is_string() && outcome != "error" && outcome != "infrastructure_error")
        done.insert(j["id"].get<std::string>());
    } catch (const nlohmann::json::exception&) {
      // A line torn by a crash: that task runs again.
    }
  }
  return done;
}

ResultsFile::ResultsFile(const fs::path& path) : path_(path) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
  // A crash mid-line leaves no newline at the end: start on a fresh line so the next record parses.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (in.tellg() > 0) {
    in.seekg(-1, std::ios::end);
    if (in.get() != '\n') append_raw("\n");
  }
}

ResultsFile::~ResultsFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultsFile::append_raw(const std::string& text) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("cannot write " + path_.string() + ": " + std::strerror(errno));
    off += size_t(n);
  }
  ::fdatasync(fd_);
}

void ResultsFile::append(const nlohmann::json& line) {
  std::lock_guard lock(mutex_);
  append_raw(json_text(line) + "\n");
}

std::pair<size_t, size_t> parse_shard(const std::string& text) {
  static const std::regex re(R"(^([0-9]{1,6})/([0-9]{1,6})$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) throw UsageError("--shard expects i/N, e.g. 0/4");
  size_t i = std::stoul(m[1].str()), n = std::stoul(m[2].str());
  if (n == 0 || i >= n) throw UsageError("--shard i/N needs 0 <= i < N");
  return {i, n};
}

}  // namespace flashfix::cli
