#include "cli/http_download.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <regex>

#include "cli/progress_bar.h"
#include "cli/sha256.h"

namespace flashfix::cli {
namespace fs = std::filesystem;

ParsedUrl parse_url(const std::string& url) {
  static const std::regex re(R"(^(https?)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^?#]*)?([?#].*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) throw DownloadError("not an http(s) URL: '" + url + "'");
  ParsedUrl p;
  p.scheme_host_port = m[1].str() + "://" + m[2].str() + m[3].str();
  p.path = m[4].matched ? m[4].str() : "/";
  if (m[5].matched && m[5].str()[0] == '?') p.path += m[5].str();
  std::string last = m[4].matched ? m[4].str().substr(m[4].str().rfind('/') + 1) : "";
  if (last.empty()) throw DownloadError("the URL names no file: '" + url + "'");
  p.file_name = last;
  return p;
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// "bytes START-END/TOTAL" or "bytes */TOTAL"; TOTAL may be "*" (unknown).
struct ContentRange {
  std::optional<uint64_t> start, total;
};
ContentRange parse_content_range(const std::string& v) {
  static const std::regex re(R"(^bytes (?:([0-9]+)-[0-9]+|\*)/([0-9]+|\*)$)");
  std::smatch m;
  ContentRange r;
  if (!std::regex_match(v, m, re)) return r;
  if (m[1].matched) r.start = std::stoull(m[1].str());
  if (m[2].str() != "*") r.total = std::stoull(m[2].str());
  return r;
}

std::string why_unreachable(httplib::Error e, const std::string& host) {
  switch (e) {
    case httplib::Error::Connection:
      return "cannot connect to " + host + " (offline, or the host is down?)";
    case httplib::Error::ConnectionTimeout:
      return "connecting to " + host + " timed out (offline?)";
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLServerVerification:
      return "TLS connection to " + host + " failed: " + httplib::to_string(e) + " (are CA certificates installed?)";
    default:
      return "request to " + host + " failed: " + httplib::to_string(e);
  }
}

}  // namespace

DownloadOutcome download_file(const DownloadRequest& req) {
  ParsedUrl url = parse_url(req.url);
  std::string expected = lower(req.expected_sha256);
  DownloadOutcome out;
  Sha256 hash;

  if (fs::exists(req.dest)) {
    out.already_present = true;
    out.bytes = fs::file_size(req.dest);
    if (!expected.empty()) {
      hash.update_from_file(req.dest);
      out.sha256 = hash.hex();
      if (out.sha256 != expected)
        throw DownloadError(req.dest.string() + " exists but its SHA-256 is " + out.sha256 + ", not " + expected +
                            "; remove it to download again");
    }
    return out;
  }
  fs::create_directories(req.dest.parent_path().empty() ? fs::path(".") : req.dest.parent_path());
  fs::path part = req.dest;
  part += ".part";

  uint64_t offset = fs::exists(part) ? fs::file_size(part) : 0;
  if (offset > 0) hash.update_from_file(part);
  std::ofstream file(part, std::ios::binary | std::ios::app);
  if (!file) throw DownloadError("cannot write " + part.string());

  httplib::Client client(url.scheme_host_port);
  client.set_follow_location(true);  // model hosts redirect to their CDN
  client.set_connection_timeout(15);
  client.set_read_timeout(60);
  httplib::Headers headers;
  if (offset > 0) headers.emplace("Range", "bytes=" + std::to_string(offset) + "-");

  uint64_t total = 0, written = offset;
  int status = 0;
  std::string refusal;       // set when the response handler stops the transfer
  bool complete_already = false;
  std::optional<ProgressBar> bar;

  auto on_response = [&](const httplib::Response& res) {
    status = res.status;
    if (res.status == 206) {
      auto range = parse_content_range(res.get_header_value("Content-Range"));
      if (range.start != offset) {
        refusal = "the server answered a resume request with the wrong range ('" + res.get_header_value("Content-Range") +
                  "'); remove " + part.string() + " and try again";
        return false;
      }
      total = range.total.value_or(0);
    } else if (res.status == 200) {
      if (offset > 0) {
        // The server ignored the Range: start over rather than append a second copy.
        file.close();
        file.open(part, std::ios::binary | std::ios::trunc);
        hash.reset();
        offset = written = 0;
      }
      if (res.has_header("Content-Length")) total = std::stoull(res.get_header_value("Content-Length"));
    } else if (res.status == 416 && offset > 0) {
      // Nothing left to send: the .part may already be the whole file.
      auto range = parse_content_range(res.get_header_value("Content-Range"));
      if (range.total == offset) {
        complete_already = true;
        total = offset;
      } else {
        refusal = "the server refused to resume from byte " + std::to_string(offset) + "; remove " + part.string() +
                  " and try again";
      }
      return false;
    } else {
      refusal = "HTTP status " + std::to_string(res.status) + " for " + req.url;
      return false;
    }
    out.resumed_from = offset;
    if (req.show_progress) bar.emplace(req.dest.filename().string(), total, ProgressBar::Unit::Bytes);
    return true;
  };
  auto on_data = [&](const char* data, size_t n) {
    file.write(data, std::streamsize(n));
    if (!file) return false;
    hash.update(std::string_view(data, n));
    written += n;
    if (bar) bar->update(written);
    return true;
  };

  httplib::Result res = client.Get(url.path, headers, on_response, on_data);
  file.close();
  if (bar) bar->finish();
  if (!refusal.empty()) throw DownloadError(refusal);
  if (!complete_already) {
    if (!res) {
      std::string why = status ? "the download from " + url.scheme_host_port + " broke off: " + httplib::to_string(res.error())
                               : why_unreachable(res.error(), url.scheme_host_port);
      if (written > 0) why += "; " + std::to_string(written) + " bytes are kept in " + part.string() + ", run the same command again to resume";
      throw DownloadError(why);
    }
    if (total > 0 && written != total)
      throw DownloadError("the download stopped at " + std::to_string(written) + " of " + std::to_string(total) +
                          " bytes; run the same command again to resume");
  }

  out.sha256 = hash.hex();
  out.bytes = written;
  if (!expected.empty() && out.sha256 != expected) {
    fs::remove(part);
    throw DownloadError("checksum mismatch for " + req.url + ": expected SHA-256 " + expected + ", got " + out.sha256 +
                        "; the download was discarded");
  }
  fs::rename(part, req.dest);
  return out;
}

}  // namespace flashfix::cli
