// A tool the model can call: a name, a JSON Schema for its arguments, and a result shaped for a
// model to read. Registry::invoke validates the model's arguments against the schema first, so a
// tool's call() only sees well-typed arguments; whatever goes wrong comes back as ok=false with a
// message the model can act on, never as an exception.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"
#include "tools/workspace.h"

namespace flashfix::tools {

struct ToolContext {
  Workspace& workspace;
  sandbox::Policy policy;           // base policy for run/run_tests; workspace is always workspace.root()
  std::string test_command;         // shell command for run_tests; empty: run_tests says it is not configured
  size_t max_output_chars = 12000;  // results truncated to this (head + tail + note)
};

struct ToolResult {
  bool ok = true;       // false: an error the model should see and repair
  std::string text;     // what the model reads
  nlohmann::json data;  // structured extras (run_tests: TestReport::to_json(); run: exit code, status)
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view description() const = 0;
  virtual const nlohmann::json& parameters() const = 0;                              // JSON Schema (object)
  // The schema with its properties in the order they were written (path before old_text before
  // new_text), as the prompt shows it: models tend to fill arguments in the order they are listed.
  virtual nlohmann::ordered_json ordered_parameters() const { return nlohmann::ordered_json(parameters()); }
  virtual ToolResult call(const nlohmann::json& args, ToolContext& ctx) const = 0;  // args already validated
};

class Registry {
 public:
  static Registry standard();  // read_file, list_dir, search, write_file, edit, apply_patch, run, run_tests, git_diff

  void add(std::unique_ptr<Tool> tool);  // replaces a tool of the same name
  const Tool* find(std::string_view name) const;
  std::vector<std::string> names() const;
  nlohmann::ordered_json openai_tools() const;  // [{"type":"function","function":{"name","description","parameters"}}...]

  // Validates the name and args against the schema (required, types, enums, ranges, no unknown
  // properties) and calls the tool; every failure (unknown tool, bad args, a tool's exception)
  // becomes ok=false with a clear message. Never throws for model input.
  ToolResult invoke(std::string_view name, const nlohmann::json& args, ToolContext& ctx) const;

 private:
  std::vector<std::unique_ptr<Tool>> tools_;
};

// A sandbox policy for run/run_tests: workspace = ws.root(), plus the host's toolchain directories
// on PATH that the sandbox does not already show (read-only), so compilers and test runners work.
sandbox::Policy tool_policy(const Workspace& ws);

}  // namespace flashfix::tools
