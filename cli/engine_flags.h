// The engine flags every model-running front end accepts (logits, generate, the agent replay and,
// through them, batch and serve): one spelling, one meaning, one usage text.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "engine/engine.h"

namespace flashfix::cli {

// --model --threads --ctx-size --max-sequences --kv-budget-mb --cache-dir --cache-dir-max-mb --no-prefix-cache
std::vector<FlagSpec> engine_flag_specs();
extern const char* const kEngineFlagsUsage;

// Opens the engine of --model with the options the flags give (range errors are usage errors);
// default_ctx applies when --ctx-size is absent.
std::unique_ptr<Engine> open_engine(const Args& args, int64_t default_ctx = EngineOptions{}.n_ctx);

// Specials parsed, BOS per the model; an empty result is a usage error.
std::vector<int32_t> tokenize_prompt(const Engine& engine, const std::string& text);

}  // namespace flashfix::cli
