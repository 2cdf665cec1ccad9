// The workspace: a private copy of the user's tree with checkpoints, whose diff holds only the
// agent's changes, applied to the user's tree or committed on a branch without touching their work.
#include <gtest/gtest.h>

#include "git_repo.h"
#include "tools/workspace.h"

namespace fs = std::filesystem;
using flashfix::tools::Workspace;
using namespace flashfix::test;

namespace {

// A repository with committed files, an uncommitted edit, an untracked file and an ignored one.
fs::path dirty_repo(const std::string& name) {
  auto repo = make_repo(name, {{"a.txt", "one\ntwo\nthree\n"}, {"src/b.py", "print('b')\n"}, {".gitignore", "build/\n*.log\n"}});
  write(repo / "a.txt", "one\ntwo (user's uncommitted edit)\nthree\n");
  write(repo / "notes.md", "user's untracked notes\n");
  write(repo / "build/out.o", "ignored build output");
  write(repo / "run.log", "ignored log");
  return repo;
}

TEST(Workspace, NotARepositoryIsAClearError) {
  auto dir = scratch() / "plain";
  fs::create_directories(dir);
  try {
    Workspace::create(dir);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is not inside a git repository"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Workspace::create(scratch() / "does-not-exist"), std::runtime_error);
}

TEST(Workspace, SnapshotIsTheUsersTreeAsItIsWithoutIgnoredFiles) {
  auto repo = dirty_repo("snapshot");
  auto ws = Workspace::create(repo);
  EXPECT_NE(ws.root(), repo);
  EXPECT_EQ(fs::canonical(ws.user_repo()), fs::canonical(repo));
  EXPECT_EQ(read(ws.root() / "a.txt"), "one\ntwo (user's uncommitted edit)\nthree\n");
  EXPECT_EQ(read(ws.root() / "notes.md"), "user's untracked notes\n");
  EXPECT_EQ(read(ws.root() / "src/b.py"), "print('b')\n");
  EXPECT_FALSE(fs::exists(ws.root() / "build"));
  EXPECT_FALSE(fs::exists(ws.root() / "run.log"));
  EXPECT_FALSE(fs::exists(ws.root() / ".git")) << "the checkpoints' git directory is outside the copy";
  EXPECT_EQ(ws.diff(), "");
  EXPECT_TRUE(ws.changed_files().empty());
  EXPECT_TRUE(ws.is_ignored("build", true));
  EXPECT_TRUE(ws.is_ignored("x.log", false));
  EXPECT_FALSE(ws.is_ignored("a.txt", false));
}

TEST(Workspace, DiffHoldsOnlyTheAgentsChanges) {
  auto repo = dirty_repo("diff");
  auto ws = Workspace::create(repo);
  write(ws.root() / "a.txt", "one\ntwo (user's uncommitted edit)\nthree\nfour (agent)\n");
  write(ws.root() / "src/new.py", "x = 1\n");
  fs::remove(ws.root() / "notes.md");
  write(ws.root() / "build/agent.o", "ignored");
  std::string diff = ws.diff();
  EXPECT_NE(diff.find("diff --git a/a.txt b/a.txt"), std::string::npos) << diff;
  EXPECT_NE(diff.find("+four (agent)"), std::string::npos);
  EXPECT_EQ(diff.find("+two (user's uncommitted edit)"), std::string::npos) << "the user's edit is the starting point";
  EXPECT_NE(diff.find("+++ b/src/new.py"), std::string::npos);
  EXPECT_NE(diff.find("deleted file mode"), std::string::npos);
  EXPECT_EQ(diff.find("agent.o"), std::string::npos);
  EXPECT_EQ(ws.changed_files(), (std::vector<std::string>{"a.txt", "notes.md", "src/new.py"}));
}

TEST(Workspace, RevertRestoresACheckpointExactly) {
  auto repo = dirty_repo("revert");
  auto ws = Workspace::create(repo);
  write(ws.root() / "a.txt", "first attempt\n");
  std::string c1 = ws.checkpoint("after first attempt");
  EXPECT_EQ(c1.size(), 40u);

  write(ws.root() / "a.txt", "second attempt\n");
  write(ws.root() / "deep/new/file.txt", "new\n");
  fs::remove(ws.root() / "src/b.py");
  fs::permissions(ws.root() / "notes.md", fs::perms::owner_exec, fs::perm_options::add);
  ws.revert(c1);
  EXPECT_EQ(read(ws.root() / "a.txt"), "first attempt\n");
  EXPECT_FALSE(fs::exists(ws.root() / "deep/new/file.txt"));
  EXPECT_FALSE(fs::exists(ws.root() / "deep")) << "emptied folders go too";
  EXPECT_EQ(read(ws.root() / "src/b.py"), "print('b')\n");
  EXPECT_EQ(fs::status(ws.root() / "notes.md").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_EQ(ws.changed_files(), std::vector<std::string>{"a.txt"});

  // Back to the very start: the start snapshot is reachable through a checkpoint taken before any change.
  auto ws2 = Workspace::create(repo);
  std::string start = ws2.checkpoint("start");
  write(ws2.root() / "x.txt", "x");
  ws2.revert(start);
  EXPECT_EQ(ws2.diff(), "");
  EXPECT_THROW(ws2.revert("0123456789012345678901234567890123456789"), std::runtime_error);
  EXPECT_THROW(ws2.revert("not-a-checkpoint"), std::runtime_error);
}

TEST(Workspace, TestRunCachesStayOutOfTheDiff) {
  auto repo = make_repo("caches", {{"m.py", "x = 1\n"}});
  auto ws = Workspace::create(repo);
  write(ws.root() / "__pycache__/m.cpython-311.pyc", "bytecode");
  write(ws.root() / ".pytest_cache/v/cache/lastfailed", "{}");
  write(ws.root() / "node_modules/left-pad/index.js", "module.exports = 1;");
  EXPECT_EQ(ws.diff(), "");
  EXPECT_TRUE(ws.changed_files().empty());
}

TEST(Workspace, DiffSinceACheckpoint) {
  auto repo = make_repo("since", {{"f.txt", "1\n"}});
  auto ws = Workspace::create(repo);
  write(ws.root() / "f.txt", "2\n");
  auto c = ws.checkpoint("two");
  write(ws.root() / "f.txt", "3\n");
  std::string since = ws.diff_since(c);
  EXPECT_NE(since.find("-2\n+3\n"), std::string::npos) << since;
  EXPECT_NE(ws.diff().find("-1\n+3\n"), std::string::npos);
}

TEST(Workspace, ApplyToUserTreeKeepsTheirWorkAndTheirIndex) {
  auto repo = dirty_repo("apply");
  std::string status_before = git(repo, "status --porcelain");
  auto ws = Workspace::create(repo);
  write(ws.root() / "src/b.py", "print('fixed')\n");
  write(ws.root() / "src/c.py", "new = True\n");
  const std::string binary("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff", 17);
  write(ws.root() / "img/logo.png", binary);
  fs::remove(ws.root() / "notes.md");
  ws.apply_to_user_tree();
  EXPECT_EQ(read(repo / "img/logo.png"), binary);
  EXPECT_EQ(read(repo / "src/b.py"), "print('fixed')\n");
  EXPECT_EQ(read(repo / "src/c.py"), "new = True\n");
  EXPECT_FALSE(fs::exists(repo / "notes.md"));
  EXPECT_EQ(read(repo / "a.txt"), "one\ntwo (user's uncommitted edit)\nthree\n") << "the user's edit stays";
  EXPECT_EQ(read(repo / "build/out.o"), "ignored build output");
  EXPECT_EQ(git(repo, "diff --cached --name-only"), "") << "the index is not touched";
  EXPECT_NE(git(repo, "status --porcelain"), status_before);
}

TEST(Workspace, ApplyAndCommitTurnAFolderIntoAFile) {
  auto repo = make_repo("dir-to-file", {{"config/a.ini", "a\n"}, {"config/b.ini", "b\n"}, {"keep.txt", "k\n"}});
  auto ws = Workspace::create(repo);
  fs::remove_all(ws.root() / "config");
  write(ws.root() / "config", "flat config\n");
  std::string id = ws.commit_branch("flat", "flatten config");
  EXPECT_EQ(git(repo, "ls-tree --name-only flat"), "config\nkeep.txt\n");
  ws.apply_to_user_tree();
  EXPECT_TRUE(fs::is_regular_file(repo / "config"));
  EXPECT_EQ(read(repo / "config"), "flat config\n");
  EXPECT_EQ(read(repo / "keep.txt"), "k\n");
}

TEST(Workspace, ApplyRefusesWhenTheUserChangedTheSameFileMeanwhile) {
  auto repo = dirty_repo("conflict");
  auto ws = Workspace::create(repo);
  write(ws.root() / "a.txt", "agent's version\n");
  write(ws.root() / "src/b.py", "print('agent')\n");
  write(repo / "a.txt", "user kept typing\n");
  try {
    ws.apply_to_user_tree();
    FAIL() << "expected a refusal";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("a.txt"), std::string::npos) << what;
    EXPECT_EQ(what.find("b.py"), std::string::npos) << what;
  }
  EXPECT_EQ(read(repo / "a.txt"), "user kept typing\n");
  EXPECT_EQ(read(repo / "src/b.py"), "print('b')\n") << "nothing is applied when anything conflicts";
}

TEST(Workspace, CommitBranchLeavesHeadIndexAndFilesAlone) {
  auto repo = make_repo("branch", {{"lib.py", "def f():\n    return 1\n"}, {"keep.txt", "k\n"}});
  write(repo / "keep.txt", "user's uncommitted edit\n");
  std::string head = git(repo, "rev-parse HEAD");
  std::string status = git(repo, "status --porcelain");
  auto ws = Workspace::create(repo);
  write(ws.root() / "lib.py", "def f():\n    return 2\n");
  write(ws.root() / "tests/test_lib.py", "from lib import f\n");
  std::string id = ws.commit_branch("flashfix/fix-1", "Fix f");
  EXPECT_EQ(git(repo, "rev-parse flashfix/fix-1"), id + "\n");
  EXPECT_EQ(git(repo, "rev-parse HEAD"), head);
  EXPECT_EQ(git(repo, "rev-parse flashfix/fix-1^"), head) << "the fix sits on the user's HEAD";
  EXPECT_EQ(git(repo, "status --porcelain"), status);
  EXPECT_EQ(read(repo / "lib.py"), "def f():\n    return 1\n");
  EXPECT_EQ(git(repo, "show flashfix/fix-1:lib.py"), "def f():\n    return 2\n");
  EXPECT_EQ(git(repo, "show flashfix/fix-1:keep.txt"), "k\n") << "the user's uncommitted work is not in the commit";
  EXPECT_EQ(git(repo, "show flashfix/fix-1:tests/test_lib.py"), "from lib import f\n");
  EXPECT_EQ(git(repo, "log -1 --format=%s flashfix/fix-1"), "Fix f\n");

  EXPECT_THROW(ws.commit_branch("flashfix/fix-1", "again"), std::runtime_error);
  EXPECT_THROW(ws.commit_branch("bad..name", "x"), std::runtime_error);
  // A fix that touches a file the user has uncommitted changes in cannot be committed cleanly.
  write(ws.root() / "keep.txt", "agent too\n");
  EXPECT_THROW(ws.commit_branch("flashfix/fix-2", "x"), std::runtime_error);
}

TEST(Workspace, ModesAndSymlinksSurviveTheSnapshot) {
  auto repo = make_repo("modes", {{"run.sh", "#!/bin/sh\necho hi\n"}, {"target.txt", "t\n"}});
  fs::permissions(repo / "run.sh", fs::perms::owner_exec, fs::perm_options::add);
  fs::create_symlink("target.txt", repo / "link.txt");
  git(repo, "add -A");
  git(repo, "commit -q -m modes");
  auto ws = Workspace::create(repo);
  EXPECT_NE(fs::status(ws.root() / "run.sh").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_TRUE(fs::is_symlink(ws.root() / "link.txt"));
  EXPECT_EQ(fs::read_symlink(ws.root() / "link.txt"), "target.txt");
}

TEST(Workspace, PrivateCopyIsRemovedWithTheWorkspace) {
  auto repo = make_repo("cleanup", {{"f", "1\n"}});
  fs::path root;
  {
    auto ws = Workspace::create(repo);
    root = ws.root();
    auto moved = std::move(ws);
    EXPECT_TRUE(fs::exists(root));
  }
  EXPECT_FALSE(fs::exists(root));
  EXPECT_FALSE(fs::exists(root.parent_path()));
}

TEST(Workspace, EmptyRepositoryWithoutCommits) {
  auto dir = scratch() / "unborn";
  fs::remove_all(dir);
  fs::create_directories(dir);
  git(dir, "init -q -b main");
  write(dir / "first.txt", "hello\n");
  auto ws = Workspace::create(dir);
  EXPECT_EQ(read(ws.root() / "first.txt"), "hello\n");
  write(ws.root() / "added.txt", "by the agent\n");
  ws.commit_branch("fix", "first fix");
  EXPECT_EQ(git(dir, "show fix:added.txt"), "by the agent\n");
  EXPECT_EQ(git(dir, "ls-tree --name-only fix"), "added.txt\n") << "the user's untracked file stays theirs";
  EXPECT_EQ(git(dir, "rev-list --count fix"), "1\n");
}

}  // namespace
