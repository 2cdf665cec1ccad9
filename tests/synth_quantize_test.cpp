// synth writes loadable models of both families; quantize converts exactly the tensors it should,
// within each type's error bound, and leaves metadata alone; both CLI commands reject bad usage with 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <tuple>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quantize_model.h"
#include "engine/synth.h"
#include "scratch.h"

namespace fs = std::filesystem;
using namespace flashfix;

#define EXPECT_CONTAINS(haystack, needle) EXPECT_PRED_FORMAT2(testing::IsSubstring, needle, haystack)

namespace {

using flashfix::test::scratch;
using flashfix::test::temp;

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Small shapes whose every weight row is a whole number of 256-blocks, so all types apply.
SynthOptions small(const std::string& arch, TensorType type = TensorType::F32) {
  SynthOptions o;
  o.shape = synth_default_shape(arch);
  o.shape.n_expert = 4;
  o.type = type;
  if (arch == "step35") o.shape.n_layer = 2, o.shape.n_mtp = 1, o.shape.n_ff = 256;
  else o.shape.n_layer = 1;
  return o;
}

std::string validate_error(const SynthOptions& o) {
  try {
    synth_validate(o);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) return false;
  if (!a.is_array()) return a.u == b.u && a.i == b.i && (a.f == b.f || (std::isnan(a.f) && std::isnan(b.f))) && a.b == b.b && a.str == b.str;
  if (a.elem_type != b.elem_type || a.count != b.count) return false;
  if (a.elem_type == GgufType::STRING) return a.strings == b.strings;
  for (uint64_t k = 0; k < a.count; ++k)
    if (a.array_number(k) != b.array_number(k)) return false;
  return true;
}

struct CliResult {
  int status;
  std::string err;
};

CliResult run_cli(const std::string& args) {
  std::string err_path = temp("cli.err");
  int rc = std::system((std::string(FLASHFIX_BIN) + " " + args + " >/dev/null 2>" + err_path).c_str());
  std::ifstream in(err_path);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, {std::istreambuf_iterator<char>(in), {}}};
}

}  // namespace

// ---- synth --------------------------------------------------------------------------------------

TEST(Synth, BothArchitecturesLoad) {
  for (const char* arch : {"qwen3moe", "step35"}) {
    SCOPED_TRACE(arch);
    SynthOptions o;
    o.shape = synth_default_shape(arch);
    std::string path = temp(std::string(arch) + ".gguf");
    synth_model(o, path);
    auto m = Model::load(path);
    const ModelConfig& c = m->config();
    EXPECT_EQ(c.arch, arch);
    EXPECT_EQ(c.n_layer, o.shape.n_layer);
    EXPECT_EQ(c.n_nextn, o.shape.n_mtp);
    EXPECT_EQ(c.n_embd, 256);
    EXPECT_EQ(c.head_dim, 64);
    EXPECT_EQ(c.n_expert, 8);
    EXPECT_EQ(c.n_vocab, 263);
    EXPECT_EQ(m->file().require_string("general.name"), std::string("synth-") + arch);
  }
}

TEST(Synth, Step35LayerStructureMatchesTheGoldenFile) {
  SynthOptions o;
  o.shape = synth_default_shape("step35");
  std::string path = temp("step35-layers.gguf");
  synth_model(o, path);
  auto ours = Model::load(path);
  auto golden = Model::load(std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-step35-s11.gguf");
  ASSERT_EQ(ours->config().layers.size(), golden->config().layers.size());
  for (size_t il = 0; il < ours->config().layers.size(); ++il) {
    SCOPED_TRACE(il);
    const LayerConfig &a = ours->config().layers[il], &b = golden->config().layers[il];
    EXPECT_EQ(a.n_head, b.n_head);
    EXPECT_EQ(a.n_head_kv, b.n_head_kv);
    EXPECT_EQ(a.sliding, b.sliding);
    EXPECT_EQ(a.rope.n_rot, b.rope.n_rot);
    EXPECT_EQ(a.rope.use_freq_factors, b.rope.use_freq_factors);
    EXPECT_EQ(a.moe, b.moe);
    EXPECT_EQ(a.shared_expert, b.shared_expert);
    EXPECT_EQ(a.mtp, b.mtp);
  }
  EXPECT_EQ(ours->config().router, RouterKind::Sigmoid);
  EXPECT_FLOAT_EQ(ours->config().expert_weights_scale, 3.f);
  // Same tensor set as the converter writes.
  std::vector<std::string> a, b;
  for (const auto& t : ours->file().tensors()) a.emplace_back(t.name);
  for (const auto& t : golden->file().tensors()) b.emplace_back(t.name);
  EXPECT_EQ(a, b);
  // Clamps on the last two trunk layers, MTP layers unclamped.
  const auto& L = ours->config().layers;
  EXPECT_EQ(L[4].clamp_exp, 7.f);
  EXPECT_EQ(L[5].clamp_shexp, 16.f);
  EXPECT_EQ(L[3].clamp_exp, 0.f);
  EXPECT_EQ(L[6].clamp_shexp, 0.f);
}

TEST(Synth, BuiltInVocabulary) {
  std::string path = temp("vocab-builtin.gguf");
  synth_model(small("qwen3moe"), path);
  auto f = GgufFile::open(path);
  const auto& tokens = *f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 263u);
  EXPECT_EQ(tokens[0], "!");
  EXPECT_EQ(tokens[188], "\xc4\x80");  // byte 0 is U+0100 in GPT-2's byte alphabet
  EXPECT_EQ(tokens[256], "<|im_start|>");
  EXPECT_EQ(tokens[257], "<|im_end|>");
  EXPECT_EQ(tokens[262], "</think>");
  auto types = *f->get_int_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types[0], 1);
  EXPECT_EQ(types[256], 3);
  EXPECT_EQ(types[259], 4);
  EXPECT_EQ(f->require_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->require_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_TRUE(f->get_string_array("tokenizer.ggml.merges")->empty());
  EXPECT_EQ(f->require_int("tokenizer.ggml.eos_token_id"), 257);
  std::set<std::string_view> unique(tokens.begin(), tokens.end());
  EXPECT_EQ(unique.size(), tokens.size());
}

TEST(Synth, VocabularyCopiedFromAnotherFile) {
  SynthOptions o = small("qwen3moe", TensorType::Q8_0);
  o.shape.n_embd = 32, o.shape.n_head = 2, o.shape.n_head_kv = 1, o.shape.head_dim = 16, o.shape.n_ff_exp = 32;
  o.vocab_path = std::string(FLASHFIX_SHARED_DIR) + "/vocab/ggml-vocab-gpt-2.gguf";
  std::string path = temp("vocab-gpt2.gguf");
  synth_model(o, path);
  auto m = Model::load(path);
  EXPECT_EQ(m->config().n_vocab, 50257);
  auto vocab = GgufFile::open(o.vocab_path);
  for (const auto& kv : vocab->metadata()) {
    if (!kv.key.starts_with("tokenizer.")) continue;
    SCOPED_TRACE(std::string(kv.key));
    const GgufValue* v = m->file().find(kv.key);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(same_value(*v, kv.value));
  }
  EXPECT_EQ(m->file().require_string("general.architecture"), "qwen3moe");
}

TEST(Synth, DeterministicPerSeed) {
  SynthOptions o = small("step35", TensorType::Q4_K);
  synth_model(o, temp("seed-a.gguf"));
  synth_model(o, temp("seed-b.gguf"));
  o.seed = 2;
  synth_model(o, temp("seed-c.gguf"));
  EXPECT_EQ(slurp(temp("seed-a.gguf")), slurp(temp("seed-b.gguf")));
  EXPECT_NE(slurp(temp("seed-a.gguf")), slurp(temp("seed-c.gguf")));
}

TEST(Synth, WeightStatistics) {
  std::string path = temp("stats.gguf");
  synth_model(small("step35"), path);
  auto f = GgufFile::open(path);
  auto stats = [&](const char* name) {
    const GgufTensor* t = f->find_tensor(name);
    const float* x = reinterpret_cast<const float*>(t->data);
    double s = 0, s2 = 0;
    int64_t n = t->n_elements();
    for (int64_t k = 0; k < n; ++k) s += x[k], s2 += double(x[k]) * x[k];
    return std::pair{s / double(n), std::sqrt(s2 / double(n) - (s / double(n)) * (s / double(n)))};
  };
  auto [m_exp, sd_exp] = stats("blk.1.ffn_down_exps.weight");  // fan_in = n_ff_exp = 256
  EXPECT_NEAR(m_exp, 0.0, 0.002);
  EXPECT_NEAR(sd_exp, 1.0 / 16, 0.002);
  auto [m_norm, sd_norm] = stats("blk.1.attn_norm.weight");
  EXPECT_NEAR(m_norm, 1.0, 0.02);
  EXPECT_LT(sd_norm, 0.1);
  auto [m_bias, sd_bias] = stats("blk.1.exp_probs_b.bias");
  EXPECT_LT(std::fabs(m_bias) + sd_bias, 0.05);
  for (const auto& t : f->tensors()) EXPECT_EQ(t.type, TensorType::F32);
}

TEST(Synth, RandomBlocksHaveTheGaussiansMeanAndSpread) {
  for (TensorType type : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_0}) {
    SCOPED_TRACE(std::string(type_traits(type).name));
    SynthOptions o = small("step35", type);
    o.random_blocks = true;
    std::string path = temp("random-blocks.gguf");
    synth_model(o, path);
    auto f = GgufFile::open(path);
    const GgufTensor* t = f->find_tensor("blk.1.ffn_down_exps.weight");  // fan_in 256: std 1/16
    ASSERT_EQ(t->type, type);
    std::vector<float> x(size_t(t->n_elements()));
    dequantize_row(type, t->data, x.data(), t->n_elements());
    double s = 0, s2 = 0;
    for (float v : x) s += v, s2 += double(v) * v;
    const double n = double(x.size()), mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.004);
    EXPECT_NEAR(sd, 1.0 / 16, 0.004);
    // Norms and the router stay Gaussian F32, and the same seed gives the same bytes.
    EXPECT_EQ(f->find_tensor("blk.1.ffn_gate_inp.weight")->type, TensorType::F32);
    synth_model(o, temp("random-blocks-2.gguf"));
    EXPECT_EQ(slurp(path), slurp(temp("random-blocks-2.gguf")));
  }
}

TEST(Synth, TypesApplyToWeightsOnly) {
  for (TensorType type : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q5_K, TensorType::Q6_K}) {
    SCOPED_TRACE(std::string(type_traits(type).name));
    std::string path = temp("typed.gguf");
    synth_model(small("step35", type), path);
    auto m = Model::load(path);
    for (const auto& t : m->file().tensors())
      EXPECT_EQ(t.type, keeps_type(t.name, t.ne.size()) ? TensorType::F32 : type) << t.name;
    EXPECT_EQ(m->file().require_int("general.file_type"), llama_file_type(type));
  }
}

TEST(Synth, ImpossibleShapesAreRejectedWithAReason) {
  auto err = [](std::function<void(SynthOptions&)> edit, const char* arch = "qwen3moe") {
    SynthOptions o;
    o.shape = synth_default_shape(arch);
    edit(o);
    return validate_error(o);
  };
  EXPECT_EQ(err([](SynthOptions&) {}), "");
  EXPECT_EQ(err([](SynthOptions&) {}, "step35"), "");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.n_head = 3; }), "query heads 3 are not a multiple of --heads-kv 2");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.n_head_swa = 5; }, "step35"), "query heads 5");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.type = TensorType::Q4_K, o.shape.n_embd = 100; }),
              "--embd = 100 is not a multiple of the q4_K block size 256");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.type = TensorType::Q8_0, o.shape.n_ff_exp = 48; }),
              "--ff-exp = 48 is not a multiple of the q8_0 block size 32");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.type = TensorType::Q6_K, o.shape.n_ff = 300; }, "step35"),
              "--ff = 300 is not a multiple of the q6_K block size 256");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.type = TensorType::Q5_K, o.shape.head_dim = 96; }),
              "--heads x --head-dim = 384 is not a multiple");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.head_dim = 6; }, "step35"), "--head-dim 6 must be a multiple of 4");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.n_expert_used = 9; }), "--experts-used = 9 is out of range (1..8)");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.n_mtp = 1; }), "--mtp = 1 is out of range (0..0)");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.n_dense = 7; }, "step35"), "--dense-layers = 7");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.n_layer = 0; }), "--layers = 0");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.type = TensorType::Q4_0; }), "--type q4_0 cannot be written");
  EXPECT_CONTAINS(err([](SynthOptions& o) { o.shape.arch = "llama"; }), "--arch must be qwen3moe or step35");
  EXPECT_THROW(synth_default_shape("llama"), std::invalid_argument);
  // All-dense step35 needs no experts.
  EXPECT_EQ(err([](SynthOptions& o) { o.shape.n_dense = o.shape.n_layer, o.shape.n_expert = o.shape.n_expert_used = 0; }, "step35"), "");
}

TEST(Synth, PresetsMatchTheRealModels) {
  SynthShape q = synth_preset("qwen3-30b-a3b");
  EXPECT_EQ(q.arch, "qwen3moe");
  EXPECT_EQ(std::tie(q.n_layer, q.n_embd, q.n_head, q.n_head_kv, q.head_dim), std::tuple(48, 2048, 32, 4, 128));
  EXPECT_EQ(std::tie(q.n_expert, q.n_expert_used, q.n_ff_exp), std::tuple(128, 8, 768));
  EXPECT_EQ(q.rope_base, 1e7f);
  SynthShape s = synth_preset("step3.5-flash");
  EXPECT_EQ(s.arch, "step35");
  EXPECT_EQ(std::tie(s.n_layer, s.n_embd, s.n_head, s.n_head_swa, s.n_head_kv, s.head_dim), std::tuple(45, 4096, 64, 96, 8, 128));
  EXPECT_EQ(std::tie(s.n_expert, s.n_expert_used, s.n_ff_exp, s.n_ff_shexp, s.n_ff), std::tuple(288, 8, 1280, 1280, 11264));
  EXPECT_EQ(std::tie(s.n_dense, s.n_mtp, s.swa_window), std::tuple(3, 3, 512));
  EXPECT_THROW(synth_preset("llama-7b"), std::invalid_argument);
  EXPECT_THROW(synth_preset("qwen3-30b-a3b", 0), std::invalid_argument);
  EXPECT_THROW(synth_preset("qwen3-30b-a3b", 1.5), std::invalid_argument);
  // Every scale keeps the shape buildable in every type.
  for (auto name : synth_preset_names())
    for (double scale : {1.0, 0.5, 0.3, 0.25, 0.1, 0.03, 0.001})
      for (TensorType type : {TensorType::F32, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K}) {
        SynthOptions o;
        o.shape = synth_preset(name, scale);
        o.type = type;
        EXPECT_EQ(validate_error(o), "") << name << " x" << scale << " " << type_traits(type).name;
        EXPECT_LE(o.shape.n_expert_used, o.shape.n_expert);
      }
  SynthShape quarter = synth_preset("qwen3-30b-a3b", 0.25);
  EXPECT_EQ(std::tie(quarter.n_layer, quarter.n_embd, quarter.n_expert, quarter.n_ff_exp), std::tuple(12, 512, 32, 256));
}

TEST(Synth, ScaledPresetsLoad) {
  for (auto name : synth_preset_names()) {
    SCOPED_TRACE(std::string(name));
    SynthOptions o;
    o.shape = synth_preset(name, 0.02);
    o.type = TensorType::Q8_0;
    std::string path = temp("preset.gguf");
    synth_model(o, path);
    auto m = Model::load(path);
    EXPECT_EQ(m->config().n_layer, o.shape.n_layer);
    EXPECT_EQ(m->config().n_nextn, o.shape.n_mtp);
    EXPECT_EQ(m->config().context_length, 262144);
  }
}

// ---- quantize -----------------------------------------------------------------------------------

TEST(Quantize, RoundTripWithinErrorBound) {
  for (const char* arch : {"qwen3moe", "step35"}) {
    std::string f32_path = temp(std::string(arch) + "-f32.gguf");
    synth_model(small(arch), f32_path);
    auto src = GgufFile::open(f32_path);
    for (TensorType type : {TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
      const std::string tname(type_traits(type).name);
      SCOPED_TRACE(std::string(arch) + " " + tname);
      std::string out = temp(std::string(arch) + "-" + tname + ".gguf");
      QuantizeStats st = quantize_model(f32_path, out, type, nullptr);
      EXPECT_EQ(st.misfit, 0);
      EXPECT_LT(st.bytes_out, st.bytes_in);
      auto q = Model::load(out);
      const GgufFile& dst = q->file();

      // Metadata: same keys in the same order with the same values, apart from the two quantize sets.
      ASSERT_EQ(dst.metadata().size(), src->metadata().size() + 1);  // + quantization_version
      for (size_t k = 0; k < src->metadata().size(); ++k) {
        const GgufKV &a = src->metadata()[k], &b = dst.metadata()[k];
        EXPECT_EQ(a.key, b.key);
        if (a.key != "general.file_type") {
          EXPECT_TRUE(same_value(a.value, b.value)) << a.key;
        }
      }
      EXPECT_EQ(dst.require_int("general.file_type"), llama_file_type(type));
      EXPECT_EQ(dst.require_int("general.quantization_version"), 2);

      ASSERT_EQ(dst.tensors().size(), src->tensors().size());
      int converted = 0;
      const double bound = relative_error_bound(type);
      for (size_t k = 0; k < src->tensors().size(); ++k) {
        const GgufTensor &a = src->tensors()[k], &b = dst.tensors()[k];
        ASSERT_EQ(a.name, b.name);
        ASSERT_EQ(a.ne, b.ne);
        if (keeps_type(a.name, a.ne.size())) {  // norms, routers, biases, rope_freqs: bit-identical F32
          EXPECT_EQ(b.type, TensorType::F32) << a.name;
          EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
          continue;
        }
        ASSERT_EQ(b.type, type) << a.name;
        ++converted;
        const int64_t n = a.n_elements(), block = type_traits(type).block_elems;
        std::vector<float> back(static_cast<size_t>(a.ne[0]));
        const float* x = reinterpret_cast<const float*>(a.data);
        double worst = 0;
        for (int64_t r = 0; r < n / a.ne[0]; ++r) {
          dequantize_row(type, b.data + size_t(r) * b.row_bytes(), back.data(), a.ne[0]);
          for (int64_t b0 = 0; b0 < a.ne[0]; b0 += block) {
            const float* xb = x + r * a.ne[0] + b0;
            double amax = 0, err = 0;
            for (int64_t j = 0; j < block; ++j) amax = std::max(amax, double(std::fabs(xb[j])));
            for (int64_t j = 0; j < block; ++j) err = std::max(err, double(std::fabs(xb[j] - back[size_t(b0 + j)])));
            worst = std::max(worst, err / amax);
          }
        }
        EXPECT_LE(worst, bound) << a.name;
      }
      EXPECT_EQ(converted, st.converted);
      EXPECT_EQ(st.kept + st.converted, int(src->tensors().size()));
    }
  }
}

TEST(Quantize, MisfitRowsAreKeptAndReported) {
  // n_embd 96 fits q8_0 blocks but not q4_K's 256; the expert down projection (rows of 256) does.
  SynthOptions o = small("qwen3moe");
  o.shape.n_embd = 96, o.shape.n_head = 2, o.shape.head_dim = 48;
  std::string in = temp("misfit-f32.gguf"), out = temp("misfit-q4_K.gguf");
  synth_model(o, in);
  std::FILE* log = std::tmpfile();
  QuantizeStats st = quantize_model(in, out, TensorType::Q4_K, log);
  std::rewind(log);
  std::string text;
  for (int ch; (ch = std::fgetc(log)) != EOF;) text += char(ch);
  std::fclose(log);
  EXPECT_EQ(st.converted, 1);
  EXPECT_GT(st.misfit, 0);
  EXPECT_CONTAINS(text, "blk.0.attn_q.weight: row of 96 is not a multiple of the q4_K block size 256, kept as f32");
  auto q = Model::load(out);
  EXPECT_EQ(q->file().find_tensor("blk.0.ffn_down_exps.weight")->type, TensorType::Q4_K);
  EXPECT_EQ(q->file().find_tensor("blk.0.ffn_up_exps.weight")->type, TensorType::F32);
}

TEST(Quantize, QuantizedTensorsAreCopiedAndF16Works) {
  std::string golden = std::string(FLASHFIX_SHARED_DIR) + "/golden/tiny-qwen3moe-s11-Q4_K_M.gguf";
  std::string out = temp("requant.gguf");
  QuantizeStats st = quantize_model(golden, out, TensorType::Q8_0, nullptr);
  EXPECT_EQ(st.converted, 0);
  EXPECT_EQ(st.bytes_in, st.bytes_out);
  auto a = GgufFile::open(golden), b = GgufFile::open(out);
  for (size_t k = 0; k < a->tensors().size(); ++k) {
    EXPECT_EQ(a->tensors()[k].type, b->tensors()[k].type);
    EXPECT_EQ(std::memcmp(a->tensors()[k].data, b->tensors()[k].data, a->tensors()[k].nbytes), 0);
  }
  EXPECT_EQ(b->require_int("general.file_type"), 7);

  std::string f16 = temp("f16.gguf");
  synth_model(small("qwen3moe"), temp("f16-src.gguf"));
  quantize_model(temp("f16-src.gguf"), f16, TensorType::F16, nullptr);
  auto m = Model::load(f16);
  EXPECT_EQ(m->file().find_tensor("token_embd.weight")->type, TensorType::F16);
  EXPECT_EQ(m->file().require_int("general.file_type"), 1);
  EXPECT_THROW(quantize_model(temp("f16-src.gguf"), f16, TensorType::Q4_0, nullptr), std::invalid_argument);
}

// ---- CLI ----------------------------------------------------------------------------------------

TEST(Cli, SynthQuantizeInfo) {
  std::string m = temp("cli.gguf"), q = temp("cli-q6.gguf");
  EXPECT_EQ(run_cli("synth --arch step35 --layers 2 --mtp 1 --experts 4 --type q8_0 --seed 3 --out " + m).status, 0);
  CliResult r = run_cli("quantize " + m + " " + q + " q6_K");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_CONTAINS(r.err, "0 tensors converted to q6_K");  // q8_0 weights are copied
  EXPECT_EQ(run_cli("info --model " + q).status, 0);
  EXPECT_EQ(run_cli("synth --preset step3.5-flash --scale 0.02 --out " + m).status, 0);
  EXPECT_EQ(Model::load(m)->config().n_layer, 1);
}

TEST(Cli, UsageErrorsExit2WithAMessage) {
  const std::pair<std::string, std::string> cases[] = {
      {"synth --out x.gguf", "missing required option --arch"},
      {"synth --arch qwen3moe", "missing required option --out"},
      {"synth --arch llama --out x.gguf", "--arch must be qwen3moe or step35"},
      {"synth --arch qwen3moe --heads 3 --out x.gguf", "query heads 3 are not a multiple of --heads-kv 2"},
      {"synth --arch qwen3moe --type q4_K --embd 100 --out x.gguf", "--embd = 100 is not a multiple of the q4_K block size"},
      {"synth --arch qwen3moe --type q9 --out x.gguf", "unknown --type 'q9'"},
      {"synth --arch qwen3moe --layers two --out x.gguf", "--layers expects an integer"},
      {"synth --preset gpt-5 --out x.gguf", "unknown preset 'gpt-5'"},
      {"synth --preset qwen3-30b-a3b --scale 2 --out x.gguf", "--scale must be in (0, 1]"},
      {"synth --arch qwen3moe --scale 0.5 --out x.gguf", "--scale needs --preset"},
      {"synth --preset qwen3-30b-a3b --arch step35 --out x.gguf", "contradicts preset"},
      {"synth --arch qwen3moe --bogus 1 --out x.gguf", "unknown option --bogus"},
      {"quantize a.gguf b.gguf", "expected IN.gguf OUT.gguf TYPE, got 2 arguments"},
      {"quantize a.gguf b.gguf q4_0", "TYPE must be q8_0, q4_K, q5_K, q6_K, f16 or bf16, got 'q4_0'"},
      {"quantize a.gguf b.gguf q4_K --fast", "unknown option --fast"},
  };
  for (const auto& [args, message] : cases) {
    CliResult r = run_cli(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_CONTAINS(r.err, message) << args;
  }
  CliResult missing = run_cli("quantize /nonexistent.gguf " + temp("never.gguf") + " q8_0");
  EXPECT_EQ(missing.status, 1);
  EXPECT_CONTAINS(missing.err, "/nonexistent.gguf: cannot open");
}
