// flashfix bench --agent-replay: the prefix-cache benchmark. Replays an agent conversation through
// the Engine, turn by turn as an agent does (the whole context re-sent every turn): a long system +
// tools + repository-map prefix, then turns that each append a tool result and generate a reply.
#pragma once
#include <string>
#include <vector>

#include "cli/args.h"

namespace flashfix::cli {

// The flags the replay adds to bench's (besides the engine flags, cli/engine_flags.h).
std::vector<FlagSpec> agent_replay_flag_specs();
extern const char* const kAgentReplayUsage;

// Runs the replay the flags describe and prints its report (JSON with --json): per turn the prompt,
// cached and computed tokens, time to first token, prefill and decode time.
int run_agent_replay(const Args& args, bool json);

}  // namespace flashfix::cli
