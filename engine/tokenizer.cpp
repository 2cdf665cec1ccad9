#include "engine/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <queue>
#include <stdexcept>

#include "engine/gguf.h"

namespace flashfix {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error("tokenizer: " + msg); }

// ---- UTF-8 -------------------------------------------------------------------------------------

// Sequence length from the lead byte alone (llama.cpp's unicode_len_utf8; continuation bytes count 1).
size_t utf8_len(uint8_t c) {
  static constexpr uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lut[c >> 4];
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
}

// llama.cpp decodes BPE text leniently (overlong forms accepted) and turns every byte that does not
// start a well-formed sequence into U+FFFD before pre-tokenizing. Doing the same here both matches its
// output and hands PCRE2 valid UTF-8. Surrogates and code points above U+10FFFF, which llama.cpp cannot
// re-encode either, also become U+FFFD.
std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  auto cont = [&](size_t k) { return k < n && (uint8_t(s[k]) & 0xC0) == 0x80; };
  for (size_t i = 0; i < n;) {
    const uint8_t c = uint8_t(s[i]);
    if (c < 0x80) {
      out += char(c);
      i++;
      continue;
    }
    uint32_t cp = 0;
    size_t len = 0;
    if ((c & 0xE0) == 0xC0 && cont(i + 1)) {
      cp = (c & 0x1Fu) << 6 | (uint8_t(s[i + 1]) & 0x3Fu), len = 2;
    } else if ((c & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
      cp = (c & 0x0Fu) << 12 | (uint8_t(s[i + 1]) & 0x3Fu) << 6 | (uint8_t(s[i + 2]) & 0x3Fu), len = 3;
    } else if ((c & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      cp = (c & 0x07u) << 18 | (uint8_t(s[i + 1]) & 0x3Fu) << 12 | (uint8_t(s[i + 2]) & 0x3Fu) << 6 |
           (uint8_t(s[i + 3]) & 0x3Fu);
      len = 4;
    }
    if (len == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
    append_utf8(out, cp);
    i += len ? len : 1;
  }
  return out;
}

// GPT-2's byte <-> printable code point mapping: printable Latin-1 bytes map to themselves, the rest
// to 256, 257, ... in byte order.
const std::array<uint32_t, 256>& gpt2_byte_to_cp() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t extra = 256;
    for (uint32_t b = 0; b < 256; b++) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : extra++;
    }
    return t;
  }();
  return table;
}

// Decodes a byte-level BPE token text back to bytes. Code points outside the mapping (not produced by
// converters) are kept as UTF-8 rather than dropped.
std::string gpt2_decode(std::string_view text) {
  static const std::unordered_map<uint32_t, uint8_t> cp_to_byte = [] {
    std::unordered_map<uint32_t, uint8_t> m;
    for (uint32_t b = 0; b < 256; b++) m[gpt2_byte_to_cp()[b]] = uint8_t(b);
    return m;
  }();
  std::string out;
  const std::string clean = sanitize_utf8(text);
  for (size_t i = 0; i < clean.size();) {
    const size_t len = utf8_len(uint8_t(clean[i]));
    uint32_t cp = uint8_t(clean[i]);
    if (len == 2) cp = (cp & 0x1F) << 6 | (uint8_t(clean[i + 1]) & 0x3F);
    if (len == 3) cp = (cp & 0x0F) << 12 | (uint8_t(clean[i + 1]) & 0x3F) << 6 | (uint8_t(clean[i + 2]) & 0x3F);
    if (len == 4)
      cp = (cp & 0x07) << 18 | (uint8_t(clean[i + 1]) & 0x3F) << 12 | (uint8_t(clean[i + 2]) & 0x3F) << 6 |
           (uint8_t(clean[i + 3]) & 0x3F);
    auto it = cp_to_byte.find(cp);
    if (it != cp_to_byte.end()) out += char(it->second);
    else out.append(clean, i, len);
    i += len;
  }
  return out;
}

bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// ---- pre-tokenizers ----------------------------------------------------------------------------

// The regex lists of llama.cpp's llama_vocab pre-tokenizer types, in PCRE2 syntax. llama.cpp runs most
// of them through std::regex over a "collapsed" text where each non-ASCII code point stands for its
// Unicode category; PCRE2 with UCP over the real text gives the same splits, with two adjustments:
// - its \s is the Unicode White_Space table; PCRE2's UCP \s varies by version (10.42 also counts
//   U+180E), so \s is spelled out, see expand_whitespace();
// - its collapsed \p{S} forgets ASCII '~', so deepseek-v3 treats '~' as neither P nor S.
struct PreTokenizer {
  std::vector<std::string_view> names;
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  // a pre-token that is itself a token skips merging (llama3)
  bool add_bos = false;        // default for add_bos_token
};

constexpr std::string_view kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
constexpr std::string_view kCjk = R"re([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";

const std::vector<PreTokenizer>& pre_tokenizers() {
  static const std::vector<PreTokenizer> table = {
      {{"default"}, {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", R"re([0-9][0-9][0-9])re"}},
      {{"gpt-2", "phi-2", "mpt", "olmo", "jais"}, {kGpt2}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, {R"re(\p{N})re", kGpt2}},
      {{"llama3", "llama-v3", "llama-bpe"},
       {R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       true, true},
      {{"qwen2", "deepseek-r1-qwen"},
       {R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      {{"deepseek-llm"},
       {R"re([\r\n])re",
        R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re",
        R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re", R"re(\s+$)re", kCjk,
        R"re(\p{N}+)re"}},
      {{"deepseek-coder"}, {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjk, R"re(\p{N})re"}},
      {{"deepseek-v3"},
       {R"re(\p{N}{1,3})re", R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
        R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|(?:~|[^\r\n\p{L}\p{P}\p{S}])?[\p{L}\p{M}]+| ?(?:(?!~)[\p{P}\p{S}])+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
  };
  return table;
}

// Spells \s and \S as llama.cpp's White_Space set (outside and inside character classes).
std::string expand_whitespace(std::string_view re) {
  static constexpr std::string_view ws =
      R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); i++) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      const char d = re[++i];
      if (d == 's') out += in_class ? std::string(ws) : "[" + std::string(ws) + "]";
      else if (d == 'S' && !in_class) out += "[^" + std::string(ws) + "]";
      else out += {c, d};
      continue;
    }
    if (c == '[') in_class = true;
    else if (c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

struct Tokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

// ---- loading -----------------------------------------------------------------------------------

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->load(file);
  return t;
}

Tokenizer::~Tokenizer() = default;

void Tokenizer::load(const GgufFile& f) {
  const auto model = f.get_string("tokenizer.ggml.model");
  if (!model) fail("missing tokenizer.ggml.model");
  if (*model == "gpt2") kind_ = Kind::Bpe;
  else if (*model == "llama") kind_ = Kind::Spm;
  else fail("unsupported tokenizer.ggml.model '" + std::string(*model) + "' (supported: gpt2, llama)");

  const auto* tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty()) fail("missing or empty tokenizer.ggml.tokens");
  if (tokens->size() > size_t(INT32_MAX)) fail("tokenizer.ggml.tokens is too large");
  const size_t n = tokens->size();
  tokens_.assign(tokens->begin(), tokens->end());

  types_.assign(n, Normal);
  if (auto types = f.get_int_array("tokenizer.ggml.token_type")) {
    if (types->size() != n)
      fail("tokenizer.ggml.token_type has " + std::to_string(types->size()) + " entries but tokenizer.ggml.tokens has " +
           std::to_string(n));
    for (size_t i = 0; i < n; i++) types_[i] = (*types)[i] >= 0 && (*types)[i] <= Byte ? TokenType((*types)[i]) : Undefined;
  }
  scores_.assign(n, 0.0f);
  if (auto scores = f.get_float_array("tokenizer.ggml.scores")) {
    if (scores->size() != n)
      fail("tokenizer.ggml.scores has " + std::to_string(scores->size()) + " entries but tokenizer.ggml.tokens has " +
           std::to_string(n));
    scores_ = std::move(*scores);
  }
  text_to_id_.reserve(n);
  for (size_t i = 0; i < n; i++) text_to_id_[tokens_[i]] = int32_t(i);  // duplicates: the last id wins, as in llama.cpp

  auto special_id = [&](const char* key, int32_t fallback) -> int32_t {
    const auto v = f.get_int(key);
    if (!v) return fallback < int32_t(n) ? fallback : -1;
    if (*v == -1) return -1;
    if (*v < 0 || *v >= int64_t(n))
      fail(std::string(key) + " = " + std::to_string(*v) + " is outside the vocabulary (" + std::to_string(n) + " tokens)");
    return int32_t(*v);
  };
  // SentencePiece vocabularies have conventional ids that llama.cpp assumes when the keys are absent.
  const bool spm = kind_ == Kind::Spm;
  bos_ = special_id("tokenizer.ggml.bos_token_id", spm ? 1 : -1);
  eos_ = special_id("tokenizer.ggml.eos_token_id", spm ? 2 : -1);
  unk_ = special_id("tokenizer.ggml.unknown_token_id", spm ? 0 : -1);
  eot_ = special_id("tokenizer.ggml.eot_token_id", -1);
  eom_ = special_id("tokenizer.ggml.eom_token_id", -1);
  pad_ = special_id("tokenizer.ggml.padding_token_id", -1);

  add_bos_ = spm;
  add_space_prefix_ = spm;
  if (kind_ == Kind::Bpe) {
    pre_ = std::string(f.get_string("tokenizer.ggml.pre").value_or("default"));  // llama.cpp's fallback too
    const PreTokenizer* pre = nullptr;
    std::string known;
    for (const auto& p : pre_tokenizers()) {
      for (auto name : p.names) {
        if (name == pre_) pre = &p;
        known += (known.empty() ? "" : ", ") + std::string(name);
      }
    }
    if (!pre) fail("unknown pre-tokenizer '" + pre_ + "' (tokenizer.ggml.pre); supported: " + known);
    ignore_merges_ = pre->ignore_merges;
    add_bos_ = pre->add_bos;
    for (auto re : pre->regexes) {
      const std::string pattern = expand_whitespace(re);
      int err = 0;
      PCRE2_SIZE at = 0;
      auto rx = std::make_unique<Regex>();
      rx->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                               PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &at, nullptr);
      if (!rx->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        fail("pre-tokenizer '" + pre_ + "' regex does not compile at " + std::to_string(at) + ": " +
             reinterpret_cast<const char*>(msg));
      }
      pcre2_jit_compile(rx->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
      regexes_.push_back(std::move(rx));
    }
    load_merges(f);
  }
  add_bos_ = f.get_bool("tokenizer.ggml.add_bos_token").value_or(add_bos_);
  add_eos_ = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  add_space_prefix_ = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(add_space_prefix_);
  if (add_bos_ && bos_ < 0) fail("tokenizer.ggml.add_bos_token is set but there is no bos_token_id");
  if (add_eos_ && eos_ < 0) fail("tokenizer.ggml.add_eos_token is set but there is no eos_token_id");
  chat_template_ = std::string(f.get_string("tokenizer.chat_template").value_or(""));

  for (int b = 0; b < 256; b++) {
    static constexpr char hex[] = "0123456789ABCDEF";
    const char name[] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
    auto id = find_token(name);
    if (!id) id = find_token(std::string(1, char(b)));
    spm_byte_token_[b] = id.value_or(unk_);
  }
  std::string model_name(f.get_string("general.name").value_or(""));
  std::transform(model_name.begin(), model_name.end(), model_name.begin(), [](unsigned char c) { return std::tolower(c); });
  finish_specials(model_name);
}

void Tokenizer::load_merges(const GgufFile& f) {
  const auto* merges = f.get_string_array("tokenizer.ggml.merges");
  if (!merges) fail("missing tokenizer.ggml.merges (required by the gpt2 model)");
  merges_.reserve(merges->size());
  for (size_t rank = 0; rank < merges->size(); rank++) {
    const std::string_view m = (*merges)[rank];
    const size_t space = m.find(' ', 1);  // from 1: a merge may start with a space character
    auto bad = [&](const std::string& why) {
      fail("tokenizer.ggml.merges[" + std::to_string(rank) + "] = '" + std::string(m) + "': " + why);
    };
    if (space == std::string_view::npos) bad("expected two tokens separated by a space");
    const std::string_view left = m.substr(0, space), right = m.substr(space + 1);
    const auto l = find_token(left), r = find_token(right);
    const auto merged = find_token(std::string(left) + std::string(right));
    if (!l) bad("unknown token '" + std::string(left) + "'");
    if (!r) bad("unknown token '" + std::string(right) + "'");
    if (!merged) bad("the merged token is not in the vocabulary");
    merges_.try_emplace(uint64_t(uint32_t(*l)) << 32 | uint32_t(*r), Merge{int32_t(rank), *merged});  // first rank wins
  }
  const auto& to_cp = gpt2_byte_to_cp();
  for (int b = 0; b < 256; b++) {
    std::string ch;
    append_utf8(ch, to_cp[b]);
    byte_token_[b] = find_token(ch).value_or(-1);
    // llama.cpp falls back to looking up each UTF-8 byte of an unknown symbol on its own.
    for (char c : ch)
      if (auto id = find_token(std::string(1, c))) byte_fallback_[b].push_back(*id);
  }
}

// llama.cpp recognises end-of-turn and FIM tokens by their text, marks them CONTROL (so they are no
// longer matched in plain text) and derives the end-of-generation set from them.
void Tokenizer::finish_specials(std::string_view model_name) {
  auto find_any = [&](std::initializer_list<std::string_view> texts) -> int32_t {
    for (int32_t id = 0; id < n_vocab(); id++)
      for (auto t : texts)
        if (tokens_[id] == t) return id;
    return -1;
  };
  auto detect = [&](int32_t& slot, std::initializer_list<std::string_view> texts) {
    if (slot < 0 && (slot = find_any(texts)) >= 0) types_[slot] = Control;
  };
  detect(eot_, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>"});
  detect(eom_, {"<|eom_id|>"});
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  detect(fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>"});
  detect(fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>"});
  detect(fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>"});
  detect(fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"});
  detect(fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  detect(fim_sep, {"<|file_sep|>", "<file_sep>"});

  static constexpr std::string_view eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                                                   "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>",
                                                   "<|end_of_text|>", "<end_of_utterance>"};
  for (auto t : eog_texts)
    if (auto id = find_token(t)) {
      eog_.insert(*id);
      types_[*id] = Control;
    }
  for (int32_t id : {eos_, eot_, eom_, fim_pad, fim_rep, fim_sep})
    if (id >= 0) eog_.insert(id);

  for (int32_t id = 0; id < n_vocab(); id++)
    if ((types_[id] == Control || types_[id] == UserDefined || types_[id] == Unknown) && !tokens_[id].empty())
      specials_.push_back(id);
  std::stable_sort(specials_.begin(), specials_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });

  // Phi-3 eats the whitespace after its chat markers (llama.cpp sets RSTRIP by model name).
  lstrip_.assign(specials_.size(), 0);
  rstrip_.assign(specials_.size(), 0);
  if (model_name.find("phi-3") != std::string_view::npos || model_name.find("phi3") != std::string_view::npos) {
    for (size_t r = 0; r < specials_.size(); r++) {
      const std::string_view t = tokens_[specials_[r]];
      rstrip_[r] = t != "<unk>" && t != "<s>" && t != "<|endoftext|>";
    }
  }

  trie_.assign(1, TrieNode{});
  for (size_t r = 0; r < specials_.size(); r++) {
    int32_t node = 0;
    for (char c : tokens_[specials_[r]]) {
      auto& next = trie_[node].next;
      auto it = std::find_if(next.begin(), next.end(), [&](auto& e) { return e.first == uint8_t(c); });
      if (it != next.end()) {
        node = it->second;
      } else {
        next.emplace_back(uint8_t(c), int32_t(trie_.size()));
        node = int32_t(trie_.size());
        trie_.emplace_back();
      }
    }
    if (trie_[node].special < 0) trie_[node].special = int32_t(r);  // duplicate texts: the first in order
  }
  root_.fill(-1);
  for (auto [c, node] : trie_[0].next) root_[c] = node;

  pieces_.resize(tokens_.size());
  for (size_t id = 0; id < tokens_.size(); id++) {
    const std::string& text = tokens_[id];
    switch (types_[id]) {
      case Control:
      case Unknown:
      case UserDefined: pieces_[id] = text; break;
      case Normal:
        if (kind_ == Kind::Bpe) {
          pieces_[id] = gpt2_decode(text);
        } else {
          for (size_t p = 0; p < text.size();) {
            if (text.compare(p, 3, "\xE2\x96\x81") == 0) pieces_[id] += ' ', p += 3;  // ▁
            else pieces_[id] += text[p++];
          }
        }
        break;
      case Byte:
        if (kind_ == Kind::Spm && text.size() == 6 && text.starts_with("<0x"))
          pieces_[id] = char(std::stoi(text.substr(3, 2), nullptr, 16));
        break;
      default: break;  // unused / undefined tokens render as nothing, as in llama.cpp
    }
  }
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  auto it = text_to_id_.find(text);
  return it == text_to_id_.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

// ---- encoding ----------------------------------------------------------------------------------

// Splits the text around special tokens exactly as llama.cpp's tokenizer_st_partition: each special
// token in turn, longest first, is cut out of whatever raw text is left, left to right. Occurrences are
// found in one pass with a trie instead of one search per special token (vocabularies have thousands).
std::vector<Tokenizer::Fragment> Tokenizer::partition(std::string_view text, bool parse_special) const {
  const size_t n = text.size();
  std::vector<std::pair<int32_t, size_t>> hits;  // (rank in specials_, position)
  for (size_t p = 0; p < n; p++) {
    int32_t node = root_[uint8_t(text[p])];
    for (size_t q = p + 1; node >= 0; q++) {
      const int32_t r = trie_[node].special;
      if (r >= 0 && (parse_special || types_[specials_[r]] == UserDefined)) hits.emplace_back(r, p);
      if (q == n) break;
      const auto& next = trie_[node].next;
      auto it = std::find_if(next.begin(), next.end(), [&](auto& e) { return e.first == uint8_t(text[q]); });
      node = it == next.end() ? -1 : it->second;
    }
  }
  if (hits.empty()) return n ? std::vector<Fragment>{{-1, 0, n}} : std::vector<Fragment>{};
  std::sort(hits.begin(), hits.end());

  enum : uint8_t { Free, Taken, Stripped };
  std::vector<uint8_t> state(n, Free);
  std::vector<std::pair<size_t, int32_t>> found;  // (position, rank)
  for (size_t i = 0; i < hits.size();) {
    const int32_t r = hits[i].first;
    const size_t len = tokens_[specials_[r]].size();
    size_t resume = 0;  // llama.cpp searches on after the previous occurrence (and what it stripped)
    for (; i < hits.size() && hits[i].first == r; i++) {
      const size_t p = hits[i].second;
      if (p < resume || std::any_of(state.begin() + p, state.begin() + p + len, [](uint8_t s) { return s != Free; }))
        continue;
      std::fill(state.begin() + p, state.begin() + p + len, Taken);
      found.emplace_back(p, r);
      resume = p + len;
      if (lstrip_[r])
        for (size_t k = p; k > 0 && state[k - 1] == Free && is_space(text[k - 1]); k--) state[k - 1] = Stripped;
      if (rstrip_[r])
        for (size_t k = p + len; k < n && state[k] == Free && is_space(text[k]); k++) state[k] = Stripped, resume = k + 1;
    }
  }
  std::sort(found.begin(), found.end());

  std::vector<Fragment> out;
  size_t next_found = 0;
  for (size_t p = 0; p < n;) {
    if (state[p] == Free) {
      size_t e = p;
      while (e < n && state[e] == Free) e++;
      out.push_back({-1, p, e - p});
      p = e;
    } else if (state[p] == Stripped) {
      p++;
    } else {
      const int32_t id = specials_[found[next_found++].second];
      out.push_back({id, p, tokens_[id].size()});
      p += tokens_[id].size();
    }
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special, bool add_special) const {
  std::vector<int32_t> out;
  if (add_special && add_bos_) out.push_back(bos_);
  bool prev_special = true;
  for (const Fragment& f : partition(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(f.offset, f.length);
    if (kind_ == Kind::Bpe) {
      encode_bpe(raw, out);
      continue;
    }
    // SentencePiece: llama.cpp prefixes a space to the first raw fragment and to each one that follows
    // a special token, then spells spaces as U+2581.
    std::string s = add_space_prefix_ && prev_special ? "\xE2\x96\x81" : "";
    for (char c : raw) s += c == ' ' ? std::string_view("\xE2\x96\x81") : std::string_view(&c, 1);
    encode_spm(s, out);
    prev_special = false;
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

void Tokenizer::encode_bpe(std::string_view raw, std::vector<int32_t>& out) const {
  const std::string text = sanitize_utf8(raw);
  // Each regex splits every piece left by the previous one; text it does not match stays a piece.
  std::vector<std::pair<size_t, size_t>> pieces{{0, text.size()}}, next;
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  if (!md) throw std::bad_alloc();
  for (const auto& rx : regexes_) {
    next.clear();
    for (auto [off, len] : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + off);
      size_t done = 0, start = 0;
      while (start < len) {
        const int rc = pcre2_match(rx->code, subject, len, start, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(md);
          fail("regex match failed (PCRE2 error " + std::to_string(rc) + ")");
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {  // no pre-tokenizer regex matches empty, but never loop on one
          start = ov[0] + utf8_len(uint8_t(text[off + ov[0]]));
          continue;
        }
        if (ov[0] > done) next.emplace_back(off + done, ov[0] - done);
        next.emplace_back(off + ov[0], ov[1] - ov[0]);
        done = start = ov[1];
      }
      if (done < len) next.emplace_back(off + done, len - done);
    }
    pieces.swap(next);
  }
  pcre2_match_data_free(md);

  // Source text repeats words constantly; reuse the ids of a word already encoded in this call.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;
  for (auto [off, len] : pieces) {
    const std::string_view word(text.data() + off, len);
    auto [it, fresh] = seen.try_emplace(word, out.size(), 0);
    if (fresh) {
      bpe_word(word, out);
      it->second.second = out.size() - it->second.first;
    } else {
      for (size_t k = 0; k < it->second.second; k++) {
        const int32_t id = out[it->second.first + k];
        out.push_back(id);
      }
    }
  }
}

// Byte-level BPE over one pre-token: start from one symbol per byte and repeatedly apply the
// lowest-ranked merge (leftmost on ties), as llama.cpp's llm_tokenizer_bpe_session does.
void Tokenizer::bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    std::string mapped;
    for (char c : word) append_utf8(mapped, gpt2_byte_to_cp()[uint8_t(c)]);
    if (auto id = find_token(mapped)) {
      out.push_back(*id);
      return;
    }
  }
  constexpr int32_t kDead = -2;  // merged into its left neighbour; -1 is a byte with no token
  struct Sym { int32_t id, prev, next; };
  struct Cand { int32_t rank, left, right, left_id, right_id, result; };
  auto later = [](const Cand& a, const Cand& b) { return a.rank != b.rank ? a.rank > b.rank : a.left > b.left; };

  const int32_t n = int32_t(word.size());
  std::vector<Sym> sym(n);
  for (int32_t i = 0; i < n; i++) sym[i] = {byte_token_[uint8_t(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  std::priority_queue<Cand, std::vector<Cand>, decltype(later)> queue(later);
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
    auto it = merges_.find(uint64_t(uint32_t(sym[l].id)) << 32 | uint32_t(sym[r].id));
    if (it != merges_.end()) queue.push({it->second.rank, l, r, sym[l].id, sym[r].id, it->second.result});
  };
  for (int32_t i = 1; i < n; i++) consider(i - 1, i);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Sym& l = sym[c.left];
    Sym& r = sym[c.right];
    if (l.id != c.left_id || r.id != c.right_id) continue;  // a side has changed since this was queued
    l.id = c.result;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    r.id = kDead;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = sym[i].next) {
    if (sym[i].id >= 0) out.push_back(sym[i].id);
    else out.insert(out.end(), byte_fallback_[uint8_t(word[i])].begin(), byte_fallback_[uint8_t(word[i])].end());
  }
}

// SentencePiece BPE: merge adjacent symbols whose concatenation is a token, highest score first
// (leftmost on ties); symbols that end up as no token are spelled as <0xXX> byte tokens.
void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  struct Sym { uint32_t off, n; int32_t prev, next; };
  struct Cand { float score; int32_t left, right; uint32_t size; };
  auto later = [](const Cand& a, const Cand& b) { return a.score != b.score ? a.score < b.score : a.left > b.left; };

  std::vector<Sym> sym;
  for (size_t off = 0; off < text.size();) {
    const uint32_t len = uint32_t(std::min(utf8_len(uint8_t(text[off])), text.size() - off));
    const int32_t i = int32_t(sym.size());
    off += len;
    sym.push_back({uint32_t(off - len), len, i - 1, off == text.size() ? -1 : i + 1});
  }
  std::priority_queue<Cand, std::vector<Cand>, decltype(later)> queue(later);
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym[l].n + sym[r].n;
    if (auto id = find_token(text.substr(sym[l].off, size))) queue.push({scores_[*id], l, r, size});
  };
  for (int32_t i = 1; i < int32_t(sym.size()); i++) consider(i - 1, i);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Sym& l = sym[c.left];
    Sym& r = sym[c.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != c.size) continue;  // stale: a side has merged since
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  // Merged symbols are tokens by construction; only single characters can be missing from the vocabulary.
  for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    const std::string_view s = text.substr(sym[i].off, sym[i].n);
    if (auto id = find_token(s)) {
      out.push_back(*id);
      continue;
    }
    for (char c : s)
      if (spm_byte_token_[uint8_t(c)] >= 0) out.push_back(spm_byte_token_[uint8_t(c)]);
  }
}

// ---- decoding ----------------------------------------------------------------------------------

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) throw std::out_of_range("tokenizer: token id " + std::to_string(id) + " out of range");
  if (!render_special && (types_[id] == Control || types_[id] == Unknown)) return {};
  return pieces_[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (size_t k = 0; k < ids.size(); k++) {
    std::string piece = token_to_piece(ids[k], render_special);
    // Undo the space that encode() prefixed (llama.cpp strips it from the first token only).
    if (k == 0 && kind_ == Kind::Spm && add_space_prefix_ && piece.starts_with(' ')) piece.erase(0, 1);
    out += piece;
  }
  return out;
}

}  // namespace flashfix
