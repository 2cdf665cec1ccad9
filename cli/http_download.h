// Downloads one file over HTTP(S) into DEST.part, resuming a previous partial download with a
// Range request, checking the SHA-256 as bytes arrive, and renaming to DEST only when complete
// (and matching, when a digest is expected). An interrupted download keeps its .part for next time.
#pragma once
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace flashfix::cli {

class DownloadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DownloadRequest {
  std::string url;                // http:// or https://
  std::filesystem::path dest;
  std::string expected_sha256;    // lower/upper-case hex; empty: not checked
  bool show_progress = true;
};

struct DownloadOutcome {
  std::string sha256;             // of the complete file
  uint64_t bytes = 0;             // file size
  uint64_t resumed_from = 0;      // bytes already in .part that the server did not resend
  bool already_present = false;   // DEST existed (and matched the expected digest, if given)
};

// Throws DownloadError with a message a user can act on (offline, HTTP status, checksum mismatch).
DownloadOutcome download_file(const DownloadRequest& request);

// "https://host[:port]/path" split for the HTTP client; throws DownloadError when malformed.
struct ParsedUrl {
  std::string scheme_host_port, path, file_name;
};
ParsedUrl parse_url(const std::string& url);

}  // namespace flashfix::cli
