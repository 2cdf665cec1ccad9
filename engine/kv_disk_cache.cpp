#include "engine/kv_disk_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <xxhash.h>

#include "engine/prefix_hash.h"

namespace flashfix {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'F', 'F', 'K', 'V', 'B', 'L', 'K', '1'};

// Fixed-size header; the tokens, the full block and the sliding block follow, then an XXH3 of all.
struct Header {
  char magic[8];
  uint64_t key, hash, parent;
  uint64_t n_tokens, full_bytes, sliding_bytes;
};

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

uint64_t hash_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::vector<char> buf(size_t(8) << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    XXH3_64bits_update(st, buf.data(), size_t(in.gcount()));
  }
  const bool bad = in.bad();
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  if (bad) throw std::runtime_error(path + ": read failed");
  return h;
}

// Writes bytes to path through a temporary file and a rename, so readers see all or nothing.
bool write_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fclose(f) == 0 && ok;
  if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) return true;
  std::remove(tmp.c_str());
  return false;
}

}  // namespace

uint64_t model_file_hash(const std::string& cache_dir, const std::string& model_path) {
  struct stat st {};
  if (::stat(model_path.c_str(), &st) != 0) throw std::runtime_error(model_path + ": cannot stat");
  const std::string abs = fs::absolute(model_path).lexically_normal().string();
  const std::string stamp = std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                            std::to_string(st.st_mtim.tv_nsec) + " " + std::to_string(st.st_ino);
  const fs::path memo = fs::path(cache_dir) / "model-ids" / (hex(XXH3_64bits(abs.data(), abs.size())) + ".txt");
  {
    std::ifstream in(memo);
    std::string line, h;
    if (std::getline(in, line) && std::getline(in, h) && line == stamp && h.size() == 16)
      return std::strtoull(h.c_str(), nullptr, 16);
  }
  const uint64_t h = hash_file(model_path);
  std::error_code ec;
  fs::create_directories(memo.parent_path(), ec);
  const std::string text = stamp + "\n" + hex(h) + "\n" + abs + "\n";
  write_atomically(memo.string(), std::vector<uint8_t>(text.begin(), text.end()));  // a lost memo only costs a rehash
  return h;
}

KvDiskCache::KvDiskCache(std::string dir, const std::string& model_path, std::string_view kv_identity, uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) throw std::runtime_error(dir_ + ": cannot create the cache directory");
  const uint64_t file_hash = model_file_hash(dir_, model_path);
  key_ = XXH3_64bits_withSeed(kv_identity.data(), kv_identity.size(), file_hash);
  blocks_dir_ = (fs::path(dir_) / hex(key_)).string();
  fs::create_directories(blocks_dir_, ec);
  if (ec) throw std::runtime_error(blocks_dir_ + ": cannot create");
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && it->path().extension() == ".kvb") total_bytes_ += it->file_size(ec);
}

std::string KvDiskCache::path_of(uint64_t hash) const { return blocks_dir_ + "/" + hex(hash) + ".kvb"; }

bool KvDiskCache::contains(uint64_t hash) const {
  std::error_code ec;
  return fs::exists(path_of(hash), ec);
}

void KvDiskCache::report(const std::string& what) { std::fprintf(stderr, "flashfix: prefix cache: %s\n", what.c_str()); }

void KvDiskCache::save(const DiskBlock& b) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.key = key_, h.hash = b.hash, h.parent = b.parent;
  h.n_tokens = b.tokens.size(), h.full_bytes = b.full.size(), h.sliding_bytes = b.sliding.size();
  std::vector<uint8_t> bytes(sizeof h);
  std::memcpy(bytes.data(), &h, sizeof h);
  auto append = [&](const void* p, size_t n) { bytes.insert(bytes.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); };
  append(b.tokens.data(), b.tokens.size() * sizeof(int32_t));
  append(b.full.data(), b.full.size());
  append(b.sliding.data(), b.sliding.size());
  const uint64_t sum = XXH3_64bits(bytes.data(), bytes.size());
  append(&sum, sizeof sum);
  const std::string path = path_of(b.hash);
  std::error_code ec;
  const uint64_t old = fs::exists(path, ec) ? fs::file_size(path, ec) : 0;
  if (!write_atomically(path, bytes)) {
    if (!std::exchange(reported_write_error_, true)) report("cannot write " + path + "; blocks are not persisted");
    return;
  }
  total_bytes_ += bytes.size() - std::min(old, uint64_t(bytes.size()));
  if (total_bytes_ > max_bytes_) trim();
}

std::optional<DiskBlock> KvDiskCache::load(uint64_t hash, size_t full_bytes, size_t sliding_bytes) {
  const std::string path = path_of(hash);
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto reject = [&](const std::string& why) -> std::optional<DiskBlock> {
    report("ignoring " + path + ": " + why);
    std::error_code ec;
    fs::remove(path, ec);  // reported once: the bad file is gone
    return std::nullopt;
  };
  Header h{};
  if (bytes.size() < sizeof h + sizeof(uint64_t)) return reject("truncated");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return reject("not a block file");
  if (h.key != key_ || h.hash != hash) return reject("written for another model or block");
  if (h.full_bytes != full_bytes || (h.sliding_bytes != 0 && h.sliding_bytes != sliding_bytes) || h.n_tokens > 1024)
    return reject("block geometry differs");
  const size_t expect = sizeof h + h.n_tokens * sizeof(int32_t) + h.full_bytes + h.sliding_bytes + sizeof(uint64_t);
  if (bytes.size() != expect) return reject("truncated or oversized");
  uint64_t sum;
  std::memcpy(&sum, bytes.data() + expect - sizeof sum, sizeof sum);
  if (sum != XXH3_64bits(bytes.data(), expect - sizeof sum)) return reject("checksum mismatch");
  DiskBlock b;
  b.hash = h.hash, b.parent = h.parent;
  const uint8_t* p = bytes.data() + sizeof h;
  b.tokens.resize(h.n_tokens);
  std::memcpy(b.tokens.data(), p, h.n_tokens * sizeof(int32_t));
  p += h.n_tokens * sizeof(int32_t);
  if (chain_hash(b.parent, b.tokens) != hash) return reject("tokens do not match the chain hash");
  b.full.assign(p, p + h.full_bytes);
  p += h.full_bytes;
  b.sliding.assign(p, p + h.sliding_bytes);
  std::error_code ec;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // recently used: trimmed last
  return b;
}

void KvDiskCache::trim() {
  struct Item { fs::file_time_type mtime; uint64_t size; fs::path path; };
  std::vector<Item> items;
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2) || it->path().extension() != ".kvb") continue;
    items.push_back({it->last_write_time(e2), it->file_size(e2), it->path()});
    total += items.back().size;
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.mtime < b.mtime; });
  const uint64_t target = max_bytes_ / 10 * 9;  // trim with slack so every save does not rescan
  for (const Item& i : items) {
    if (total <= target) break;
    if (fs::remove(i.path, ec)) total -= i.size;
  }
  total_bytes_ = total;
}

}  // namespace flashfix
