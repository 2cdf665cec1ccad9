// Speculative decoding's numbers for one request, as generate --json and bench print them.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace flashfix::cli {

// {"sampling_passes":N,"tokens_per_pass":x,"drafts":[{"source","passes","drafted","accepted","acceptance"}]}
nlohmann::json draft_report(const Result& r);
// "1.85 tokens/pass; context: 120 drafted, 41% accepted" (one line, no newline).
std::string draft_summary(const Result& r);

}  // namespace flashfix::cli
