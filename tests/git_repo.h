// Test repositories made with the git command line (independent of the libgit2 code under test).
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "scratch.h"
#include "subprocess.h"

namespace flashfix::test {

inline std::string git(const std::filesystem::path& repo, const std::string& args) {
  auto [rc, out] = host_sh("git -C '" + repo.string() + "' -c user.name=t -c user.email=t@example.com " + args);
  EXPECT_EQ(rc, 0) << "git " << args << ": " << out;
  return out;
}

inline void write(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
}

inline std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh repository under the scratch folder with the given files committed.
inline std::filesystem::path make_repo(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
  auto dir = scratch() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  git(dir, "init -q -b main");
  for (const auto& [path, content] : files) write(dir / path, content);
  git(dir, "add -A");
  git(dir, "commit -q -m initial");
  return dir;
}

}  // namespace flashfix::test
