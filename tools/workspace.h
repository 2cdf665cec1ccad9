// The repository the agent works on. The agent never edits the user's working tree: create()
// snapshots the user's tree as it is (HEAD plus uncommitted and untracked-but-not-ignored files)
// into a private working copy with its own git directory kept outside it (so a sandboxed command
// cannot rewrite the checkpoints). Checkpoints are commits there; the change is the diff from the
// start snapshot, so the user's own uncommitted work is the starting point and never part of it.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace flashfix::tools {

class Workspace {
 public:
  // Throws std::runtime_error with a clear message (not a git repository, bare repository, ...).
  static Workspace create(const std::filesystem::path& repo);

  Workspace(Workspace&&) noexcept;
  Workspace& operator=(Workspace&&) noexcept;
  ~Workspace();  // removes the private copy

  const std::filesystem::path& root() const;       // where tools read, write and run (the private copy)
  const std::filesystem::path& user_repo() const;  // the user's work tree

  // Records the copy's current state (every file that is not ignored, like `git add -A`) as a
  // commit and returns its id. Ignored files (build outputs) are not recorded.
  std::string checkpoint(const std::string& label);
  // Puts the copy back to that checkpoint exactly: changed files restored, files created since
  // removed, deleted ones recreated. Ignored files are left alone (build outputs stay warm).
  // Throws std::runtime_error for an unknown id.
  void revert(const std::string& checkpoint_id);

  std::string diff() const;                                        // git-format unified diff since the start
  std::string diff_since(const std::string& checkpoint_id) const;  // ... since a checkpoint
  std::vector<std::string> changed_files() const;                  // paths touched since the start, sorted

  // Whether .gitignore (and the user's info/exclude) ignores this path, relative to root(); a
  // folder is asked about with is_dir so that rules like "build/" match it.
  // Tracked files are never ignored, as in git.
  bool is_ignored(const std::filesystem::path& relative, bool is_dir) const;

  // Applies diff() to the user's working tree (not the index). Refuses, touching nothing, when the
  // user changed any of those files since create(), naming them.
  void apply_to_user_tree() const;
  // Commits the change on top of the user's HEAD on a new branch (which must not exist) and returns
  // the commit id; the user's HEAD, index and working tree are untouched.
  std::string commit_branch(const std::string& branch, const std::string& message) const;

  struct Impl;

 private:
  explicit Workspace(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashfix::tools
