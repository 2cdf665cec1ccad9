#include "cli/run_outputs.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace flashfix::cli {

int exit_status(const agent::AgentResult& result, const agent::Budget& budget) {
  switch (result.outcome) {
    case agent::Outcome::Fixed:
      return result.final_tests.passed ? kExitFixed : kExitNotFixed;
    case agent::Outcome::InfrastructureError:
      return kExitInfrastructure;
    case agent::Outcome::BudgetExhausted:
      return result.seconds >= budget.max_seconds ? kExitInfrastructure : kExitNotFixed;
    default:
      return kExitNotFixed;
  }
}

nlohmann::json run_report(const agent::AgentResult& result, const RunInfo& info, int exit_status) {
  nlohmann::json j = result.to_json();
  j["repo"] = info.repo;
  j["task"] = info.task;
  j["test_command"] = info.test_command;
  j["backend"] = info.backend;
  j["tests"] = result.final_tests.to_json();
  j["exit_status"] = exit_status;
  return j;
}

void write_file(const std::filesystem::path& path, std::string_view content) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), std::streamsize(content.size()));
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

std::string one_line(std::string_view text, size_t max) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ', space = false;
    out += c;
  }
  if (out.size() > max) out = out.substr(0, max > 3 ? max - 3 : 0) + "...";
  return out;
}

agent::AgentObserver plain_log_observer(std::string prefix) {
  agent::AgentObserver o;
  o.on_turn = [prefix](int turn, const agent::TurnStats& s) {
    double tok_s = s.decode_ms > 0 ? double(s.generated_tokens) * 1000.0 / s.decode_ms : 0;
    std::fprintf(stderr, "%sturn %d: prompt %lld (cached %lld), generated %lld, %.1f tok/s, %s\n", prefix.c_str(), turn,
                 (long long)s.prompt_tokens, (long long)s.cached_tokens, (long long)s.generated_tokens, tok_s, s.finish.c_str());
  };
  o.on_tool_call = [prefix](const agent::ParsedCall& c) {
    if (!c.error.empty())
      std::fprintf(stderr, "%s  malformed call: %s\n", prefix.c_str(), one_line(c.error, 160).c_str());
    else
      std::fprintf(stderr, "%s  call %s %s\n", prefix.c_str(), c.call.name.c_str(), one_line(json_text(c.call.arguments), 160).c_str());
  };
  o.on_tool_result = [prefix](const agent::ParsedCall& c, const tools::ToolResult& r) {
    std::fprintf(stderr, "%s    %s %s\n", prefix.c_str(), r.ok ? "ok:" : "error:", one_line(r.text, 160).c_str());
  };
  o.on_tests = [prefix](const tools::TestReport& t) {
    std::fprintf(stderr, "%s  tests: %s\n", prefix.c_str(), one_line(t.summary(), 200).c_str());
  };
  return o;
}

}  // namespace flashfix::cli
