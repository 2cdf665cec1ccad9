// flashfix pull NAME|URL [--sha256 HEX] [--models-dir DIR] [--default] [--list]: fetches a GGUF
// model over HTTPS (resumable, checksummed) and makes it the default model for fix/ci/batch.
#include <cstdio>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/http_download.h"
#include "cli/known_models.h"
#include "cli/sha256.h"
#include "cli/user_config.h"

namespace flashfix::cli {
namespace {
namespace fs = std::filesystem;

const char* kUsage =
    "usage: flashfix pull NAME|URL [--sha256 HEX] [--models-dir DIR] [--default]\n"
    "       flashfix pull --list\n"
    "Downloads a GGUF model into the models folder ($FLASHFIX_HOME/models, else ~/.cache/flashfix/models)\n"
    "with a progress bar. An interrupted download resumes from its .part file when run again. --sha256\n"
    "checks the file (a known name may pin its own digest); the digest is printed and written next to\n"
    "the file as NAME.gguf.sha256. The first model pulled becomes the default model (used by fix, ci\n"
    "and batch without --model); --default makes this one the default. Prints the model's path.\n"
    "NAME is one of --list; anything else must be an http(s) URL.\n";

int run_pull(const std::vector<std::string>& argv) {
  Args args(argv, {{"--sha256", true}, {"--models-dir", true}, {"--default", false}, {"--list", false}});
  if (args.help()) return std::fputs(kUsage, stdout), 0;
  if (args.has("--list")) {
    for (const auto& m : known_models()) std::printf("%-22.*s %.*s\n    %.*s\n", int(m.name.size()), m.name.data(),
                                                     int(m.about.size()), m.about.data(), int(m.url.size()), m.url.data());
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one model NAME or URL");
  const std::string& what = args.positional()[0];

  std::string url, sha = args.get("--sha256").value_or("");
  if (what.find("://") != std::string::npos) {
    url = what;
  } else if (auto known = find_known_model(what)) {
    url = std::string(known->url);
    if (sha.empty()) sha = std::string(known->sha256);
  } else {
    std::string names;
    for (const auto& m : known_models()) names += "\n  " + std::string(m.name);
    throw UsageError("unknown model name '" + what + "'; known names:" + names + "\nor give an http(s) URL");
  }
  if (!sha.empty() && !is_sha256_hex(sha)) throw UsageError("--sha256 expects 64 hex digits");
  ParsedUrl parsed;
  try {
    parsed = parse_url(url);
  } catch (const DownloadError& e) {
    throw UsageError(e.what());
  }

  UserConfig config = UserConfig::load();  // a broken config fails before a long download, not after
  fs::path dir = args.has("--models-dir") ? fs::path(*args.get("--models-dir")) : default_models_dir();
  fs::path dest = fs::absolute(dir / parsed.file_name);
  std::fprintf(stderr, "pull: %s\n   -> %s\n", url.c_str(), dest.string().c_str());
  DownloadOutcome got;
  try {
    got = download_file({url, dest, sha, true});
  } catch (const DownloadError& e) {
    std::fprintf(stderr, "flashfix pull: error: %s\n", e.what());
    return 1;
  }
  if (got.already_present) std::fprintf(stderr, "pull: already present%s\n", sha.empty() ? "" : " (checksum matches)");
  else if (got.resumed_from) std::fprintf(stderr, "pull: resumed at byte %llu\n", (unsigned long long)got.resumed_from);
  if (!got.sha256.empty()) {
    std::fprintf(stderr, "pull: sha256 %s%s\n", got.sha256.c_str(), sha.empty() ? "" : " (verified)");
    std::FILE* f = std::fopen((dest.string() + ".sha256").c_str(), "w");
    if (f) std::fprintf(f, "%s  %s\n", got.sha256.c_str(), dest.filename().c_str()), std::fclose(f);
  }

  if (args.has("--default") || config.default_model().empty()) {
    config.set_default_model(dest.string());
    config.save();
    std::fprintf(stderr, "pull: default model is now %s (%s)\n", dest.string().c_str(), config_file().c_str());
  }
  std::printf("%s\n", dest.string().c_str());
  return 0;
}

const CommandRegistration reg{"pull", "download a GGUF model (resumable, checksummed) and set the default model", &run_pull};

}  // namespace
}  // namespace flashfix::cli
