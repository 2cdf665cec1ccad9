// A scratch directory of this test process's own (ctest runs test binaries in parallel), removed at exit.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace flashfix::test {

inline const std::filesystem::path& scratch() {
  static struct Dir {
    std::filesystem::path path = std::filesystem::path(testing::TempDir()) / ("flashfix_test_" + std::to_string(getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } dir;
  return dir.path;
}

inline std::string temp(const std::string& name) { return (scratch() / name).string(); }

}  // namespace flashfix::test
