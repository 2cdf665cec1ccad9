// Files written by the reference toolchain, read and written back by our reader and writer, come out
// byte for byte identical: the writer lays out headers, metadata, alignment and padding exactly as
// other GGUF tools do, so what it produces loads in them unchanged. (Writers disagree only on a file
// with no tensors: some pad its header to the alignment, as we do, some do not; the reader takes both.)
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/gguf.h"
#include "engine/model.h"
#include "scratch.h"

using namespace flashfix;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class Rewrite : public ::testing::TestWithParam<std::string> {};

TEST_P(Rewrite, IsByteIdentical) {
  const std::string src = std::string(FLASHFIX_SHARED_DIR) + "/" + GetParam();
  auto f = GgufFile::open(src);
  GgufWriter w;
  for (const auto& kv : f->metadata()) w.copy_value(std::string(kv.key), kv.value);
  for (const auto& t : f->tensors()) {
    const GgufTensor* tp = &t;
    w.add_tensor(std::string(t.name), t.type, t.ne, [tp](uint8_t* dst, size_t n) { std::memcpy(dst, tp->data, n); });
  }
  const std::string out = flashfix::test::temp("rewrite.gguf");  // per process: ctest runs cases in parallel
  w.write(out);
  std::string a = slurp(src), b = slurp(out);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "first difference at byte "
                      << std::distance(a.begin(), std::mismatch(a.begin(), a.end(), b.begin()).first);
  std::filesystem::remove(out);
}

INSTANTIATE_TEST_SUITE_P(SharedFiles, Rewrite,
                         ::testing::Values("golden/tiny-qwen3moe-s11.gguf", "golden/tiny-qwen3moe-s11-Q4_K_M.gguf",
                                           "golden/tiny-step35-s11-Q6_K.gguf", "vocab/ggml-vocab-qwen3.gguf"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& c : s)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

// A count that does not fit the engine's int is an error, not a value taken modulo 2^32.
TEST(Rewrite, OversizedCountsAreRejectedNotTruncated) {
  auto f = GgufFile::open(std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-qwen3moe-s11.gguf");
  for (const char* key : {"qwen3moe.expert_count", "qwen3moe.expert_feed_forward_length"}) {
    GgufWriter w;
    for (const auto& kv : f->metadata()) w.copy_value(std::string(kv.key), kv.value);
    w.set_u64(key, (uint64_t(1) << 32) + 8);
    for (const auto& t : f->tensors()) {
      const GgufTensor* tp = &t;
      w.add_tensor(std::string(t.name), t.type, t.ne, [tp](uint8_t* dst, size_t n) { std::memcpy(dst, tp->data, n); });
    }
    const std::string out = ::testing::TempDir() + "/oversized.gguf";
    w.write(out);
    try {
      Model::load(out);
      ADD_FAILURE() << key << " was accepted";
    } catch (const GgufError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
    }
    std::filesystem::remove(out);
  }
}

}  // namespace
