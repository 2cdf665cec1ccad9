// Owning handles for libgit2 objects and one error check, shared by the workspace and the tools
// that ask git about ignore rules.
#pragma once
#include <git2.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace flashfix::tools::git {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

using Repository = Handle<git_repository, git_repository_free>;
using Index = Handle<git_index, git_index_free>;
using Tree = Handle<git_tree, git_tree_free>;
using Commit = Handle<git_commit, git_commit_free>;
using Diff = Handle<git_diff, git_diff_free>;
using Blob = Handle<git_blob, git_blob_free>;
using Signature = Handle<git_signature, git_signature_free>;
using StatusList = Handle<git_status_list, git_status_list_free>;

// libgit2 needs one global init per process; the first use does it.
void ensure_initialized();

// Throws std::runtime_error("<what>: <libgit2's message>") when rc < 0.
void check(int rc, const std::string& what);

}  // namespace flashfix::tools::git
