// The vocabulary as byte tries, for checking every token against the call grammar at once
// (call_constraint.h). Built once per tokenizer with build_token_trie(), shared by all constraints.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tokenizer.h"

namespace flashfix::agent {

// Token texts in byte tries stored in preorder: a node's subtree is the index range [node+1, end),
// so a walk that finds a prefix impossible skips the whole subtree with one jump. Besides the trie
// of all plain tokens, one per kind of value text holds only the tokens that are not plain text
// there; inside such text the plain ones are allowed wholesale and only the rest is walked.
class TokenTrie {
 public:
  struct Node {
    uint32_t end;                 // one past the last node of this subtree
    uint32_t tok_begin, tok_end;  // tokens whose text ends exactly here, in `tokens`
    uint16_t depth;               // bytes from the root (the root itself is implicit, depth 0)
    uint8_t byte;
  };
  struct Trie {
    std::vector<Node> nodes;
    std::vector<int32_t> tokens;
  };
  Trie all, json_special, xml_special;      // plain tokens; those not plain JSON-string / XML text
  std::vector<uint8_t> json_text, xml_text;  // 1: plain text inside a JSON string / an XML value
  std::vector<std::string> pieces;          // every token's text (token_to_piece), by id
  std::vector<uint8_t> plain;               // 1: in `all`; 0: special, end-of-generation or empty
  uint16_t max_depth = 0;

  // Fills `trie` with the tokens `ids` (their texts from `pieces`).
  void build(Trie& trie, std::vector<int32_t> ids);
};

std::shared_ptr<const TokenTrie> build_token_trie(const Tokenizer& tok);

}  // namespace flashfix::agent
