// Every tool's text goes through here before the model reads it: long text keeps its head and tail,
// cut at line boundaries, with a note saying how much is missing, so the model knows it saw a part.
#pragma once
#include <string>
#include <string_view>

namespace flashfix::tools {

// Returns text unchanged when it fits in max_chars; otherwise head + "\n[... N lines / M bytes cut ...]\n"
// + tail, the two halves cut at line ends where a line end is near, never inside a UTF-8 sequence.
std::string truncate_middle(std::string_view text, size_t max_chars);

// Terminal colour and cursor sequences (ESC [ ... letter) removed: jest, tsc --pretty and cargo
// colour their output, and the codes only cost the model tokens and break the parsers' patterns.
std::string strip_ansi(std::string_view text);

// Binary content: a NUL byte in the first 8 KiB, as git decides.
bool looks_binary(std::string_view bytes);

}  // namespace flashfix::tools
