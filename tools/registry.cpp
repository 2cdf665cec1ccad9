#include <algorithm>

#include "tools/schema_validation.h"
#include "tools/tool.h"
#include "tools/tool_support.h"

namespace flashfix::tools {

Registry Registry::standard() {
  Registry r;
  r.add(make_read_file_tool());
  r.add(make_list_dir_tool());
  r.add(make_search_tool());
  r.add(make_write_file_tool());
  r.add(make_edit_tool());
  r.add(make_apply_patch_tool());
  r.add(make_run_tool());
  r.add(make_run_tests_tool());
  r.add(make_git_diff_tool());
  return r;
}

void Registry::add(std::unique_ptr<Tool> tool) {
  auto same = [&](const auto& t) { return t->name() == tool->name(); };
  tools_.erase(std::remove_if(tools_.begin(), tools_.end(), same), tools_.end());
  tools_.push_back(std::move(tool));
}

const Tool* Registry::find(std::string_view name) const {
  for (const auto& t : tools_)
    if (t->name() == name) return t.get();
  return nullptr;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& t : tools_) out.emplace_back(t->name());
  return out;
}

nlohmann::ordered_json Registry::openai_tools() const {
  auto out = nlohmann::ordered_json::array();
  for (const auto& t : tools_) {
    nlohmann::ordered_json fn;
    fn["name"] = t->name();
    fn["description"] = t->description();
    fn["parameters"] = t->ordered_parameters();
    out.push_back({{"type", "function"}, {"function", fn}});
  }
  return out;
}

ToolResult Registry::invoke(std::string_view name, const nlohmann::json& args, ToolContext& ctx) const {
  const Tool* tool = find(name);
  if (!tool) {
    std::string known;
    for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
    return {false, "unknown tool '" + std::string(name) + "'; the tools are: " + known, {}};
  }
  // A model may send no arguments at all for a tool without required ones.
  const nlohmann::json& given = args.is_null() ? nlohmann::json::object() : args;
  if (std::string problems = validate_arguments(tool->parameters(), given); !problems.empty())
    return {false, "invalid arguments for " + std::string(name) + ":\n" + problems, {}};
  try {
    return tool->call(given, ctx);
  } catch (const ToolError& e) {
    return {false, std::string(name) + ": " + e.what(), {}};
  } catch (const std::exception& e) {
    return {false, std::string(name) + " failed: " + e.what(), {}};
  }
}

}  // namespace flashfix::tools
