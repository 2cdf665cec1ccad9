#include "tools/workspace.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "tools/git_handle.h"

namespace fs = std::filesystem;

namespace flashfix::tools {

struct Workspace::Impl {
  fs::path user_root, private_dir, work;
  git::Repository user, repo;
  git_oid start{};

  ~Impl() {
    user.reset();
    repo.reset();
    std::error_code ec;
    if (!private_dir.empty()) fs::remove_all(private_dir, ec);
  }
};

namespace {

git::Signature signature() {
  git_signature* sig = nullptr;
  git::check(git_signature_now(&sig, "flashfix", "flashfix@localhost"), "making a commit signature");
  return git::Signature(sig);
}

std::string hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Files of the user's tree as `git status` sees them: tracked ones still present in the work tree
// (modified or not) and untracked ones that are not ignored. Submodules are left out.
std::vector<std::string> snapshot_paths(git_repository* user) {
  git_status_options opts = GIT_STATUS_OPTIONS_INIT;
  opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
               GIT_STATUS_OPT_INCLUDE_UNMODIFIED | GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
  git_status_list* raw = nullptr;
  git::check(git_status_list_new(&raw, user, &opts), "reading the repository's status");
  git::StatusList list(raw);
  std::set<std::string> paths;
  for (size_t i = 0, n = git_status_list_entrycount(raw); i < n; ++i) {
    const git_status_entry* e = git_status_byindex(raw, i);
    if (e->status & GIT_STATUS_WT_DELETED) continue;
    const git_diff_delta* d = e->index_to_workdir ? e->index_to_workdir : e->head_to_index;
    if (d && d->new_file.path) paths.insert(d->new_file.path);
  }
  return {paths.begin(), paths.end()};
}

// Every non-ignored file of the copy into the index (like `git add -A`), the index written as a tree.
git_oid stage_all(git_repository* repo) {
  git_index* raw = nullptr;
  git::check(git_repository_index(&raw, repo), "opening the workspace index");
  git::Index index(raw);
  git::check(git_index_update_all(raw, nullptr, nullptr, nullptr), "recording changed and deleted files");
  git::check(git_index_add_all(raw, nullptr, GIT_INDEX_ADD_DEFAULT, nullptr, nullptr), "recording new files");
  git::check(git_index_write(raw), "writing the workspace index");
  git_oid tree;
  git::check(git_index_write_tree(&tree, raw), "writing the workspace tree");
  return tree;
}

git::Tree tree_of_commit(git_repository* repo, const git_oid& commit_id) {
  git_commit* c = nullptr;
  git::check(git_commit_lookup(&c, repo, &commit_id), "looking up commit " + hex(commit_id));
  git::Commit commit(c);
  git_tree* t = nullptr;
  git::check(git_commit_tree(&t, c), "reading the tree of commit " + hex(commit_id));
  return git::Tree(t);
}

git::Tree lookup_tree(git_repository* repo, const git_oid& tree_id) {
  git_tree* t = nullptr;
  git::check(git_tree_lookup(&t, repo, &tree_id), "reading tree " + hex(tree_id));
  return git::Tree(t);
}

git_oid parse_checkpoint(git_repository* repo, const std::string& id) {
  git_oid oid;
  git_commit* c = nullptr;
  if (id.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, id.c_str()) < 0 || git_commit_lookup(&c, repo, &oid) < 0)
    throw std::runtime_error("unknown checkpoint '" + id + "'");
  git_commit_free(c);
  return oid;
}

// The diff from a commit of the copy to the copy's current files. SHOW_BINARY keeps binary changes
// applicable instead of "Binary files differ".
git::Diff diff_from(git_repository* repo, const git_oid& from_commit) {
  git::Tree from = tree_of_commit(repo, from_commit);
  git::Tree to = lookup_tree(repo, stage_all(repo));
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags = GIT_DIFF_SHOW_BINARY;
  git_diff* d = nullptr;
  git::check(git_diff_tree_to_tree(&d, repo, from.get(), to.get(), &opts), "computing the diff");
  return git::Diff(d);
}

std::string patch_text(git_diff* diff) {
  git_buf buf = GIT_BUF_INIT;
  git::check(git_diff_to_buf(&buf, diff, GIT_DIFF_FORMAT_PATCH), "formatting the diff");
  std::string text(buf.ptr ? buf.ptr : "", buf.size);
  git_buf_dispose(&buf);
  return text;
}

std::string blob_content(git_repository* repo, const git_oid& id) {
  git_blob* b = nullptr;
  git::check(git_blob_lookup(&b, repo, &id), "reading blob " + hex(id));
  git::Blob blob(b);
  return std::string(static_cast<const char*>(git_blob_rawcontent(b)), git_blob_rawsize(b));
}

// What a work-tree path holds in git's terms: a symlink's target or a file's bytes; nullopt if absent.
std::optional<std::string> worktree_content(const fs::path& p) {
  std::error_code ec;
  auto st = fs::symlink_status(p, ec);
  if (ec || !fs::exists(st)) return std::nullopt;
  if (fs::is_symlink(st)) return fs::read_symlink(p, ec).string();
  if (!fs::is_regular_file(st)) return std::nullopt;
  return slurp(p);
}

// Writes a blob of the copy to a path of the user's tree with its mode (executable, symlink).
void write_worktree_file(const fs::path& p, const std::string& content, uint16_t mode) {
  fs::create_directories(p.parent_path());
  std::error_code ec;
  fs::remove(p, ec);
  if (mode == GIT_FILEMODE_LINK) {
    fs::create_symlink(content, p);
    return;
  }
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), std::streamsize(content.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + p.string());
  auto perms = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;
  if (mode == GIT_FILEMODE_BLOB_EXECUTABLE) perms |= fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  fs::permissions(p, perms);
}

const char* delta_path(const git_diff_delta* d) {
  return d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path;
}

}  // namespace

Workspace::Workspace(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Workspace::Workspace(Workspace&&) noexcept = default;
Workspace& Workspace::operator=(Workspace&&) noexcept = default;
Workspace::~Workspace() = default;

Workspace Workspace::create(const fs::path& repo_path) {
  git::ensure_initialized();
  std::error_code ec;
  if (!fs::is_directory(repo_path, ec)) throw std::runtime_error("repository folder " + repo_path.string() + " does not exist or is not a folder");
  git_repository* raw_user = nullptr;
  int rc = git_repository_open_ext(&raw_user, repo_path.c_str(), 0, nullptr);
  if (rc == GIT_ENOTFOUND)
    throw std::runtime_error(repo_path.string() + " is not inside a git repository (run `git init` and commit there first)");
  git::check(rc, "opening the git repository at " + repo_path.string());
  auto impl = std::make_unique<Impl>();
  impl->user.reset(raw_user);
  if (git_repository_is_bare(raw_user) || !git_repository_workdir(raw_user))
    throw std::runtime_error(repo_path.string() + " is a bare git repository; flashfix needs one with a working tree");
  impl->user_root = fs::path(git_repository_workdir(raw_user)).lexically_normal();
  if (impl->user_root.filename().empty()) impl->user_root = impl->user_root.parent_path();

  std::string tmpl = (fs::temp_directory_path() / "flashfix-ws-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a private workspace under " + fs::temp_directory_path().string());
  impl->private_dir = tmpl;
  impl->work = impl->private_dir / "work";
  fs::path gitdir = impl->private_dir / "git";

  // The git directory lives next to the copy, not in it: commands run with the copy as their only
  // writable folder, so nothing they do can rewrite the checkpoints.
  git_repository_init_options init = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  init.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_DOTGIT_DIR;
  std::string work_str = impl->work.string();
  init.workdir_path = work_str.c_str();
  git_repository* raw_repo = nullptr;
  git::check(git_repository_init_ext(&raw_repo, gitdir.c_str(), &init), "creating the private workspace repository");
  impl->repo.reset(raw_repo);
  fs::remove(impl->work / ".git", ec);  // the link libgit2 leaves in the work tree; core.worktree suffices

  // The user's private ignore rules apply to the copy too, so the same files count as build
  // outputs; so do the caches that test runs leave next to the sources, which are never part of a
  // fix (this only hides untracked files: tracked ones stay tracked).
  std::string exclude;
  fs::path user_exclude = fs::path(git_repository_commondir(raw_user)) / "info" / "exclude";  // shared by linked worktrees
  if (fs::exists(user_exclude)) exclude = slurp(user_exclude) + "\n";
  exclude += "# flashfix: caches left by test runs in the sandbox\n__pycache__/\n*.py[co]\n.pytest_cache/\nnode_modules/\n";
  fs::create_directories(gitdir / "info");
  std::ofstream(gitdir / "info" / "exclude", std::ios::trunc) << exclude;

  git_index* raw_index = nullptr;
  git::check(git_repository_index(&raw_index, raw_repo), "opening the workspace index");
  git::Index index(raw_index);
  for (const auto& rel : snapshot_paths(raw_user)) {
    fs::path from = impl->user_root / rel, to = impl->work / rel;
    auto st = fs::symlink_status(from, ec);
    if (ec || !(fs::is_regular_file(st) || fs::is_symlink(st))) continue;
    fs::create_directories(to.parent_path());
    if (fs::is_symlink(st))
      fs::copy_symlink(from, to);
    else
      fs::copy_file(from, to);
    // By path, not add_all: a tracked file that matches an ignore rule is still part of the tree.
    git::check(git_index_add_bypath(raw_index, rel.c_str()), "recording " + rel);
  }
  git::check(git_index_write(raw_index), "writing the workspace index");
  git_oid tree_id;
  git::check(git_index_write_tree(&tree_id, raw_index), "writing the start tree");
  git::Tree tree = lookup_tree(raw_repo, tree_id);
  auto sig = signature();
  git::check(git_commit_create(&impl->start, raw_repo, "HEAD", sig.get(), sig.get(), nullptr,
                               ("flashfix: start, snapshot of " + impl->user_root.string()).c_str(), tree.get(), 0, nullptr),
             "committing the start snapshot");
  return Workspace(std::move(impl));
}

const fs::path& Workspace::root() const { return impl_->work; }
const fs::path& Workspace::user_repo() const { return impl_->user_root; }

std::string Workspace::checkpoint(const std::string& label) {
  git_repository* repo = impl_->repo.get();
  git::Tree tree = lookup_tree(repo, stage_all(repo));
  git_oid head_id;
  git::check(git_reference_name_to_id(&head_id, repo, "HEAD"), "reading the workspace HEAD");
  git_commit* raw_parent = nullptr;
  git::check(git_commit_lookup(&raw_parent, repo, &head_id), "reading the last checkpoint");
  git::Commit parent(raw_parent);
  const git_commit* parents[] = {raw_parent};
  auto sig = signature();
  git_oid id;
  git::check(git_commit_create(&id, repo, "HEAD", sig.get(), sig.get(), nullptr, label.empty() ? "checkpoint" : label.c_str(),
                               tree.get(), 1, parents),
             "committing checkpoint '" + label + "'");
  return hex(id);
}

void Workspace::revert(const std::string& checkpoint_id) {
  git_repository* repo = impl_->repo.get();
  git_oid target = parse_checkpoint(repo, checkpoint_id);
  // Staging first makes every current file known to the index, so the checkout below treats files
  // created since the checkpoint as tracked-and-removed rather than as untracked work to protect.
  stage_all(repo);
  git::Tree tree = tree_of_commit(repo, target);
  git_index* raw_index = nullptr;
  git::check(git_repository_index(&raw_index, repo), "opening the workspace index");
  git::Index index(raw_index);
  git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
  opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED;
  opts.baseline_index = raw_index;
  git::check(git_checkout_tree(repo, reinterpret_cast<const git_object*>(tree.get()), &opts),
             "restoring checkpoint " + checkpoint_id);
}

std::string Workspace::diff() const { return patch_text(diff_from(impl_->repo.get(), impl_->start).get()); }

std::string Workspace::diff_since(const std::string& checkpoint_id) const {
  git_repository* repo = impl_->repo.get();
  return patch_text(diff_from(repo, parse_checkpoint(repo, checkpoint_id)).get());
}

std::vector<std::string> Workspace::changed_files() const {
  git::Diff d = diff_from(impl_->repo.get(), impl_->start);
  std::set<std::string> paths;
  for (size_t i = 0, n = git_diff_num_deltas(d.get()); i < n; ++i) paths.insert(delta_path(git_diff_get_delta(d.get(), i)));
  return {paths.begin(), paths.end()};
}

bool Workspace::is_ignored(const fs::path& relative, bool is_dir) const {
  std::string path = relative.generic_string();
  // A tracked file is never ignored (as in git), and the index answers that with a binary search,
  // far cheaper than evaluating the ignore rules of every folder above the file.
  if (!is_dir) {
    git_index* index = nullptr;
    git::check(git_repository_index(&index, impl_->repo.get()), "opening the workspace index");
    bool tracked = git_index_get_bypath(index, path.c_str(), 0) != nullptr;
    git_index_free(index);
    if (tracked) return false;
  }
  if (is_dir && (path.empty() || path.back() != '/')) path += '/';
  int ignored = 0;
  git::check(git_ignore_path_is_ignored(&ignored, impl_->repo.get(), path.c_str()), "checking ignore rules for " + path);
  return ignored != 0;
}

void Workspace::apply_to_user_tree() const {
  git_repository* repo = impl_->repo.get();
  git::Diff d = diff_from(repo, impl_->start);
  size_t n = git_diff_num_deltas(d.get());
  // All checks before any write: the user's file must still be what the snapshot saw, otherwise
  // writing ours would lose their edit.
  std::vector<std::string> changed_by_user;
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d.get(), i);
    auto now = worktree_content(impl_->user_root / delta_path(delta));
    bool same = delta->status == GIT_DELTA_ADDED ? !now.has_value()
                                                 : now.has_value() && *now == blob_content(repo, delta->old_file.id);
    if (!same) changed_by_user.push_back(delta_path(delta));
  }
  if (!changed_by_user.empty()) {
    std::string list;
    for (const auto& p : changed_by_user) list += (list.empty() ? "" : ", ") + p;
    throw std::runtime_error("not applied: these files changed in " + impl_->user_root.string() +
                             " since the agent started, and applying would overwrite those changes: " + list);
  }
  // Deletions first, with the folders they empty, so a folder the fix turned into a file (or a
  // file into a folder) is out of the way when the new content is written.
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d.get(), i);
    if (delta->status != GIT_DELTA_DELETED) continue;
    fs::path target = impl_->user_root / delta_path(delta);
    fs::remove(target);
    std::error_code ec;
    for (fs::path dir = target.parent_path(); dir != impl_->user_root && fs::is_empty(dir, ec) && !ec; dir = dir.parent_path())
      fs::remove(dir, ec);
  }
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d.get(), i);
    if (delta->status == GIT_DELTA_DELETED) continue;
    write_worktree_file(impl_->user_root / delta_path(delta), blob_content(repo, delta->new_file.id), delta->new_file.mode);
  }
}

std::string Workspace::commit_branch(const std::string& branch, const std::string& message) const {
  git_repository* user = impl_->user.get();
  git_repository* repo = impl_->repo.get();
  int valid = 0;
  if (git_branch_name_is_valid(&valid, branch.c_str()) < 0 || !valid)
    throw std::runtime_error("'" + branch + "' is not a valid branch name");
  git_reference* existing = nullptr;
  if (git_branch_lookup(&existing, user, branch.c_str(), GIT_BRANCH_LOCAL) == 0) {
    git_reference_free(existing);
    throw std::runtime_error("branch '" + branch + "' already exists in " + impl_->user_root.string());
  }

  // The base is the user's HEAD (none when the repository has no commit yet).
  git_oid head_id;
  git::Commit head;
  git::Tree head_tree;
  if (git_reference_name_to_id(&head_id, user, "HEAD") == 0) {
    git_commit* c = nullptr;
    git::check(git_commit_lookup(&c, user, &head_id), "reading HEAD");
    head.reset(c);
    head_tree = tree_of_commit(user, head_id);
  }
  git_index* raw_index = nullptr;
  git::check(git_index_new(&raw_index), "creating an in-memory index");
  git::Index index(raw_index);
  if (head_tree) git::check(git_index_read_tree(raw_index, head_tree.get()), "reading HEAD's tree");

  git::Diff d = diff_from(repo, impl_->start);
  size_t n = git_diff_num_deltas(d.get());
  // All checks before anything is written to the user's repository. The fix replaces whole files;
  // where the user's HEAD differs from the snapshot (their uncommitted work), committing it would
  // carry that work along, so refuse instead.
  std::vector<std::string> uncommitted;
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d.get(), i);
    const git_index_entry* base = git_index_get_bypath(raw_index, delta_path(delta), 0);
    bool base_matches = delta->status == GIT_DELTA_ADDED ? base == nullptr
                                                         : base != nullptr && git_oid_equal(&base->id, &delta->old_file.id);
    if (!base_matches) uncommitted.push_back(delta_path(delta));
  }
  if (!uncommitted.empty()) {
    std::string list;
    for (const auto& p : uncommitted) list += (list.empty() ? "" : ", ") + p;
    throw std::runtime_error("cannot commit the fix on a branch: it changes files with uncommitted changes in " +
                             impl_->user_root.string() + " (commit or stash them first): " + list);
  }
  // Removals before additions: a folder the fix turned into a file must leave the index first.
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d.get(), i);
    if (delta->status == GIT_DELTA_DELETED)
      git::check(git_index_remove(raw_index, delta_path(delta), 0), std::string("removing ") + delta_path(delta));
  }
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d.get(), i);
    if (delta->status == GIT_DELTA_DELETED) continue;
    std::string content = blob_content(repo, delta->new_file.id);
    git_index_entry entry{};
    entry.path = delta_path(delta);
    entry.mode = delta->new_file.mode;
    git::check(git_blob_create_from_buffer(&entry.id, user, content.data(), content.size()), std::string("storing ") + entry.path);
    git::check(git_index_add(raw_index, &entry), std::string("adding ") + entry.path);
  }
  git_oid tree_id;
  git::check(git_index_write_tree_to(&tree_id, raw_index, user), "writing the fix's tree");
  git::Tree tree = lookup_tree(user, tree_id);
  auto sig = signature();
  const git_commit* parents[] = {head.get()};
  git_oid commit_id;
  git::check(git_commit_create(&commit_id, user, nullptr, sig.get(), sig.get(), nullptr, message.c_str(), tree.get(),
                               head ? 1 : 0, parents),
             "committing the fix");
  git_commit* raw_commit = nullptr;
  git::check(git_commit_lookup(&raw_commit, user, &commit_id), "reading the new commit");
  git::Commit commit(raw_commit);
  git_reference* ref = nullptr;
  git::check(git_branch_create(&ref, user, branch.c_str(), raw_commit, 0), "creating branch '" + branch + "'");
  git_reference_free(ref);
  return hex(commit_id);
}

}  // namespace flashfix::tools
