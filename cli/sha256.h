// Incremental SHA-256 (OpenSSL EVP), for checking downloads as they stream in.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace flashfix::cli {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  void update_from_file(const std::filesystem::path& path);  // the whole file, read in chunks
  std::string hex();  // finishes the digest: lower-case hex; the object starts over
  void reset();

 private:
  EVP_MD_CTX* ctx_;
};

bool is_sha256_hex(std::string_view s);

}  // namespace flashfix::cli
