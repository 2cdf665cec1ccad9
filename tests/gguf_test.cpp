// GGUF reader/writer: real files read, every metadata type round-trips, and every class of corrupt file
// is rejected with a message that names the problem (never a crash); model-level validation names the
// tensor or key at fault.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/synth.h"
#include "scratch.h"

namespace fs = std::filesystem;
using namespace flashfix;

namespace {

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

using flashfix::test::scratch;
using flashfix::test::temp;

// Little-endian byte builder for hand-made (mostly broken) files.
struct Buf {
  std::vector<uint8_t> b;
  template <typename T>
  Buf& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Buf& u8(uint8_t v) { return put(v); }
  Buf& u32(uint32_t v) { return put(v); }
  Buf& u64(uint64_t v) { return put(v); }
  Buf& i64(int64_t v) { return put(v); }
  Buf& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Buf& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  }
  Buf& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(uint32_t(GgufType::U32)).u32(v); }
  Buf& tensor(std::string_view name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (int64_t d : ne) i64(d);
    return u32(type).u64(offset);
  }
  Buf& pad(size_t n) {  // trailing bytes, so count-vs-size checks pass and the case under test is reached
    b.resize(b.size() + n, 0);
    return *this;
  }
  Buf& data(size_t n, size_t align = 32) {
    b.resize((b.size() + align - 1) / align * align + n, 0);
    return *this;
  }
};

// The GgufError message for parsing `bytes`, or "" when it parses.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    GgufFile::parse(bytes.data(), bytes.size(), "t");
  } catch (const GgufError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REJECTED(bytes, text) EXPECT_PRED_FORMAT2(testing::IsSubstring, text, parse_error(bytes))

// One u32 key and two F32 tensors whose data sizes are multiples of the alignment, so no prefix of the
// file is itself valid.
std::vector<uint8_t> small_valid_file() {
  GgufWriter w;
  w.set_u32("k", 7);
  w.set_array_string("names", std::vector<std::string>{"a", "bc"});
  w.add_tensor("a", TensorType::F32, {8, 2}, [](uint8_t* d, size_t n) { std::memset(d, 1, n); });
  w.add_tensor("b", TensorType::F32, {16}, [](uint8_t* d, size_t n) { std::memset(d, 2, n); });
  std::string path = temp("small.gguf");
  w.write(path);
  return slurp(path);
}

}  // namespace

// ---- real files ---------------------------------------------------------------------------------

TEST(GgufRead, EveryGoldenAndVocabFile) {
  int n_models = 0, n_vocabs = 0;
  for (const char* dir : {"golden", "vocab"}) {
    for (const auto& e : fs::directory_iterator(fs::path(FLASHFIX_SHARED_DIR) / dir)) {
      if (e.path().extension() != ".gguf") continue;
      SCOPED_TRACE(e.path().string());
      auto f = GgufFile::open(e.path().string());
      EXPECT_EQ(f->version(), 3u);
      const auto* tokens = f->get_string_array("tokenizer.ggml.tokens");
      ASSERT_NE(tokens, nullptr);
      EXPECT_GT(tokens->size(), 4000u);
      EXPECT_EQ(f->get_int_array("tokenizer.ggml.token_type")->size(), tokens->size());
      if (f->tensors().empty()) {
        ++n_vocabs;
        continue;
      }
      auto m = Model::from_file(std::move(f));
      EXPECT_TRUE(m->config().arch == "qwen3moe" || m->config().arch == "step35");
      EXPECT_EQ(m->config().n_vocab, int64_t(tokens->size()));
      ++n_models;
    }
  }
  EXPECT_EQ(n_models, 5);
  EXPECT_EQ(n_vocabs, 7);
}

TEST(GgufRead, GoldenStep35Details) {
  auto f = GgufFile::open(std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-step35-s11.gguf");
  EXPECT_EQ(f->require_string("general.architecture"), "step35");
  EXPECT_EQ(*f->get_int_array("step35.attention.head_count"), (std::vector<int64_t>{4, 8, 8, 8, 4, 8, 8, 8, 8}));
  auto clamps = f->get_per_layer("step35.swiglu_clamp_exp", 9);
  ASSERT_TRUE(clamps);
  EXPECT_FLOAT_EQ(float((*clamps)[5]), 1.5f);
  EXPECT_THROW(f->get_per_layer("step35.swiglu_clamp_exp", 8), GgufError);
  EXPECT_THROW(f->require_int("general.architecture"), GgufError);
  const GgufTensor* t = f->find_tensor("blk.1.ffn_gate_exps.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne, (std::vector<int64_t>{256, 256, 8}));
  EXPECT_EQ(t->nbytes, 256u * 256 * 8 * 4);
  EXPECT_EQ((t->data - f->base()) % f->alignment(), 0);
}

// ---- writer round trip --------------------------------------------------------------------------

TEST(GgufWriter, EveryMetadataTypeRoundTrips) {
  GgufWriter w;
  w.set_u8("u8", 200);
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -123456);
  w.set_u64("u64", 1ull << 40);
  w.set_f32("f32", 0.25f);
  w.set_bool("bool", true);
  w.set_string("str", "héllo");
  w.set_string("empty", "");
  w.set_array_i32("ai32", {-1, 0, 2147483647});
  w.set_array_u32("au32", {1, 4000000000u});
  w.set_array_f32("af32", {1.5f, -2.f, 1e-7f});
  w.set_array_bool("abool", {true, false, true});
  w.set_array_string("astr", std::vector<std::string>{"a", "", "ccc"});
  w.set_array_i32("aempty", {});
  w.set_u32("u32", 5);  // setting a key again replaces it in place
  std::string path = temp("types.gguf");
  w.write(path);

  auto f = GgufFile::open(path);
  ASSERT_EQ(f->metadata().size(), 14u);
  EXPECT_EQ(f->metadata()[1].key, "u32");
  EXPECT_EQ(f->find("u8")->type, GgufType::U8);
  EXPECT_EQ(f->require_int("u8"), 200);
  EXPECT_EQ(f->require_int("u32"), 5);
  EXPECT_EQ(f->require_int("i32"), -123456);
  EXPECT_EQ(f->require_int("u64"), int64_t(1) << 40);
  EXPECT_EQ(f->require_float("f32"), 0.25);
  EXPECT_EQ(f->get_bool("bool"), true);
  EXPECT_EQ(f->require_string("str"), "héllo");
  EXPECT_EQ(f->require_string("empty"), "");
  EXPECT_EQ(*f->get_int_array("ai32"), (std::vector<int64_t>{-1, 0, 2147483647}));
  EXPECT_EQ(*f->get_int_array("au32"), (std::vector<int64_t>{1, 4000000000ll}));
  EXPECT_EQ(*f->get_float_array("af32"), (std::vector<float>{1.5f, -2.f, 1e-7f}));
  EXPECT_EQ(*f->get_int_array("abool"), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f->find("abool")->elem_type, GgufType::BOOL);
  EXPECT_EQ(*f->get_string_array("astr"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_TRUE(f->get_int_array("aempty")->empty());
  EXPECT_FALSE(f->get_int("absent"));
  EXPECT_THROW(f->get_string("u32"), GgufError);
  EXPECT_THROW(f->get_int("str"), GgufError);
  EXPECT_THROW(f->get_int_array("af32"), GgufError);
  EXPECT_THROW(f->get_string_array("ai32"), GgufError);

  // copy_value reproduces every value byte for byte.
  GgufWriter w2;
  for (const auto& kv : f->metadata()) w2.copy_value(std::string(kv.key), kv.value);
  std::string path2 = temp("types2.gguf");
  w2.write(path2);
  EXPECT_EQ(slurp(path), slurp(path2));
}

TEST(GgufWriter, TensorsAlignedAndFilled) {
  GgufWriter w;
  w.set_alignment(64);
  w.add_tensor("x", TensorType::F32, {3}, [](uint8_t* d, size_t n) {
    ASSERT_EQ(n, 12u);
    float v[3] = {1, 2, 3};
    std::memcpy(d, v, n);
  });
  w.add_tensor("q", TensorType::Q8_0, {64, 2}, [](uint8_t* d, size_t n) { std::memset(d, 0, n); });
  EXPECT_THROW(w.add_tensor("x", TensorType::F32, {1}, {}), GgufError);
  EXPECT_THROW(w.add_tensor("bad", TensorType::Q4_K, {100}, {}), GgufError);
  EXPECT_THROW(w.add_tensor("dims", TensorType::F32, {1, 1, 1, 1, 1}, {}), GgufError);
  EXPECT_THROW(w.set_alignment(48), GgufError);
  std::string path = temp("aligned.gguf");
  w.write(path);
  auto f = GgufFile::open(path);
  EXPECT_EQ(f->alignment(), 64u);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[1].offset, 64u);
  EXPECT_EQ(f->tensors()[1].nbytes, 2u * 34 * 2);
  float got[3];
  std::memcpy(got, f->tensors()[0].data, 12);
  EXPECT_EQ(got[2], 3.f);
  EXPECT_EQ(f->data_offset() % 64, 0u);
}

TEST(GgufWriter, FailedFillLeavesNothingBehind) {
  GgufWriter w;
  w.add_tensor("x", TensorType::F32, {4}, [](uint8_t*, size_t) { throw std::runtime_error("fill failed"); });
  std::string path = temp("failed.gguf");
  EXPECT_THROW(w.write(path), std::runtime_error);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

// ---- corrupt files ------------------------------------------------------------------------------

TEST(GgufCorrupt, EveryPrefixIsRejected) {
  std::vector<uint8_t> full = small_valid_file();
  ASSERT_EQ(parse_error(full), "");
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + long(n));
    EXPECT_NE(parse_error(prefix), "") << "prefix of " << n << " bytes parsed";
  }
  // 160 bytes end inside the last tensor record's offset (24 header + 17 + 48 metadata + 41 + 30).
  EXPECT_REJECTED(std::vector<uint8_t>(full.begin(), full.begin() + 160), "truncated file: tensor offset needs 8 bytes");
  EXPECT_REJECTED(std::vector<uint8_t>(full.begin(), full.end() - 1), "runs past the end of the file");
}

TEST(GgufCorrupt, Header) {
  EXPECT_REJECTED(Buf().u32(0x46554746).u32(3).u64(0).u64(0).b, "bad magic");
  EXPECT_REJECTED(Buf().header(0, 0, 1).b, "version 1 is not supported");
  EXPECT_REJECTED(Buf().header(0, 0, 4).b, "unsupported GGUF version 4");
  EXPECT_REJECTED(Buf().header(0, 0, 0x03000000).b, "big-endian");
  EXPECT_EQ(parse_error(Buf().header(0, 0, 2).b), "");  // v2 is read
  EXPECT_REJECTED(Buf().header(1ull << 40, 0).b, "tensor count 1099511627776 is impossible");
  EXPECT_REJECTED(Buf().header(0, ~0ull).b, "metadata count 18446744073709551615 is impossible");
}

TEST(GgufCorrupt, Metadata) {
  EXPECT_REJECTED(Buf().header(0, 1).u64(1ull << 40).pad(64).b, "metadata key has length 1099511627776");
  EXPECT_REJECTED(Buf().header(0, 1).str("").u32(4).u32(1).b, "metadata key 0 is empty");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(8).u64(~0ull).b, "string value has length");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(13).u32(0).b, "'k' has unknown type 13");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(9).u32(99).u64(0).b, "array 'k' has unknown element type 99");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(9).u32(9).u64(1).b, "nests arrays");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(9).u32(4).u64(1ull << 61).u32(0).b, "array 'k' claims 2305843009213693952 entries");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(9).u32(8).u64(1ull << 40).str("x").b, "string array 'k' claims");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(9).u32(8).u64(2).str("x").u64(50).b, "array string has length 50");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(7).u8(2).b, "bool value 2 is neither 0 nor 1");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(9).u32(7).u64(3).u8(1).u8(0).u8(5).b, "bool array 'k' holds a value other than 0 or 1");
  EXPECT_REJECTED(Buf().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "duplicate metadata key 'k'");
  EXPECT_REJECTED(Buf().header(0, 1).str("k").u32(4).b, "truncated file: u32 value");
}

TEST(GgufCorrupt, Alignment) {
  EXPECT_REJECTED(Buf().header(0, 1).kv_u32("general.alignment", 3).b, "general.alignment 3 is not a power of two");
  EXPECT_REJECTED(Buf().header(0, 1).kv_u32("general.alignment", 0).b, "general.alignment 0 is not a power of two");
  EXPECT_REJECTED(Buf().header(0, 1).kv_u32("general.alignment", 1u << 20).b, "not a power of two up to 65536");
  EXPECT_REJECTED(Buf().header(0, 1).str("general.alignment").u32(10).u64(32).b, "general.alignment must be u32, found u64");
  // A valid non-default alignment moves the data section and is enforced on offsets.
  Buf ok;
  ok.header(1, 1).kv_u32("general.alignment", 64).tensor("t", {16}, 0, 0).data(64, 64);
  EXPECT_EQ(parse_error(ok.b), "");
  Buf mis;
  mis.header(1, 1).kv_u32("general.alignment", 64).tensor("t", {8}, 0, 32).data(64, 64);
  EXPECT_REJECTED(mis.b, "offset 32 is not aligned to 64");
}

TEST(GgufCorrupt, Tensors) {
  auto one = [](std::vector<int64_t> ne, uint32_t type = 0, uint64_t offset = 0, size_t data = 4096) {
    return Buf().header(1, 0).tensor("t", std::move(ne), type, offset).data(data).b;
  };
  EXPECT_EQ(parse_error(one({32, 4})), "");
  EXPECT_REJECTED(Buf().header(1, 0).str("").u32(1).i64(1).u32(0).u64(0).data(32).b, "tensor 0 has an empty name");
  EXPECT_REJECTED(Buf().header(1, 0).str("t").u32(5).i64(1).i64(1).i64(1).i64(1).i64(1).u32(0).u64(0).data(32).b,
                  "tensor 't' has 5 dimensions (1 to 4 allowed)");
  EXPECT_REJECTED(Buf().header(1, 0).str("t").u32(0).u32(0).u64(0).u64(0).u64(0).data(32).b, "tensor 't' has 0 dimensions");
  EXPECT_REJECTED(one({4, 0}), "tensor 't' has dimension 1 = 0");
  EXPECT_REJECTED(one({-3}), "tensor 't' has dimension 0 = -3");
  EXPECT_REJECTED(one({int64_t(1) << 32, int64_t(1) << 32}), "tensor 't' element count overflows");
  EXPECT_REJECTED(one({32}, 99), "tensor 't' has unsupported type 99");
  EXPECT_REJECTED(one({256}, uint32_t(TensorType::Q8_K)), "tensor 't' has unsupported type 15");
  EXPECT_REJECTED(one({33, 2}, uint32_t(TensorType::Q8_0)), "row of 33 is not a multiple of the q8_0 block size 32");
  EXPECT_REJECTED(one({128}, uint32_t(TensorType::Q4_K)), "row of 128 is not a multiple of the q4_K block size 256");
  EXPECT_REJECTED(one({8}, 0, 4), "tensor 't' offset 4 is not aligned to 32");
  EXPECT_REJECTED(one({8}, 0, 1 << 20), "tensor 't' data [1048576, +32) runs past the end of the file");
  EXPECT_REJECTED(one({1024, 2}), "runs past the end of the file (data section is 4096 bytes)");
  EXPECT_REJECTED(one({~0ull >> 4}, 0, 0), "runs past the end");  // byte size far beyond any file
  EXPECT_REJECTED(Buf().header(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).data(64).b, "duplicate tensor 't'");
  EXPECT_REJECTED(Buf().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).data(96).b, "tensors 'a' and 'b' overlap");
  EXPECT_REJECTED(Buf().header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 0).data(64).b, "overlap");
  EXPECT_REJECTED(Buf().header(1, 0).tensor("t", {8}, 0, 0).b, "runs past the end");
}

// ---- model-level validation ---------------------------------------------------------------------

namespace {

// Copies `src` to `dst` through GgufWriter, minus the tensors and keys `drop` names, then applies `edit`.
void rewrite(const std::string& src, const std::string& dst, const std::set<std::string>& drop,
             const std::function<void(GgufWriter&)>& edit = {}) {
  auto f = GgufFile::open(src);
  GgufWriter w;
  for (const auto& kv : f->metadata())
    if (!drop.count(std::string(kv.key))) w.copy_value(std::string(kv.key), kv.value);
  for (const auto& t : f->tensors()) {
    if (drop.count(std::string(t.name))) continue;
    const GgufTensor* tp = &t;
    w.add_tensor(std::string(t.name), t.type, t.ne, [tp](uint8_t* d, size_t n) { std::memcpy(d, tp->data, n); });
  }
  if (edit) edit(w);
  w.write(dst);
}

std::string load_error(const std::string& path) {
  try {
    Model::load(path);
  } catch (const GgufError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

class ModelValidation : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    SynthOptions o;
    o.shape = synth_default_shape("step35");
    o.shape.n_embd = 64, o.shape.n_ff = 64, o.shape.n_ff_exp = 32, o.shape.n_ff_shexp = 32, o.shape.n_layer = 4, o.shape.n_mtp = 1;
    synth_model(o, step_path());
  }
  static std::string step_path() { return temp("valid-step35.gguf"); }
  std::string out_ = temp("edited.gguf");
};

TEST_F(ModelValidation, SynthBaselineLoads) { EXPECT_EQ(load_error(step_path()), ""); }

TEST_F(ModelValidation, MissingTensorIsNamed) {
  rewrite(step_path(), out_, {"blk.2.attn_k.weight"});
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "missing tensor blk.2.attn_k.weight {64, 128}", load_error(out_));
  rewrite(step_path(), out_, {"blk.1.ffn_gate_exps.weight"});
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "missing tensor blk.1.ffn_gate_exps.weight {64, 32, 8}", load_error(out_));
}

TEST_F(ModelValidation, WrongShapeNamesBothShapes) {
  rewrite(step_path(), out_, {"blk.1.attn_q.weight"}, [](GgufWriter& w) {
    w.add_tensor("blk.1.attn_q.weight", TensorType::F32, {64, 96}, [](uint8_t* d, size_t n) { std::memset(d, 0, n); });
  });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "tensor blk.1.attn_q.weight has shape {64, 96}, expected {64, 512}", load_error(out_));
}

TEST_F(ModelValidation, UnexpectedTensorIsNamed) {
  rewrite(step_path(), out_, {}, [](GgufWriter& w) {
    w.add_tensor("blk.0.surprise.weight", TensorType::F32, {64}, [](uint8_t* d, size_t n) { std::memset(d, 0, n); });
  });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "unexpected tensor blk.0.surprise.weight", load_error(out_));
}

TEST_F(ModelValidation, NormMustBeF32) {
  rewrite(step_path(), out_, {"output_norm.weight"}, [](GgufWriter& w) {
    w.add_tensor("output_norm.weight", TensorType::F16, {64}, [](uint8_t* d, size_t n) { std::memset(d, 0, n); });
  });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "tensor output_norm.weight must be f32, found f16", load_error(out_));
}

TEST_F(ModelValidation, PerLayerArrayWithWrongLength) {
  rewrite(step_path(), out_, {}, [](GgufWriter& w) { w.set_array_i32("step35.attention.head_count", {4, 8, 8}); });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "step35.attention.head_count has 3 entries, expected one per layer (5)", load_error(out_));
  rewrite(step_path(), out_, {}, [](GgufWriter& w) { w.set_array_f32("step35.swiglu_clamp_exp", {0, 0, 0, 0, 0, 0}); });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "swiglu_clamp_exp has 6 entries", load_error(out_));
}

// Found by fuzzing: float head counts were converted to int unchecked (undefined for 2^31 or NaN, and a
// division by zero for 0.5).
TEST_F(ModelValidation, NonIntegerHeadCounts) {
  for (float h : {2147483648.f, 0.5f, NAN, -4.f}) {
    rewrite(step_path(), out_, {}, [h](GgufWriter& w) { w.set_array_f32("step35.attention.head_count", std::vector<float>(5, h)); });
    EXPECT_PRED_FORMAT2(testing::IsSubstring, "step35.attention.head_count[0] = ", load_error(out_));
    EXPECT_PRED_FORMAT2(testing::IsSubstring, "is not an integer in 1..4096", load_error(out_));
  }
}

TEST_F(ModelValidation, UnsupportedArchitecture) {
  rewrite(step_path(), out_, {}, [](GgufWriter& w) { w.set_string("general.architecture", "llama"); });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "architecture 'llama' is not supported", load_error(out_));
}

TEST_F(ModelValidation, MissingOrBadKeys) {
  rewrite(step_path(), out_, {"step35.embedding_length"});
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "missing metadata step35.embedding_length", load_error(out_));
  rewrite(step_path(), out_, {"general.architecture"});
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "missing metadata general.architecture", load_error(out_));
  rewrite(step_path(), out_, {"step35.attention.head_count"});
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "missing metadata step35.attention.head_count", load_error(out_));
  rewrite(step_path(), out_, {}, [](GgufWriter& w) { w.set_array_i32("step35.attention.head_count_kv", {3, 3, 3, 3, 3}); });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "layer 0 has 4 heads, not a multiple of its 3 kv heads", load_error(out_));
  rewrite(step_path(), out_, {}, [](GgufWriter& w) { w.set_string("step35.block_count", "five"); });
  EXPECT_PRED_FORMAT2(testing::IsSubstring, "step35.block_count: expected an integer, found string", load_error(out_));
}
