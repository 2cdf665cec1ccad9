// Every tool through Registry::invoke, as the agent loop calls them: success paths, the errors a
// model must be able to read and repair, and the schema checks in front of them.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include "git_repo.h"
#include "tools/tool.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace flashfix::tools;
using namespace flashfix::test;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    repo = make_repo("tools" + std::to_string(n++),
                     {{"src/calc.py", "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"},
                      {"src/util.py", "def helper():\n    return 'helper'\n"},
                      {"README.md", "# calc\n"},
                      {".gitignore", "build/\n*.log\n"}});
    write(repo / "build/generated.py", "def add(): pass  # ignored\n");
    write(repo / "debug.log", "add add add\n");
    ws.emplace(Workspace::create(repo));
    ctx.emplace(ToolContext{*ws, tool_policy(*ws), "", 12000});
  }

  ToolResult call(const std::string& name, const json& args) { return registry.invoke(name, args, *ctx); }

  fs::path repo;
  std::optional<Workspace> ws;
  std::optional<ToolContext> ctx;
  Registry registry = Registry::standard();
};

TEST_F(ToolsTest, RegistryListsNineToolsInOpenAiShape) {
  auto tools = registry.openai_tools();
  ASSERT_EQ(tools.size(), 9u);
  std::vector<std::string> names;
  for (const auto& t : tools) {
    EXPECT_EQ(t["type"], "function");
    EXPECT_FALSE(t["function"]["description"].get<std::string>().empty());
    EXPECT_EQ(t["function"]["parameters"]["type"], "object");
    names.push_back(t["function"]["name"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"read_file", "list_dir", "search", "write_file", "edit", "apply_patch", "run",
                                             "run_tests", "git_diff"}));
  // Properties in their natural order, not alphabetical.
  std::vector<std::string> edit_args;
  for (const auto& [key, _] : tools[4]["function"]["parameters"]["properties"].items()) edit_args.push_back(key);
  EXPECT_EQ(edit_args, (std::vector<std::string>{"path", "old_text", "new_text"}));
  EXPECT_EQ(tools[4]["function"]["parameters"].begin().key(), "type");
  EXPECT_NE(registry.find("edit"), nullptr);
  EXPECT_EQ(registry.find("nope"), nullptr);
}

TEST_F(ToolsTest, SchemaValidationErrorsAreClear) {
  auto r = call("delete_everything", {{"path", "."}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "unknown tool 'delete_everything'")) << r.text;
  EXPECT_TRUE(contains(r.text, "read_file"));

  r = call("read_file", json::object());
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "missing required argument 'path'")) << r.text;

  r = call("read_file", {{"path", "README.md"}, {"lines", 3}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "unknown argument 'lines'")) << r.text;
  EXPECT_TRUE(contains(r.text, "start_line")) << "the known ones are listed";

  r = call("read_file", {{"path", "README.md"}, {"start_line", "3"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "argument 'start_line' must be an integer, got string \"3\"")) << r.text;

  r = call("read_file", {{"path", 7}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "argument 'path' must be a string")) << r.text;

  r = call("read_file", {{"path", "README.md"}, {"start_line", 0}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "must be at least 1")) << r.text;

  r = call("read_file", json::array({"README.md"}));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "arguments must be a JSON object")) << r.text;

  // Several problems at once are all reported.
  r = call("edit", {{"path", 1}, {"old", "x"}});
  EXPECT_TRUE(contains(r.text, "missing required argument 'old_text'"));
  EXPECT_TRUE(contains(r.text, "missing required argument 'new_text'"));
  EXPECT_TRUE(contains(r.text, "unknown argument 'old'"));
  EXPECT_TRUE(contains(r.text, "argument 'path' must be a string"));

  // Arguments as the tool-call parser produces them (ordered_json) convert implicitly.
  nlohmann::ordered_json ordered = {{"path", "README.md"}};
  EXPECT_TRUE(registry.invoke("read_file", ordered, *ctx).ok);

  // 3.0 is an integer; null args are an empty object for tools without required arguments.
  EXPECT_TRUE(call("read_file", {{"path", "README.md"}, {"start_line", 1.0}}).ok);
  EXPECT_TRUE(call("git_diff", json()).ok);
}

TEST_F(ToolsTest, ReadFileWithLineNumbersAndRanges) {
  auto r = call("read_file", {{"path", "src/calc.py"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(r.text, "src/calc.py (lines 1-6 of 6)")) << r.text;
  EXPECT_TRUE(contains(r.text, "1\tdef add(a, b):\n2\t    return a - b\n")) << r.text;
  r = call("read_file", {{"path", "src/calc.py"}, {"start_line", 5}, {"end_line", 99}});
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(contains(r.text, "(lines 5-6 of 6)"));
  EXPECT_TRUE(contains(r.text, "5\tdef mul(a, b):"));
  EXPECT_FALSE(contains(r.text, "def add"));
  EXPECT_EQ(r.data["lines"], 6);
}

TEST_F(ToolsTest, ReadFileErrors) {
  auto r = call("read_file", {{"path", "src/missing.py"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "no such file")) << r.text;
  r = call("read_file", {{"path", "src"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "is a folder")) << r.text;
  r = call("read_file", {{"path", "src/calc.py"}, {"start_line", 50}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "past the end")) << r.text;
  r = call("read_file", {{"path", "src/calc.py"}, {"start_line", 4}, {"end_line", 2}});
  EXPECT_FALSE(r.ok);
}

TEST_F(ToolsTest, PathsCannotLeaveTheWorkspace) {
  write(scratch() / "secret.txt", "secret");
  fs::create_symlink(scratch() / "secret.txt", ws->root() / "link_out");
  fs::create_symlink(scratch(), ws->root() / "dir_out");
  for (const char* path : {"/etc/passwd", "../secret.txt", "src/../../secret.txt", "link_out", "dir_out/secret.txt"}) {
    SCOPED_TRACE(path);
    auto r = call("read_file", {{"path", path}});
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(contains(r.text, "absolute") || contains(r.text, "outside the workspace")) << r.text;
    EXPECT_FALSE(contains(r.text, "secret\n"));
    EXPECT_FALSE(call("write_file", {{"path", path}, {"content", "x"}}).ok);
  }
  EXPECT_EQ(read(scratch() / "secret.txt"), "secret");
  // A dangling link to a place outside: writing through it would create the file there.
  fs::create_symlink(scratch() / "not-yet" / "planted.txt", ws->root() / "dangling");
  auto r = call("write_file", {{"path", "dangling"}, {"content", "x"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "broken symlink")) << r.text;
  EXPECT_FALSE(fs::exists(scratch() / "not-yet"));
  // A link that stays inside is fine.
  fs::create_symlink("calc.py", ws->root() / "src/alias.py");
  EXPECT_TRUE(call("read_file", {{"path", "src/alias.py"}}).ok);
}

TEST_F(ToolsTest, ReadFileBinaryAndLargeFiles) {
  write(ws->root() / "blob.bin", std::string("\x7f" "ELF\0\0\1", 7));
  auto r = call("read_file", {{"path", "blob.bin"}});
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(contains(r.text, "binary file (7 bytes)")) << r.text;

  std::string big;
  for (int i = 1; i <= 5000; ++i) big += "line number " + std::to_string(i) + "\n";
  write(ws->root() / "big.txt", big);
  r = call("read_file", {{"path", "big.txt"}});
  ASSERT_TRUE(r.ok);
  EXPECT_LE(r.text.size(), 12400u);
  EXPECT_TRUE(contains(r.text, "   1\tline number 1\n"));
  EXPECT_TRUE(contains(r.text, "5000\tline number 5000\n"));
  EXPECT_TRUE(contains(r.text, "lines / ")) << "the note says how much was cut";
  EXPECT_TRUE(contains(r.text, "start_line/end_line"));
  write(ws->root() / "empty.txt", "");
  EXPECT_TRUE(contains(call("read_file", {{"path", "empty.txt"}}).text, "empty"));
}

TEST_F(ToolsTest, ListDirShowsATreeWithSizesWithoutIgnoredFiles) {
  write(ws->root() / "build/out.o", "object");  // build outputs made in the workspace
  write(ws->root() / "trace.log", "log");
  auto r = call("list_dir", json::object());
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(r.text, "src/\n  calc.py (")) << r.text;
  EXPECT_TRUE(contains(r.text, "README.md (7 B)")) << r.text;
  EXPECT_FALSE(contains(r.text, "build"));
  EXPECT_FALSE(contains(r.text, "trace.log"));
  EXPECT_TRUE(contains(r.text, "[2 ignored entries (.gitignore) not shown]")) << r.text;
  // Folders first, then files.
  EXPECT_LT(r.text.find("src/"), r.text.find("README.md"));

  write(ws->root() / "a/b/c/d.txt", "deep");
  r = call("list_dir", {{"path", "a"}, {"depth", 1}});
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(contains(r.text, "b/ (1 entries, not expanded)")) << r.text;
  r = call("list_dir", {{"path", "a"}, {"depth", 3}});
  EXPECT_TRUE(contains(r.text, "a/\nb/\n  c/\n    d.txt (4 B)\n")) << r.text;

  EXPECT_FALSE(call("list_dir", {{"path", "nope"}}).ok);
  EXPECT_TRUE(contains(call("list_dir", {{"path", "README.md"}}).text, "is a file"));
  EXPECT_FALSE(call("list_dir", {{"depth", 50}}).ok);
}

TEST_F(ToolsTest, SearchFindsLinesAndHonoursGitignore) {
  auto r = call("search", {{"pattern", "def (add|mul)"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, "src/calc.py:1: def add(a, b):\nsrc/calc.py:5: def mul(a, b):\n");
  EXPECT_EQ(r.data["matches"], 2);

  r = call("search", {{"pattern", "add"}});
  EXPECT_FALSE(contains(r.text, "build/generated.py")) << r.text;
  EXPECT_FALSE(contains(r.text, "debug.log"));

  write(ws->root() / "build/generated.py", "def add(): pass  # generated\n");
  r = call("search", {{"pattern", "def add"}, {"path", "build"}});
  EXPECT_EQ(r.text, "build/generated.py:1: def add(): pass  # generated\n") << "an ignored folder named explicitly is searched";

  r = call("search", {{"pattern", "^def"}, {"glob", "util*.py"}});
  EXPECT_EQ(r.text, "src/util.py:1: def helper():\n");
  r = call("search", {{"pattern", "^def"}, {"glob", "src/c*"}});
  EXPECT_EQ(r.text, "src/calc.py:1: def add(a, b):\nsrc/calc.py:5: def mul(a, b):\n");
  r = call("search", {{"pattern", "# CALC"}, {"case_insensitive", true}});
  EXPECT_EQ(r.text, "README.md:1: # calc\n");
  r = call("search", {{"pattern", "return"}, {"path", "src/util.py"}});
  EXPECT_EQ(r.text, "src/util.py:2:     return 'helper'\n");

  r = call("search", {{"pattern", "nothing-like-this"}});
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(contains(r.text, "no matches")) << r.text;

  r = call("search", {{"pattern", "def ("}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "invalid regular expression")) << r.text;

  write(ws->root() / "many.txt", std::string(50, 'x') + "\n" + [] {
    std::string s;
    for (int i = 0; i < 300; ++i) s += "hit " + std::to_string(i) + "\n";
    return s;
  }());
  r = call("search", {{"pattern", "^hit"}, {"max_results", 10}});
  EXPECT_EQ(r.data["matches"], 10);
  EXPECT_TRUE(contains(r.text, "many.txt:2: hit 0\n"));
  EXPECT_TRUE(contains(r.text, "[stopped at 10 matching lines")) << r.text;

  write(ws->root() / "bin.dat", std::string("def add\0\0", 9));
  EXPECT_FALSE(contains(call("search", {{"pattern", "def add"}}).text, "bin.dat"));
}

TEST_F(ToolsTest, SearchIsFastOnALargeTree) {
  // 2,000 files in 20 folders, plus an ignored folder as big that must not even be entered.
  for (int d = 0; d < 20; ++d)
    for (int f = 0; f < 100; ++f)
      write(ws->root() / ("pkg" + std::to_string(d)) / ("m" + std::to_string(f) + ".py"),
            "import os\n\ndef f" + std::to_string(f) + "():\n    return os.getcwd()\n" + (d == 12 && f == 7 ? "NEEDLE = 1\n" : ""));
  for (int f = 0; f < 2000; ++f) write(ws->root() / "build/gen" / (std::to_string(f) + ".py"), "NEEDLE = 2\n");
  auto start = std::chrono::steady_clock::now();
  auto r = call("search", {{"pattern", "^NEEDLE"}});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.text, "pkg12/m7.py:5: NEEDLE = 1\n");
  EXPECT_EQ(r.data["files_searched"], 2000 + 4);  // and README.md, .gitignore, src/*.py
  EXPECT_LT(secs, 2.0);
  std::printf("search over 2,000 files (+2,000 ignored): %.3f s\n", secs);
}

TEST_F(ToolsTest, WriteFileCreatesAndOverwrites) {
  auto r = call("write_file", {{"path", "pkg/deep/new.py"}, {"content", "x = 1\ny = 2\n"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, "created pkg/deep/new.py (2 lines, 12 bytes)");
  EXPECT_EQ(read(ws->root() / "pkg/deep/new.py"), "x = 1\ny = 2\n");
  r = call("write_file", {{"path", "README.md"}, {"content", "new"}});
  EXPECT_TRUE(contains(r.text, "overwrote README.md (1 lines")) << r.text;
  EXPECT_FALSE(call("write_file", {{"path", "src"}, {"content", "x"}}).ok);
  EXPECT_FALSE(call("write_file", {{"path", "a.txt"}}).ok);
  EXPECT_EQ(read(repo / "README.md"), "# calc\n") << "the user's tree is never written";
}

TEST_F(ToolsTest, EditExactOnce) {
  auto r = call("edit", {{"path", "src/calc.py"}, {"old_text", "return a - b"}, {"new_text", "return a + b"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, "edited src/calc.py at line 2");
  EXPECT_EQ(read(ws->root() / "src/calc.py"), "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n");
}

TEST_F(ToolsTest, EditWithSeveralMatchesListsThem) {
  auto r = call("edit", {{"path", "src/calc.py"}, {"old_text", "(a, b):"}, {"new_text", "(a, b, c):"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "occurs 2 times")) << r.text;
  EXPECT_TRUE(contains(r.text, "lines 1, 5")) << r.text;
  EXPECT_TRUE(contains(r.text, " 1\tdef add(a, b):\n 5\tdef mul(a, b):\n")) << r.text;
  EXPECT_EQ(read(ws->root() / "src/calc.py").find("(a, b, c)"), std::string::npos);
}

TEST_F(ToolsTest, EditFuzzyMatchInSeveralPlacesListsThem) {
  write(ws->root() / "dup.py", "if a:\n  x = 1\nif b:\n    x = 1\n");
  auto r = call("edit", {{"path", "dup.py"}, {"old_text", "x  =  1"}, {"new_text", "x = 2"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "ignoring whitespace it matches 2 places (lines 2, 4)")) << r.text;
  EXPECT_EQ(read(ws->root() / "dup.py"), "if a:\n  x = 1\nif b:\n    x = 1\n");
}

TEST_F(ToolsTest, EditToleratesIndentationAndReindents) {
  // The model lost the function's indentation in both texts.
  auto r = call("edit", {{"path", "src/calc.py"}, {"old_text", "def add(a, b):\nreturn a - b\n"},
                         {"new_text", "def add(a, b):\nreturn a + b\n"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(r.text, "ignoring whitespace")) << r.text;
  EXPECT_EQ(read(ws->root() / "src/calc.py"), "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n");

  // Deeper indentation in the model's text than in the file: moved back to the file's.
  r = call("edit", {{"path", "src/util.py"}, {"old_text", "        return 'helper'"}, {"new_text", "        return 'better'\n        # done"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(read(ws->root() / "src/util.py"), "def helper():\n    return 'better'\n    # done\n");
}

TEST_F(ToolsTest, EditMismatchShowsClosestLinesAndRetrySucceeds) {
  auto r = call("edit", {{"path", "src/calc.py"}, {"old_text", "def mul(x, y):\n    return x * y"}, {"new_text", "def mul(a, b):\n    return a * b * 1"}});
  ASSERT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "not found")) << r.text;
  EXPECT_TRUE(contains(r.text, "closest lines are 5-6")) << r.text;
  EXPECT_TRUE(contains(r.text, "!5\tdef mul(a, b):\n!6\t    return a * b\n")) << r.text;
  // The model copies the lines it was shown and retries.
  r = call("edit", {{"path", "src/calc.py"}, {"old_text", "def mul(a, b):\n    return a * b"}, {"new_text", "def mul(a, b):\n    return a * b * 1"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(read(ws->root() / "src/calc.py"), "return a * b * 1\n"));

  r = call("edit", {{"path", "src/calc.py"}, {"old_text", "zzzz qqqq"}, {"new_text", "y"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "Nothing in the file resembles it")) << r.text;
  EXPECT_FALSE(call("edit", {{"path", "src/calc.py"}, {"old_text", "def"}, {"new_text", "def"}}).ok);
  EXPECT_FALSE(call("edit", {{"path", "src/calc.py"}, {"old_text", ""}, {"new_text", "x"}}).ok);
  EXPECT_FALSE(call("edit", {{"path", "missing.py"}, {"old_text", "a"}, {"new_text", "b"}}).ok);
}

TEST_F(ToolsTest, EditMismatchOnALargeFileIsQuick) {
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "    value_" + std::to_string(i) + " = compute(" + std::to_string(i) + ", factor)\n";
  write(ws->root() / "big.py", big);
  std::string old_text;
  for (int i = 12000; i < 12030; ++i) old_text += "    value_" + std::to_string(i) + " = compute(" + std::to_string(i) + ", factr)\n";
  auto start = std::chrono::steady_clock::now();
  auto r = call("edit", {{"path", "big.py"}, {"old_text", old_text}, {"new_text", "x = 1\n"}});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "closest lines are 12001-12030")) << r.text.substr(0, 300);
  EXPECT_LT(secs, 3.0);
  std::printf("edit mismatch, 30 lines against 20,000: %.3f s\n", secs);
}

TEST_F(ToolsTest, EditKeepsWindowsLineEndings) {
  write(ws->root() / "win.txt", "alpha\r\n  beta\r\ngamma\r\n");
  auto r = call("edit", {{"path", "win.txt"}, {"old_text", "beta\ngamma"}, {"new_text", "BETA\ngamma"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(read(ws->root() / "win.txt"), "alpha\r\n  BETA\r\ngamma\r\n");
  r = call("edit", {{"path", "win.txt"}, {"old_text", "alpha"}, {"new_text", "alpha\nalpha2"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(read(ws->root() / "win.txt"), "alpha\r\nalpha2\r\n  BETA\r\ngamma\r\n");
}

TEST_F(ToolsTest, ApplyPatchSimpleAndWithMovedContext) {
  std::string patch =
      "--- a/src/calc.py\n+++ b/src/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n";
  auto r = call("apply_patch", {{"patch", patch}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, "patched src/calc.py (1 hunk)\n");
  EXPECT_TRUE(contains(read(ws->root() / "src/calc.py"), "return a + b"));

  // The code moved down 3 lines since the model read it, and the hunk's counts are wrong.
  write(ws->root() / "src/util.py", "import os\nimport sys\n\ndef helper():\n    return 'helper'\n");
  patch = "--- src/util.py\n+++ src/util.py\n@@ -1,9 +1,9 @@\n def helper():\n-    return 'helper'\n+    return 'fixed'\n";
  r = call("apply_patch", {{"patch", patch}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(r.text, "found 3 lines below the stated line")) << r.text;
  EXPECT_EQ(read(ws->root() / "src/util.py"), "import os\nimport sys\n\ndef helper():\n    return 'fixed'\n");
}

TEST_F(ToolsTest, ApplyPatchWithFuzzForAChangedContextLine) {
  // The line above the change was edited since the model read the file.
  write(ws->root() / "f.py", "# header changed\na = 1\nb = 2\nc = 3\n");
  auto r = call("apply_patch", {{"patch", "--- a/f.py\n+++ b/f.py\n@@ -1,4 +1,4 @@\n # header\n a = 1\n-b = 2\n+b = 20\n c = 3\n"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(r.text, "with fuzz 1")) << r.text;
  EXPECT_EQ(read(ws->root() / "f.py"), "# header changed\na = 1\nb = 20\nc = 3\n");
}

TEST_F(ToolsTest, ApplyPatchFailingHunkLeavesTheFileUntouched) {
  std::string before = read(ws->root() / "src/calc.py");
  std::string patch =
      "--- a/src/calc.py\n+++ b/src/calc.py\n"
      "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
      "@@ -5,2 +5,2 @@\n def mul(a, b):\n-    return a ** b\n+    return a * b * 2\n";
  auto r = call("apply_patch", {{"patch", patch}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "hunk 2 (@@ -5,2 +5,2 @@) does not apply")) << r.text;
  EXPECT_TRUE(contains(r.text, "Closest lines, 5-6")) << r.text;
  EXPECT_TRUE(contains(r.text, "!6\t    return a * b")) << r.text;
  EXPECT_TRUE(contains(r.text, "NOT applied"));
  EXPECT_EQ(read(ws->root() / "src/calc.py"), before) << "hunk 1 applied in memory only";
}

TEST_F(ToolsTest, ApplyPatchSeveralFilesNewAndDeleted) {
  std::string patch =
      "diff --git a/src/calc.py b/src/calc.py\nindex 1111111..2222222 100644\n--- a/src/calc.py\n+++ b/src/calc.py\n"
      "@@ -4,3 +4,3 @@\n \n def mul(a, b):\n-    return a * b\n+    return b * a\n"
      "diff --git a/docs/new.md b/docs/new.md\nnew file mode 100644\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# New\n+text\n"
      "diff --git a/src/util.py b/src/util.py\ndeleted file mode 100644\n--- a/src/util.py\n+++ /dev/null\n"
      "@@ -1,2 +0,0 @@\n-def helper():\n-    return 'helper'\n"
      "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-# nothing like this\n+# x\n";
  auto r = call("apply_patch", {{"patch", patch}});
  EXPECT_FALSE(r.ok) << "README.md's hunk fails";
  EXPECT_TRUE(contains(r.text, "patched src/calc.py")) << r.text;
  EXPECT_TRUE(contains(r.text, "patched docs/new.md (new file, 2 lines)")) << r.text;
  EXPECT_TRUE(contains(r.text, "patched src/util.py (deleted)")) << r.text;
  EXPECT_TRUE(contains(r.text, "README.md: hunk 1")) << r.text;
  EXPECT_TRUE(contains(read(ws->root() / "src/calc.py"), "return b * a"));
  EXPECT_EQ(read(ws->root() / "docs/new.md"), "# New\ntext\n");
  EXPECT_FALSE(fs::exists(ws->root() / "src/util.py"));
  EXPECT_EQ(read(ws->root() / "README.md"), "# calc\n");
  EXPECT_EQ(r.data["failed"], json::array({"README.md"}));
}

TEST_F(ToolsTest, ApplyPatchNoNewlineAtEndAndMalformedInput) {
  write(ws->root() / "n.txt", "a\nb");
  auto r = call("apply_patch", {{"patch", "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(read(ws->root() / "n.txt"), "a\nc\n");
  r = call("apply_patch", {{"patch", "just some prose, no diff"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "unified diff")) << r.text;
  r = call("apply_patch", {{"patch", "--- a/x\n+++ b/x\nno hunks here\n"}});
  EXPECT_FALSE(r.ok);
  r = call("apply_patch", {{"patch", "--- /dev/null\n+++ b/README.md\n@@ -0,0 +1 @@\n+x\n"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "already exists")) << r.text;
  r = call("apply_patch", {{"patch", "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-x\n+y\n"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "outside the workspace")) << r.text;
}

TEST_F(ToolsTest, RunCommandInTheSandbox) {
  auto r = call("run", {{"command", "echo out; echo err >&2; echo made > made.txt; exit 3"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(r.text, "exit code 3")) << r.text;
  EXPECT_TRUE(contains(r.text, "--- stdout ---\nout\n")) << r.text;
  EXPECT_TRUE(contains(r.text, "--- stderr ---\nerr\n")) << r.text;
  EXPECT_EQ(r.data["exit_code"], 3);
  EXPECT_EQ(r.data["status"], "exited");
  EXPECT_EQ(read(ws->root() / "made.txt"), "made\n") << "the command works in the workspace";
  EXPECT_FALSE(fs::exists(repo / "made.txt"));

  r = call("run", {{"command", "cat src/calc.py | head -1; pwd; ls /root 2>&1 | head -1"}});
  EXPECT_TRUE(contains(r.text, "def add(a, b):")) << r.text;
  EXPECT_TRUE(contains(r.text, "\n.\n")) << "the workspace path reads as '.': " << r.text;

  r = call("run", {{"command", "sleep 30"}, {"timeout_seconds", 1}});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.data["status"], "timed_out");
  EXPECT_TRUE(contains(r.text, "timed out after 1 s")) << r.text;

  ctx->policy.timeout = std::chrono::seconds(5);
  r = call("run", {{"command", "echo quick"}, {"timeout_seconds", 600}});
  EXPECT_TRUE(contains(r.text, "[timeout_seconds capped at the configured 5 s]")) << r.text;

  r = call("run", {{"command", "seq 1 100000"}});
  EXPECT_LE(r.text.size(), 12400u);
  EXPECT_TRUE(contains(r.text, "\n100000\n"));
  EXPECT_TRUE(contains(r.text, "bytes cut"));
  EXPECT_FALSE(call("run", {{"command", ""}}).ok);
}

TEST_F(ToolsTest, RunSeesTheSystemToolchains) {
  auto r = call("run", {{"command", "python3 -c 'print(6*7)' && node -e 'console.log(6*7)' && cmake --version | head -1 && g++ --version | head -1"}});
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_TRUE(contains(r.text, "exit code 0")) << r.text;
  EXPECT_TRUE(contains(r.text, "42\n42\ncmake version")) << r.text;
}

TEST_F(ToolsTest, RunTestsParsesFailures) {
  auto r = call("run_tests", json::object());
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "no test command is configured")) << r.text;

  write(ws->root() / "math.test.js",
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "test('adds', () => { assert.strictEqual(1 + 1, 3); });\ntest('ok', () => {});\n");
  ctx->test_command = "node --test";
  r = call("run_tests", json::object());
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.data["passed"], false);
  EXPECT_EQ(r.data["format"], "node");
  EXPECT_EQ(r.data["n_failed"], 1);
  EXPECT_EQ(r.data["n_passed"], 1);
  ASSERT_EQ(r.data["failures"].size(), 1u);
  EXPECT_EQ(r.data["failures"][0]["test"], "adds");
  EXPECT_EQ(r.data["failures"][0]["file"], "math.test.js");
  EXPECT_EQ(r.data["failures"][0]["line"], 3);
  EXPECT_TRUE(contains(r.text, "tests failed [node: 1 failed, 1 passed]\n1. adds at math.test.js:3")) << r.text;

  write(ws->root() / "math.test.js", "const test = require('node:test');\ntest('ok', () => {});\n");
  r = call("run_tests", json::object());
  EXPECT_EQ(r.data["passed"], true);
  EXPECT_TRUE(contains(r.text, "tests passed")) << r.text;

  ctx->test_command = "sleep 20";
  ctx->policy.timeout = std::chrono::seconds(1);
  r = call("run_tests", json::object());
  EXPECT_EQ(r.data["status"], "timed_out");
  EXPECT_EQ(r.data["passed"], false);
}

TEST_F(ToolsTest, RunTestsWithPytestAndACompiler) {
  write(ws->root() / "tests/test_calc.py", "from src.calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n");
  write(ws->root() / "src/__init__.py", "");
  ctx->test_command = "python3 -m pytest -q -p no:cacheprovider";
  auto r = call("run_tests", json::object());
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.data["format"], "pytest") << r.text;
  ASSERT_EQ(r.data["failures"].size(), 1u) << r.text;
  EXPECT_EQ(r.data["failures"][0]["test"], "tests/test_calc.py::test_add");
  EXPECT_EQ(r.data["failures"][0]["line"], 4);
  // A same-size fix right after the run: the next run must see it (no stale bytecode).
  ASSERT_TRUE(call("edit", {{"path", "src/calc.py"}, {"old_text", "a - b"}, {"new_text", "a + b"}}).ok);
  r = call("run_tests", json::object());
  EXPECT_EQ(r.data["passed"], true) << r.text;
  EXPECT_FALSE(fs::exists(ws->root() / "src/__pycache__"));

  write(ws->root() / "main.cpp", "int main() { return missing; }\n");
  ctx->test_command = "g++ -c main.cpp -o /tmp/main.o";
  r = call("run_tests", json::object());
  EXPECT_EQ(r.data["format"], "compiler") << r.text;
  ASSERT_EQ(r.data["failures"].size(), 1u);
  EXPECT_EQ(r.data["failures"][0]["file"], "main.cpp");
  EXPECT_EQ(r.data["failures"][0]["line"], 1);
}

TEST_F(ToolsTest, GitDiffFromStartAndCheckpoint) {
  auto r = call("git_diff", json::object());
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.text, "no changes since the start");
  call("edit", {{"path", "src/calc.py"}, {"old_text", "a - b"}, {"new_text", "a + b"}});
  std::string c = ws->checkpoint("fixed add");
  r = call("git_diff", json::object());
  EXPECT_TRUE(contains(r.text, "-    return a - b\n+    return a + b\n")) << r.text;
  r = call("git_diff", {{"checkpoint", c}});
  EXPECT_EQ(r.text, "no changes since checkpoint " + c);
  call("write_file", {{"path", "new.txt"}, {"content", "n\n"}});
  r = call("git_diff", {{"checkpoint", c}});
  EXPECT_TRUE(contains(r.text, "+++ b/new.txt")) << r.text;
  EXPECT_FALSE(contains(r.text, "a + b"));
  r = call("git_diff", {{"checkpoint", "bogus"}});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.text, "unknown checkpoint 'bogus'")) << r.text;
}

}  // namespace
