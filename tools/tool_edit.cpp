// edit: exact search and replace. The old text must occur exactly once; when it does not occur
// verbatim, a line-based match that ignores indentation and spacing is tried (and the new text
// re-indented to fit); when nothing matches, the closest lines are shown with their numbers and
// the differing ones marked, so the model can copy the real text and retry.
#include <algorithm>

#include "tools/text_lines.h"
#include "tools/tool_support.h"

namespace flashfix::tools {
namespace {

size_t line_of_offset(const std::string& text, size_t offset) {
  return size_t(std::count(text.begin(), text.begin() + long(offset), '\n')) + 1;
}

std::string list_numbers(const std::vector<size_t>& lines) {
  std::string s;
  for (size_t i = 0; i < lines.size() && i < 20; ++i) s += (i ? ", " : "") + std::to_string(lines[i]);
  if (lines.size() > 20) s += ", ...";
  return s;
}

// Each match's first line, numbered, so the model sees which occurrence is which.
std::string show_locations(const std::string& content, const std::vector<size_t>& lines) {
  auto file = TextLines::split(content).lines;
  std::string out;
  for (size_t i = 0; i < lines.size() && i < 8; ++i) out += numbered_excerpt(file, lines[i] - 1, lines[i]);
  if (lines.size() > 8) out += "...\n";
  return out;
}

std::string leading_whitespace(const std::string& line) {
  size_t n = line.find_first_not_of(" \t");
  return n == std::string::npos ? line : line.substr(0, n);
}

// Moves each new line's indentation from the model's idea of the file to the file's. Line by line
// when the edit keeps the line count (each new line pairs with the old line it replaces: this
// recovers even fully flattened indentation); otherwise through a map from the old text's
// indentation to the matched file lines' (first pairing wins; deeper indents keep their extra).
void reindent(std::vector<std::string>& replacement, const std::vector<std::string>& model_old, const std::vector<std::string>& file_old) {
  auto retarget = [](std::string& line, const std::string& from, const std::string& to) {
    if (normalize_whitespace(line).empty() || from == to || line.compare(0, from.size(), from) != 0) return;
    line = to + line.substr(from.size());
  };
  if (replacement.size() == model_old.size()) {
    for (size_t i = 0; i < replacement.size(); ++i)
      retarget(replacement[i], leading_whitespace(model_old[i]), leading_whitespace(file_old[i]));
    return;
  }
  std::vector<std::pair<std::string, std::string>> map;  // model indent -> file indent
  for (size_t i = 0; i < model_old.size(); ++i) {
    if (normalize_whitespace(model_old[i]).empty()) continue;
    std::string from = leading_whitespace(model_old[i]);
    bool known = false;
    for (const auto& m : map) known |= m.first == from;
    if (!known) map.emplace_back(from, leading_whitespace(file_old[i]));
  }
  for (auto& line : replacement) {
    std::string indent = leading_whitespace(line);
    const std::pair<std::string, std::string>* best = nullptr;  // the longest model indent that prefixes this line's
    for (const auto& m : map)
      if (indent.compare(0, m.first.size(), m.first) == 0 && (!best || m.first.size() > best->first.size())) best = &m;
    if (best) retarget(line, best->first, best->second);
  }
}

// Lines of the old text without blank lines at either end (a model often adds one).
std::vector<std::string> meaningful_lines(const std::string& text) {
  auto lines = TextLines::split(text).lines;
  auto blank = [](const std::string& l) { return normalize_whitespace(l).empty(); };
  while (!lines.empty() && blank(lines.back())) lines.pop_back();
  while (!lines.empty() && blank(lines.front())) lines.erase(lines.begin());
  return lines;
}

class Edit : public BasicTool {
 public:
  Edit()
      : BasicTool("edit",
                  "Replace one occurrence of old_text with new_text in a file. old_text must match exactly once: copy it "
                  "from read_file output (without the line numbers) and include enough surrounding lines to make it "
                  "unique. Differences in indentation or spacing alone are tolerated.",
                  {{"type", "object"},
                   {"properties",
                    {{"path", {{"type", "string"}, {"description", "file path relative to the workspace root"}}},
                     {"old_text", {{"type", "string"}, {"minLength", 1}, {"description", "the exact text to replace"}}},
                     {"new_text", {{"type", "string"}, {"description", "the replacement (may be empty to delete)"}}}}},
                   {"required", {"path", "old_text", "new_text"}},
                   {"additionalProperties", false}}) {}

  ToolResult call(const nlohmann::json& args, ToolContext& ctx) const override {
    auto path = resolve_in_workspace(ctx.workspace.root(), string_arg(args, "path"));
    std::string shown = display_path(ctx.workspace.root(), path);
    std::string content = read_whole_file(path);
    std::string old_text = string_arg(args, "old_text"), new_text = string_arg(args, "new_text");
    if (old_text == new_text) throw ToolError("old_text and new_text are the same; nothing to change");
    // Models write "\n"; a CRLF file keeps its line endings in what is inserted.
    if (TextLines::split(content).eol == "\r\n" && new_text.find('\r') == std::string::npos)
      for (size_t p = 0; (p = new_text.find('\n', p)) != std::string::npos; p += 2) new_text.replace(p, 1, "\r\n");

    std::vector<size_t> at;
    for (size_t pos = content.find(old_text); pos != std::string::npos; pos = content.find(old_text, pos + 1)) at.push_back(pos);
    if (at.size() == 1) {
      content.replace(at[0], old_text.size(), new_text);
      write_whole_file(path, content);
      size_t line = line_of_offset(content, at[0]);
      return {true, "edited " + shown + " at line " + std::to_string(line), {{"path", shown}, {"line", line}, {"fuzzy", false}}};
    }
    if (at.size() > 1) {
      std::vector<size_t> lines;
      for (size_t pos : at) lines.push_back(line_of_offset(content, pos));
      throw ToolError("old_text occurs " + std::to_string(at.size()) + " times in " + shown + " (at lines " + list_numbers(lines) +
                      "); include more surrounding lines so it matches exactly once:\n" + show_locations(content, lines));
    }
    return fuzzy(path, shown, content, old_text, new_text);
  }

 private:
  ToolResult fuzzy(const std::filesystem::path& path, const std::string& shown, const std::string& content,
                   const std::string& old_text, const std::string& new_text) const {
    TextLines file = TextLines::split(content);
    std::vector<std::string> wanted = meaningful_lines(old_text);
    if (wanted.empty()) throw ToolError("old_text is only whitespace and does not occur in " + shown + " as given");
    std::vector<std::string> wanted_norm;
    for (const auto& l : wanted) wanted_norm.push_back(normalize_whitespace(l));

    std::vector<size_t> starts;
    for (size_t i = 0; i + wanted.size() <= file.lines.size(); ++i) {
      bool same = true;
      for (size_t k = 0; same && k < wanted.size(); ++k) same = normalize_whitespace(file.lines[i + k]) == wanted_norm[k];
      if (same) starts.push_back(i);
    }
    if (starts.size() > 1) {
      std::vector<size_t> lines;
      for (size_t s : starts) lines.push_back(s + 1);
      throw ToolError("old_text does not occur verbatim in " + shown + ", and ignoring whitespace it matches " +
                      std::to_string(starts.size()) + " places (lines " + list_numbers(lines) +
                      "); include more surrounding lines so it matches once:\n" + show_locations(content, lines));
    }
    if (starts.empty()) {
      ClosestBlock best = closest_block(file.lines, wanted);
      std::string text = "old_text was not found in " + shown + " (not even ignoring whitespace).";
      if (best.score > 0.3) {
        size_t last = std::min(file.lines.size(), best.start + wanted.size());
        text += " The closest lines are " + std::to_string(best.start + 1) + "-" + std::to_string(last) + " (" +
                std::to_string(int(best.score * 100 + 0.5)) + "% similar; lines that differ are marked '!'):\n" +
                numbered_excerpt(file.lines, best.start, last, &wanted) +
                "Copy the current text from these lines (without the numbers) into old_text and retry.";
      } else {
        text += " Nothing in the file resembles it; read the file again with read_file.";
      }
      throw ToolError(text);
    }

    // One whitespace-insensitive match: replace those lines, re-indenting the new text the way the
    // model's old text was off from the file, so a model that got the indentation wrong still fits.
    size_t start = starts[0];
    std::vector<std::string> replacement = new_text.empty() ? std::vector<std::string>{} : TextLines::split(new_text).lines;
    if (!new_text.empty() && new_text.back() == '\n' && !replacement.empty() && replacement.back().empty()) replacement.pop_back();
    reindent(replacement, wanted, std::vector<std::string>(file.lines.begin() + long(start), file.lines.begin() + long(start + wanted.size())));
    file.lines.erase(file.lines.begin() + long(start), file.lines.begin() + long(start + wanted.size()));
    file.lines.insert(file.lines.begin() + long(start), replacement.begin(), replacement.end());
    write_whole_file(path, file.join());
    return {true,
            "edited " + shown + " at lines " + std::to_string(start + 1) + "-" + std::to_string(start + wanted.size()) +
                " (old_text matched after ignoring whitespace differences)",
            {{"path", shown}, {"line", start + 1}, {"fuzzy", true}}};
  }
};

}  // namespace

std::unique_ptr<Tool> make_edit_tool() { return std::make_unique<Edit>(); }

}  // namespace flashfix::tools
