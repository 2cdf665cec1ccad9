#include "tools/sandboxed_shell.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "tools/output_shaping.h"

namespace flashfix::tools {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

}  // namespace

ShellOutcome run_in_sandbox(const Workspace& ws, sandbox::Policy policy, const std::string& command, bool merge_stderr) {
  policy.workspace = ws.root();
  // Python validates its bytecode cache by the source's size and mtime in whole seconds, so an
  // edit that keeps the size, made within a second of a test run, would be served stale bytecode;
  // without the cache every run reads the sources (and the workspace stays free of .pyc files).
  policy.env_set.insert(policy.env_set.begin(), {"PYTHONDONTWRITEBYTECODE", "1"});
  std::string script = merge_stderr ? "exec 2>&1\n" + command : command;
  auto r = sandbox::Sandbox::run({{"sh", "-c", script}, std::nullopt}, policy);
  ShellOutcome o;
  o.ran = r.status != sandbox::Status::setup_failed;
  o.status = std::string(sandbox::to_string(r.status));
  std::replace(o.status.begin(), o.status.end(), ' ', '_');  // "timed out" -> "timed_out", a JSON-friendly token
  o.exit_code = r.status == sandbox::Status::exited ? r.exit_code : r.status == sandbox::Status::signaled ? 128 + r.signal : -1;
  double secs = double(r.wall.count()) / 1e6, limit = double(policy.timeout.count()) / 1e3;
  char buf[160];
  switch (r.status) {
    case sandbox::Status::exited: std::snprintf(buf, sizeof buf, "exit code %d (%.1f s)", r.exit_code, secs); break;
    case sandbox::Status::signaled: std::snprintf(buf, sizeof buf, "killed by signal %d (%.1f s)", r.signal, secs); break;
    case sandbox::Status::timed_out:
      std::snprintf(buf, sizeof buf, "timed out after %.0f s; the command and everything it started were killed", limit);
      break;
    case sandbox::Status::memory_limit:
      std::snprintf(buf, sizeof buf, "killed: memory limit of %llu MB reached", (unsigned long long)(policy.memory >> 20));
      break;
    case sandbox::Status::output_limit: std::snprintf(buf, sizeof buf, "stopped: the output passed the limit"); break;
    case sandbox::Status::process_limit: std::snprintf(buf, sizeof buf, "killed: too many processes"); break;
    case sandbox::Status::setup_failed: std::snprintf(buf, sizeof buf, "the sandbox could not be set up: "); break;
  }
  o.headline = buf;
  if (r.status == sandbox::Status::setup_failed) o.headline += r.error;
  o.stdout_text = strip_ansi(r.out.data);
  o.stderr_text = strip_ansi(r.err.data);
  std::error_code ec;
  std::string root = std::filesystem::weakly_canonical(ws.root(), ec).string();
  replace_all(o.stdout_text, root + "/", "");
  replace_all(o.stderr_text, root + "/", "");
  replace_all(o.stdout_text, root, ".");
  replace_all(o.stderr_text, root, ".");
  o.data = {{"status", o.status}, {"exit_code", o.exit_code}, {"wall_ms", r.wall.count() / 1000}};
  return o;
}

}  // namespace flashfix::tools
