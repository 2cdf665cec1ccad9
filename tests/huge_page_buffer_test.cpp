// The huge-page buffer refuses what the machine cannot hold with an error naming its use, instead of
// letting overcommit turn the writes that follow into an OOM kill.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "engine/huge_page_buffer.h"

namespace flashfix {
namespace {

uint64_t mem_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  while (in >> key >> kb && key != "MemTotal:") in.ignore(1 << 20, '\n');
  return kb * 1024;
}

TEST(HugePageBuffer, AvailableMemoryIsBoundedByTheMachine) {
  const uint64_t available = available_memory_bytes();
  EXPECT_GT(available, uint64_t(16) << 20);
  EXPECT_LE(available, mem_total_bytes());
}

TEST(HugePageBuffer, RefusesMoreThanIsAvailableWithItsUseInTheError) {
  const uint64_t too_much = available_memory_bytes() + (uint64_t(1) << 30);
  try {
    HugePageBuffer b(size_t(too_much), "the test's weights (run with --no-repack)");
    FAIL() << "allocated " << too_much << " bytes";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cannot allocate " + std::to_string(too_much >> 20) + " MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("the test's weights (run with --no-repack)"), std::string::npos) << m;
    EXPECT_NE(m.find("MiB of memory are available"), std::string::npos) << m;
  }
}

TEST(HugePageBuffer, HoldsWhatIsWrittenAndMovesOwnership) {
  HugePageBuffer a(size_t(4) << 20, "a test buffer");
  ASSERT_NE(a.data(), nullptr);
  for (size_t i = 0; i < a.size(); i += 4096) a.data()[i] = uint8_t(i >> 12);
  HugePageBuffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  ASSERT_EQ(b.size(), size_t(4) << 20);
  for (size_t i = 0; i < b.size(); i += 4096) ASSERT_EQ(b.data()[i], uint8_t(i >> 12));
}

}  // namespace
}  // namespace flashfix
