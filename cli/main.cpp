#include <algorithm>
#include <cstdio>
#include <exception>

#include "cli/args.h"
#include "cli/command.h"

namespace flashfix::cli {

static std::vector<Command>& registry() {
  static std::vector<Command> list;
  return list;
}

CommandRegistration::CommandRegistration(std::string_view name, std::string_view summary, CommandFn run) {
  registry().push_back({name, summary, run});
}

const std::vector<Command>& commands() { return registry(); }

static void print_usage() {
  std::fprintf(stderr, "usage: flashfix COMMAND [ARGS...]\n\ncommands:\n");
  auto list = registry();
  std::sort(list.begin(), list.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const auto& c : list)
    std::fprintf(stderr, "  %-14.*s %.*s\n", int(c.name.size()), c.name.data(), int(c.summary.size()), c.summary.data());
  std::fprintf(stderr, "\n'flashfix COMMAND --help' describes one command.\n");
}

}  // namespace flashfix::cli

int main(int argc, char** argv) {
  using namespace flashfix::cli;
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "help") {
    print_usage();
    return argc < 2 ? kUsageError : 0;
  }
  std::string_view name = argv[1];
  for (const auto& c : commands()) {
    if (c.name != name) continue;
    std::vector<std::string> args(argv + 2, argv + argc);
    try {
      return c.run(args);
    } catch (const UsageError& e) {
      std::fprintf(stderr, "flashfix %s: %s\n(see flashfix %s --help)\n", argv[1], e.what(), argv[1]);
      return kUsageError;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flashfix %s: error: %s\n", argv[1], e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "flashfix: unknown command '%s'\n", argv[1]);
  print_usage();
  return kUsageError;
}
