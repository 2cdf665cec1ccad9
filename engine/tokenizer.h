// Tokenizer built from a GGUF's `tokenizer.ggml.*` metadata, reproducing llama.cpp's tokenization
// exactly: byte-level BPE (`gpt2`, with the regex pre-tokenizer named by `tokenizer.ggml.pre`) and
// SentencePiece-style score BPE (`llama`, with <0xXX> byte fallback).
//
// The Tokenizer copies everything it needs out of the GgufFile, so it may outlive it. It is
// immutable after construction; encode/decode may run concurrently from several threads.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace flashfix {

class GgufFile;

class Tokenizer {
 public:
  enum class Kind { Bpe, Spm };
  // Values of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
  enum TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

  // Throws std::runtime_error naming the problem when the vocabulary is missing, inconsistent or
  // uses an unsupported model / pre-tokenizer.
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
  ~Tokenizer();

  // parse_special: control tokens written in the text (e.g. "<|im_end|>") become their ids; when false
  // they are plain text. User-defined tokens are always matched, as llama.cpp (and HF) do.
  // add_special: add BOS / EOS as the model asks (tokenizer.ggml.add_bos_token / add_eos_token).
  std::vector<int32_t> encode(std::string_view text, bool parse_special, bool add_special) const;

  // The bytes a token stands for. Control and unknown tokens render as their text, or as nothing
  // when render_special is false.
  std::string token_to_piece(int32_t id, bool render_special = true) const;
  // Concatenated pieces; for SentencePiece vocabularies the space added by add_space_prefix is removed
  // from the first token, so decode(encode(s)) == s for valid UTF-8.
  std::string decode(std::span<const int32_t> ids, bool render_special = true) const;

  Kind kind() const { return kind_; }
  std::string_view pre() const { return pre_; }
  int32_t n_vocab() const { return int32_t(tokens_.size()); }
  std::string_view token_text(int32_t id) const { return tokens_.at(size_t(id)); }
  TokenType token_type(int32_t id) const { return types_.at(size_t(id)); }
  std::optional<int32_t> bos() const { return opt(bos_); }
  std::optional<int32_t> eos() const { return opt(eos_); }
  std::optional<int32_t> eot() const { return opt(eot_); }
  std::optional<int32_t> pad() const { return opt(pad_); }
  bool add_bos_default() const { return add_bos_; }
  bool add_eos_default() const { return add_eos_; }
  // End of generation: eos, eot, eom, FIM pad/repo/sep and the tokens llama.cpp recognises by text
  // (<|im_end|>, <|endoftext|>, <|eot_id|>, <end_of_turn>, <|end|>, ...).
  bool is_eog(int32_t id) const { return eog_.contains(id); }
  std::optional<int32_t> find_token(std::string_view text) const;
  std::string_view chat_template() const { return chat_template_; }

 private:
  struct Regex;
  struct Fragment { int32_t token; size_t offset, length; };  // token < 0: raw text
  struct TrieNode { std::vector<std::pair<uint8_t, int32_t>> next; int32_t special = -1; };

  Tokenizer() = default;
  void load(const GgufFile& file);
  void load_merges(const GgufFile& file);
  void finish_specials(std::string_view model_name);
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  static std::optional<int32_t> opt(int32_t id) { return id >= 0 ? std::optional<int32_t>(id) : std::nullopt; }

  Kind kind_ = Kind::Bpe;
  std::string pre_;
  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string_view, int32_t> text_to_id_;  // views into tokens_
  std::vector<std::string> pieces_;                           // token_to_piece with render_special

  // BPE: merges keyed on (left id << 32 | right id) -> (rank, merged id); byte -> token of its GPT-2 char.
  struct Merge { int32_t rank, result; };
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_token_[256];
  std::vector<int32_t> byte_fallback_[256];  // when a byte's char is not a token (llama.cpp's per-byte lookup)
  std::vector<std::unique_ptr<Regex>> regexes_;
  bool ignore_merges_ = false;
  // SPM: byte -> <0xXX> token.
  int32_t spm_byte_token_[256];
  bool add_space_prefix_ = false;

  // Special tokens, longest first (llama.cpp's partition order), with per-token strip flags.
  std::vector<int32_t> specials_;
  std::vector<uint8_t> lstrip_, rstrip_;
  std::vector<TrieNode> trie_;
  std::array<int32_t, 256> root_;  // first byte -> trie node, the hot path of partition()

  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, pad_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false;
  std::unordered_set<int32_t> eog_;
  std::string chat_template_;
};

}  // namespace flashfix
