// The engine flags every model-running front end accepts (logits, generate, the agent replay, and
// the agent commands fix, ci and batch): one spelling, one meaning.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "engine/engine.h"

namespace flashfix::cli {

// --model --backend --threads --ctx-size --max-sequences --kv-budget-mb --cache-dir --cache-dir-max-mb
// --no-prefix-cache --draft --draft-max --no-repack
std::vector<FlagSpec> engine_flag_specs();
extern const char* const kEngineFlagsUsage;

// The options the flags give, opening nothing (range errors are usage errors). default_ctx applies
// when --ctx-size is absent; a front end that needs room of its own (the agent's prompts) narrows
// the range --ctx-size may take.
EngineOptions engine_options(const Args& args, int64_t default_ctx = EngineOptions{}.n_ctx, int64_t min_ctx = 1,
                             int64_t max_ctx = int64_t(1) << 24);

// Opens the engine of --model with engine_options(args, default_ctx).
std::unique_ptr<Engine> open_engine(const Args& args, int64_t default_ctx = EngineOptions{}.n_ctx);

// --draft none|mtp|context|auto and --draft-max K into o (usage errors for bad values).
void draft_options(const Args& args, EngineOptions& o);

// Specials parsed, BOS per the model; an empty result is a usage error.
std::vector<int32_t> tokenize_prompt(const Engine& engine, const std::string& text);

}  // namespace flashfix::cli
