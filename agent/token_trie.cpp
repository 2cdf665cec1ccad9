#include "agent/token_trie.h"

#include <algorithm>
#include <string_view>

#include "agent/utf8.h"

namespace flashfix::agent {

namespace {

// Bytes that leave the state of text inside a value untouched (apart from its length): no quote,
// backslash or '<' (which could start a tag), no control character, only whole, valid UTF-8
// characters (the same rules the grammar's UTF-8 check applies). Most of a vocabulary is such text.
bool is_plain_text(std::string_view piece, bool json_string) {
  for (char ch : piece) {
    const uint8_t c = uint8_t(ch);
    if (c == '<' || (c < 0x20 && (json_string || (c != '\n' && c != '\t' && c != '\r')))) return false;
    if (json_string && (c == '"' || c == '\\')) return false;
  }
  return valid_utf8(piece);  // fragments of a character depend on the bytes before them
}

}  // namespace

void TokenTrie::build(Trie& trie, std::vector<int32_t> ids) {
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return pieces[size_t(a)] < pieces[size_t(b)]; });
  std::vector<uint32_t> open;  // the node at each depth - 1 of the current path
  std::string_view prev;
  auto close_to = [&](size_t depth) {
    for (; open.size() > depth; open.pop_back()) trie.nodes[open.back()].end = uint32_t(trie.nodes.size());
  };
  for (int32_t id : ids) {
    std::string_view piece = pieces[size_t(id)];
    size_t lcp = 0;
    while (lcp < prev.size() && lcp < piece.size() && prev[lcp] == piece[lcp]) ++lcp;
    close_to(lcp);
    for (size_t d = lcp; d < piece.size(); ++d) {
      open.push_back(uint32_t(trie.nodes.size()));
      trie.nodes.push_back({0, 0, 0, uint16_t(d + 1), uint8_t(piece[d])});
    }
    Node& node = trie.nodes[open.back()];
    if (node.tok_begin == node.tok_end) node.tok_begin = uint32_t(trie.tokens.size());
    trie.tokens.push_back(id);
    node.tok_end = uint32_t(trie.tokens.size());
    max_depth = std::max<uint16_t>(max_depth, uint16_t(piece.size()));
    prev = piece;
  }
  close_to(0);
}

std::shared_ptr<const TokenTrie> build_token_trie(const Tokenizer& tok) {
  auto trie = std::make_shared<TokenTrie>();
  const size_t n = size_t(tok.n_vocab());
  trie->pieces.resize(n);
  trie->plain.assign(n, 0);
  trie->json_text.assign(n, 0);
  trie->xml_text.assign(n, 0);
  std::vector<int32_t> all, json_special, xml_special;
  for (int32_t id = 0; id < int32_t(n); ++id) {
    const std::string& piece = trie->pieces[size_t(id)] = tok.token_to_piece(id, true);
    const auto type = tok.token_type(id);
    const bool special = type == Tokenizer::Control || type == Tokenizer::UserDefined || type == Tokenizer::Unknown ||
                         type == Tokenizer::Unused;
    if (special || tok.is_eog(id) || piece.empty()) continue;
    trie->plain[size_t(id)] = 1;
    all.push_back(id);
    if (is_plain_text(piece, true)) {
      trie->json_text[size_t(id)] = 1;
    } else {
      json_special.push_back(id);
    }
    if (is_plain_text(piece, false)) {
      trie->xml_text[size_t(id)] = 1;
    } else {
      xml_special.push_back(id);
    }
  }
  trie->build(trie->all, std::move(all));
  trie->build(trie->json_special, std::move(json_special));
  trie->build(trie->xml_special, std::move(xml_special));
  return trie;
}

}  // namespace flashfix::agent
