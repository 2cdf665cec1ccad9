// flashfix bench --spec-oracle: the engine's side of speculative decoding, measured exactly. Random
// weights cannot show real acceptance rates, so the model's own greedy output is replayed as drafts
// with a chosen share corrupted (acceptance 100/75/50/25%) for k = 1..K drafts per pass, and decode
// speed is compared with plain decoding, beside what the bytes read predict.
#pragma once
#include <vector>

#include "cli/args.h"

namespace flashfix::cli {

std::vector<FlagSpec> spec_oracle_flag_specs();
extern const char* const kSpecOracleUsage;

int run_spec_oracle(const Args& args, bool json);

}  // namespace flashfix::cli
