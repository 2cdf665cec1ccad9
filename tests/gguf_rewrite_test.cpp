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
  const std::string out = ::testing::TempDir() + "/rewrite.gguf";
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

}  // namespace
