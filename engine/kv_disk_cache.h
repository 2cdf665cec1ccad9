// Prefix-cache blocks on disk, so a later process starts from what an earlier one computed.
//
// Layout: DIR/<key>/<chain hash>.kvb, one file per full token block, where <key> hashes the model
// file's contents together with everything that shapes its KV (the caller's kv_identity): a changed
// model file gets a new key and never reads stale blocks. Hashing a multi-GB file costs seconds, so
// the file hash is memoized in DIR/model-ids/ by path, size, mtime and inode. Files are written to a
// temporary name and renamed; a load checks the header, the token chain and a checksum, and a bad
// file is reported once, deleted and treated as absent. The directory is trimmed to a byte bound,
// least recently used files first (a load refreshes a file's mtime).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashfix {

struct DiskBlock {
  uint64_t hash = 0, parent = 0;    // chain hashes (prefix_hash.h)
  std::vector<int32_t> tokens;      // kKvBlockTokens tokens
  std::vector<uint8_t> full;        // KvStore block bytes
  std::vector<uint8_t> sliding;     // empty when the sliding-window block was not kept
};

class KvDiskCache {
 public:
  // Creates DIR if needed; throws std::runtime_error when it cannot be created or the model read.
  KvDiskCache(std::string dir, const std::string& model_path, std::string_view kv_identity, uint64_t max_bytes);

  uint64_t key() const { return key_; }
  // Never throws: a cache that cannot be written is reported once and the run goes on without it.
  void save(const DiskBlock& block);
  // The block stored under `hash`, validated against the expected sizes; nullopt when absent or bad.
  std::optional<DiskBlock> load(uint64_t hash, size_t full_bytes, size_t sliding_bytes);
  bool contains(uint64_t hash) const;

 private:
  std::string path_of(uint64_t hash) const;
  void report(const std::string& what);
  void trim();

  std::string dir_, blocks_dir_;
  uint64_t key_ = 0;
  uint64_t max_bytes_;
  uint64_t total_bytes_ = 0;  // of every block file under dir_, all models
  bool reported_write_error_ = false;
};

// The memoized content hash of a model file (see above).
uint64_t model_file_hash(const std::string& cache_dir, const std::string& model_path);

}  // namespace flashfix
