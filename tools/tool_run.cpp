// run: a shell command in the sandbox, with the workspace as its only writable folder.
#include <algorithm>
#include <cstdlib>
#include <set>

#include "tools/output_shaping.h"
#include "tools/sandboxed_shell.h"
#include "tools/tool_support.h"

namespace fs = std::filesystem;

namespace flashfix::tools {

sandbox::Policy tool_policy(const Workspace& ws) {
  sandbox::Policy policy;
  policy.workspace = ws.root();
  // The sandbox shows /usr, /bin, /sbin, /lib*, /etc and /opt. Toolchains installed elsewhere but
  // on PATH (e.g. /usr/local/go is covered, /snap/bin or /nix/... are not) are added read-only, except
  // folders under the caller's home, /tmp, /run, /var and /proc, which would expose private data.
  const char* path = std::getenv("PATH");
  std::set<std::string> seen;
  for (std::string_view rest = path ? path : ""; !rest.empty();) {
    size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    if (dir.empty() || dir[0] != '/' || !seen.insert(dir).second) continue;
    std::error_code ec;
    fs::path real = fs::canonical(dir, ec);
    if (ec || !fs::is_directory(real, ec)) continue;
    std::string top = real.begin() == real.end() ? "" : (++real.begin())->string();
    static const std::set<std::string> shown_or_private = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt",
                                                           "home", "root", "tmp", "run", "var", "proc", "sys", "dev"};
    if (top.empty() || shown_or_private.count(top)) continue;
    policy.read_only.push_back(real);
  }
  return policy;
}

namespace {

class Run : public BasicTool {
 public:
  Run()
      : BasicTool("run",
                  "Run a shell command (sh -c) in a sandbox whose working folder is the workspace root. Only the "
                  "workspace is writable; there is no network. Returns the exit status and the output.",
                  {{"type", "object"},
                   {"properties",
                    {{"command", {{"type", "string"}, {"minLength", 1}, {"description", "shell command line"}}},
                     {"timeout_seconds", {{"type", "integer"}, {"minimum", 1}, {"maximum", 3600}, {"description", "wall-clock limit, at most the configured one (the default)"}}}}},
                   {"required", {"command"}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    sandbox::Policy policy = ctx.policy;
    std::string note;
    // The model may shorten the limit, never extend it: the configured one is the run's budget.
    if (args.contains("timeout_seconds")) {
      auto asked = std::chrono::milliseconds(std::chrono::seconds(int_arg(args, "timeout_seconds", 1)));
      if (asked > policy.timeout)
        note = " [timeout_seconds capped at the configured " + std::to_string(policy.timeout.count() / 1000) + " s]";
      policy.timeout = std::min(asked, policy.timeout);
    }
    auto outcome = run_in_sandbox(ctx.workspace, policy, string_arg(args, "command"), false);
    std::string text = outcome.headline + note + "\n";
    if (!outcome.stdout_text.empty()) text += "--- stdout ---\n" + truncate_middle(outcome.stdout_text, ctx.max_output_chars / 2);
    if (!text.empty() && text.back() != '\n') text += '\n';
    if (!outcome.stderr_text.empty()) text += "--- stderr ---\n" + truncate_middle(outcome.stderr_text, ctx.max_output_chars / 2);
    if (outcome.stdout_text.empty() && outcome.stderr_text.empty()) text += "(no output)\n";
    return {outcome.ran, text, outcome.data};
  }
};

}  // namespace

std::unique_ptr<Tool> make_run_tool() { return std::make_unique<Run>(); }

}  // namespace flashfix::tools
