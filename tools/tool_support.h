// What the individual tools share: the error a model can act on, path confinement to the workspace,
// argument access, and a base class holding a tool's name, description and schema.
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tools/tool.h"

namespace flashfix::tools {

// Thrown by a tool for a problem the model caused and can fix (a missing file, an ambiguous edit);
// the registry turns it into ok=false with exactly this message.
struct ToolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A model-given path, relative to the workspace root, resolved on disk. Rejects absolute paths,
// `..` that leaves the root, and symlinks anywhere on the way that lead outside it.
std::filesystem::path resolve_in_workspace(const std::filesystem::path& root, std::string_view relative);

// The path as the model should see it: relative to the root, '/'-separated, "." for the root.
std::string display_path(const std::filesystem::path& root, const std::filesystem::path& path);

std::string read_whole_file(const std::filesystem::path& path);  // throws ToolError when unreadable
void write_whole_file(const std::filesystem::path& path, std::string_view content);  // creates parent folders

std::string string_arg(const nlohmann::json& args, const char* name, std::string fallback = {});
long long int_arg(const nlohmann::json& args, const char* name, long long fallback);
bool bool_arg(const nlohmann::json& args, const char* name, bool fallback);

class BasicTool : public Tool {
 public:
  BasicTool(std::string name, std::string description, nlohmann::ordered_json parameters)
      : name_(std::move(name)), description_(std::move(description)), ordered_(std::move(parameters)), parameters_(ordered_) {}
  std::string_view name() const override { return name_; }
  std::string_view description() const override { return description_; }
  const nlohmann::json& parameters() const override { return parameters_; }
  nlohmann::ordered_json ordered_parameters() const override { return ordered_; }

 private:
  std::string name_, description_;
  nlohmann::ordered_json ordered_;
  nlohmann::json parameters_;
};

// The factories Registry::standard() uses, one per tool file.
std::unique_ptr<Tool> make_read_file_tool();
std::unique_ptr<Tool> make_list_dir_tool();
std::unique_ptr<Tool> make_search_tool();
std::unique_ptr<Tool> make_write_file_tool();
std::unique_ptr<Tool> make_edit_tool();
std::unique_ptr<Tool> make_apply_patch_tool();
std::unique_ptr<Tool> make_run_tool();
std::unique_ptr<Tool> make_run_tests_tool();
std::unique_ptr<Tool> make_git_diff_tool();

}  // namespace flashfix::tools
