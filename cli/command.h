// Subcommands register themselves (one file per command), so adding a command never edits main.cpp.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace flashfix::cli {

// args excludes the program and command names. Returns the process exit status.
using CommandFn = int (*)(const std::vector<std::string>& args);

struct Command {
  std::string_view name;
  std::string_view summary;
  CommandFn run;
};

struct CommandRegistration {
  CommandRegistration(std::string_view name, std::string_view summary, CommandFn run);
};

const std::vector<Command>& commands();

// Exit status for usage errors across all commands.
constexpr int kUsageError = 2;

}  // namespace flashfix::cli
