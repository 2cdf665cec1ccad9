#include "engine/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/cpu_time.h"
#include "engine/gguf.h"

namespace fs = std::filesystem;
using flashfix::GgufFile;
using flashfix::GgufWriter;
using flashfix::Tokenizer;
using flashfix::thread_cpu_seconds;

namespace {

const std::string kShared = FLASHFIX_SHARED_DIR;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Tokenizer> load(const std::string& path) { return Tokenizer::from_gguf(*GgufFile::open(path)); }

// Vocabularies are slow-ish to build (150k tokens); load each once.
const Tokenizer& vocab(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) t = load(kShared + "/vocab/ggml-vocab-" + name + ".gguf");
  return *t;
}

std::string join_ids(const std::vector<int32_t>& ids, const char* lead) {
  std::string s;
  for (size_t k = 0; k < ids.size(); k++) s += (k || *lead ? " " : "") + std::to_string(ids[k]);
  return s;
}

// ---- llama.cpp's test-tokenizer-0 vectors ----

class VocabVectors : public testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, MatchesLlamaCpp) {
  const std::string base = kShared + "/vocab/ggml-vocab-" + GetParam() + ".gguf";
  const Tokenizer& tok = vocab(GetParam());
  // As test-tokenizer-0: each test string is the text before a "\n__ggml_vocab_test__\n" separator.
  const std::string raw = read_file(base + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    inputs.push_back(raw.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) break;
    pos = next + sep.size();
  }
  std::ifstream out(base + ".out");
  std::string expected;
  size_t k = 0;
  for (; std::getline(out, expected); k++) {
    ASSERT_LT(k, inputs.size()) << "more .out lines than test strings";
    EXPECT_EQ(join_ids(tok.encode(inputs[k], false, false), " "), expected) << "test string #" << k << ": '" << inputs[k] << "'";
  }
  EXPECT_EQ(k, inputs.size());
  EXPECT_GT(k, 40u);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, VocabVectors,
                         testing::Values("gpt-2", "qwen3", "deepseek-coder", "deepseek-llm", "starcoder", "llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---- golden prompts: specials parsed, BOS per model ----

TEST(Tokenizer, GoldenPrompts) {
  const std::string prompt = read_file(kShared + "/golden/prompt1.txt");
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(kShared + "/golden")) {
    const std::string path = entry.path().string();
    if (!path.ends_with(".prompt1.json")) continue;
    const std::string model = path.substr(0, path.size() - std::string(".prompt1.json").size()) + ".gguf";
    const auto golden = nlohmann::json::parse(read_file(path));
    const auto tok = load(model);
    EXPECT_EQ(tok->n_vocab(), golden["n_vocab"].get<int>()) << model;
    EXPECT_EQ(tok->encode(prompt, true, true), golden["tokens"].get<std::vector<int32_t>>()) << model;
    checked++;
  }
  EXPECT_GE(checked, 5);
}

// ---- specials ----

TEST(Tokenizer, QwenSpecials) {
  const Tokenizer& tok = vocab("qwen3");
  const std::string chat = "<|im_start|>user\nhi<|im_end|>";
  const auto parsed = tok.encode(chat, true, false);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 151644);
  EXPECT_EQ(parsed.back(), 151645);
  const auto plain = tok.encode(chat, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 151644), 0);
  EXPECT_EQ(tok.decode(plain), chat);
  EXPECT_EQ(tok.decode(parsed), chat);
  EXPECT_EQ(tok.decode(parsed, false), "user\nhi");
  // User-defined tokens are matched even when control tokens are not (llama.cpp, HF added tokens).
  EXPECT_EQ(tok.encode("<think>", false, false), std::vector<int32_t>{151667});
  EXPECT_EQ(tok.find_token("<tool_call>"), 151657);
  // Qwen3 asks for no BOS; "BOS per model" adds nothing.
  EXPECT_FALSE(tok.add_bos_default());
  EXPECT_EQ(tok.encode("hi", false, true), tok.encode("hi", false, false));
  EXPECT_TRUE(tok.is_eog(151645));  // <|im_end|> = eos
  EXPECT_TRUE(tok.is_eog(151643));  // <|endoftext|>
  EXPECT_FALSE(tok.is_eog(151644));
  EXPECT_FALSE(tok.is_eog(tok.encode("hi", false, false)[0]));
  EXPECT_NE(tok.chat_template().find("<|im_start|>"), std::string_view::npos);
}

TEST(Tokenizer, SpmBosAndSpecials) {
  const Tokenizer& tok = vocab("llama-spm");
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_TRUE(tok.add_bos_default());
  const auto ids = tok.encode("Hello", false, true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok.encode("<s>Hello", true, false), ids);  // a space is prefixed after a special, as llama.cpp does
  EXPECT_TRUE(tok.is_eog(2));
  const Tokenizer& phi = vocab("phi-3");
  EXPECT_TRUE(phi.is_eog(phi.find_token("<|end|>").value()));
  // Phi-3 strips the whitespace after its markers.
  EXPECT_EQ(phi.encode("<|user|>\nhi<|end|>", true, false), phi.encode("<|user|>hi<|end|>", true, false));
}

// ---- round trips ----

TEST(Tokenizer, RoundTrip) {
  const std::vector<std::string> texts = {
      "int main() {\n    return printf(\"%d\\n\", 42);\n}\n",
      "  leading and trailing spaces  \t\n\n",
      "emoji 🦙🚀 ✅ 👩‍💻 and CJK 我想在apple工作 日本語のテキスト 한국어",
      "Ünïcödé ΑΒΓ Привет мир 1234567890 3.14 ~/path/to/file.cpp ~~~",
      "",
      " ",
      "\n",
  };
  for (const char* name : {"qwen3", "gpt-2", "deepseek-coder", "deepseek-llm", "starcoder", "llama-spm", "phi-3"}) {
    const Tokenizer& tok = vocab(name);
    for (const auto& text : texts) EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text) << name << ": " << text;
  }
  const auto step = load(kShared + "/golden/tiny-step35-s11.gguf");  // deepseek-v3 pre-tokenizer
  for (const auto& text : texts) EXPECT_EQ(step->decode(step->encode(text, false, false)), text) << text;
}

TEST(Tokenizer, InvalidUtf8) {
  // SentencePiece spells unknown bytes with <0xXX> tokens: lossless. (As in llama.cpp, a bad lead byte
  // still claims the bytes its length says, so one right before a space would swallow part of the "▁".)
  const std::string bad_spm = "ok\xff\xfe\xfd\xfc bad\xc3x tail\xe2\x82";
  const Tokenizer& spm = vocab("llama-spm");
  EXPECT_EQ(spm.decode(spm.encode(bad_spm, false, false)), bad_spm);
  // Byte-level BPE follows llama.cpp: each byte that starts no valid sequence becomes U+FFFD.
  const std::string bad = "ok \xff\xfe bad \xc3 tail \xe2\x82\x80\x80 end";
  const Tokenizer& bpe = vocab("qwen3");
  EXPECT_EQ(bpe.decode(bpe.encode(bad, false, false)),
            "ok \xEF\xBF\xBD\xEF\xBF\xBD bad \xEF\xBF\xBD tail \xE2\x82\x80\xEF\xBF\xBD end");
}

// ---- speed ----


TEST(Tokenizer, MegabyteOfSourceIsFast) {
  const Tokenizer& tok = vocab("qwen3");
  std::string text;
  for (int k = 0; text.size() < (1 << 20); k++)
    text += "static int compute_" + std::to_string(k) + "(const std::vector<float>& xs, int n) {\n"
            "    float acc = 0.0f;  // sum of squares\n    for (int i = 0; i < n; ++i) acc += xs[i] * xs[i];\n"
            "    return int(acc * " + std::to_string(k * 7 % 1000) + ") >> 3;\n}\n\n";
  double t0 = thread_cpu_seconds();
  const auto ids = tok.encode(text, true, false);
  const double secs = thread_cpu_seconds() - t0;
  std::printf("qwen3: %zu bytes -> %zu tokens in %.3f CPU s\n", text.size(), ids.size(), secs);
  EXPECT_LT(secs, 1.0);
  EXPECT_EQ(tok.decode(ids), text);
  // One huge pre-token and one huge whitespace run must not be quadratic either.
  const std::string word(200000, 'x'), spaces(200000, ' ');
  t0 = thread_cpu_seconds();
  EXPECT_EQ(tok.decode(tok.encode(word + spaces + "y", false, false)), word + spaces + "y");
  EXPECT_LT(thread_cpu_seconds() - t0, 1.0);
}

// ---- malformed vocabularies ----

struct TempGguf {
  std::string path = (fs::temp_directory_path() / ("tok_test_" + std::to_string(getpid()) + ".gguf")).string();
  ~TempGguf() { fs::remove(path); }
};

GgufWriter base_vocab() {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "qwen2");
  w.set_array_string("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b", "ab", "<|end|>"});
  w.set_array_i32("tokenizer.ggml.token_type", {1, 1, 1, 3});
  w.set_array_string("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
  return w;
}

std::string load_error(GgufWriter w) {
  TempGguf tmp;
  w.write(tmp.path);
  try {
    load(tmp.path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Tokenizer, SmallValidVocab) {
  TempGguf tmp;
  base_vocab().write(tmp.path);
  const auto tok = load(tmp.path);
  EXPECT_EQ(tok->encode("abab<|end|>", true, false), (std::vector<int32_t>{2, 2, 3}));
  EXPECT_TRUE(tok->is_eog(3));
}

TEST(Tokenizer, MalformedVocabsFailClearly) {
  auto with = [](auto edit) {
    GgufWriter w = base_vocab();
    edit(w);
    return load_error(std::move(w));
  };
  EXPECT_NE(with([](GgufWriter& w) { w.set_array_i32("tokenizer.ggml.token_type", {1, 1, 1}); }).find("token_type has 3 entries"),
            std::string::npos);
  EXPECT_NE(with([](GgufWriter& w) { w.set_array_f32("tokenizer.ggml.scores", {0, 0}); }).find("scores has 2 entries"),
            std::string::npos);
  EXPECT_NE(with([](GgufWriter& w) { w.set_array_string("tokenizer.ggml.merges", std::vector<std::string>{"a c"}); })
                .find("unknown token 'c'"),
            std::string::npos);
  EXPECT_NE(with([](GgufWriter& w) { w.set_array_string("tokenizer.ggml.merges", std::vector<std::string>{"ab"}); })
                .find("merges[0]"),
            std::string::npos);
  EXPECT_NE(with([](GgufWriter& w) { w.set_u32("tokenizer.ggml.eos_token_id", 9); }).find("eos_token_id = 9 is outside"),
            std::string::npos);
  EXPECT_NE(with([](GgufWriter& w) { w.set_string("tokenizer.ggml.pre", "klingon"); }).find("unknown pre-tokenizer 'klingon'"),
            std::string::npos);
  EXPECT_NE(with([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "bert"); }).find("unsupported tokenizer.ggml.model"),
            std::string::npos);
  GgufWriter empty;
  empty.set_string("tokenizer.ggml.model", "llama");
  EXPECT_NE(load_error(std::move(empty)).find("tokenizer.ggml.tokens"), std::string::npos);
}

// ---- CLI ----

std::string run(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  return out;
}

TEST(Tokenizer, Cli) {
  const std::string bin = FLASHFIX_BIN;
  const std::string prompt = kShared + "/golden/prompt1.txt";
  const std::string step = kShared + "/golden/tiny-step35-s11.gguf";
  const auto tok = load(step);
  const std::string text = read_file(prompt);
  EXPECT_EQ(run(bin + " tokenize --model " + step + " < " + prompt), join_ids(tok->encode(text, false, false), "") + "\n");
  const auto golden = nlohmann::json::parse(read_file(kShared + "/golden/tiny-step35-s11.prompt1.json"));
  EXPECT_EQ(run(bin + " tokenize --model " + step + " --special --bos < " + prompt),
            join_ids(golden["tokens"].get<std::vector<int32_t>>(), "") + "\n");
  EXPECT_NE(run(bin + " tokenize --help").find("usage"), std::string::npos);
  EXPECT_NE(std::system((bin + " tokenize --bogus < /dev/null 2>/dev/null").c_str()), 0);
}

}  // namespace
