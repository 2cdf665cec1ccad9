// flashfix pull end to end against a local HTTP server on loopback (this machine has no internet):
// download with checksum, resume after a broken connection, checksum mismatch, redirects, HTTP
// errors, the offline error, usage errors, and the default model in the config file.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "scratch.h"
#include "subprocess.h"

using namespace flashfix::test;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// What sha256sum (coreutils) says, so the expected digests do not come from our own code.
std::string sha256_of(const std::string& bytes) {
  fs::path f = scratch() / "digest.in";
  std::ofstream(f, std::ios::binary) << bytes;
  auto r = run_process({"sha256sum", f.string()});
  return r.out.substr(0, 64);
}

class ModelServer {
 public:
  ModelServer() {
    std::mt19937 rng(7);
    blob_.resize(3 << 20);
    for (auto& c : blob_) c = char(rng());
    server_.Get("/models/tiny.gguf", [this](const httplib::Request& req, httplib::Response& res) {
      ranges_seen_.push_back(req.get_header_value("Range"));
      if (!break_midway_) return res.set_content(blob_, "application/octet-stream");
      // Sends the first half, then drops the connection, like a network failure mid-download.
      res.set_content_provider(blob_.size(), "application/octet-stream", [this](size_t offset, size_t, httplib::DataSink& sink) {
        size_t half = blob_.size() / 2;
        if (offset >= half) return false;
        size_t n = std::min<size_t>(64 << 10, half - offset);
        sink.write(blob_.data() + offset, n);
        return true;
      });
    });
    server_.Get("/moved/tiny.gguf", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/models/tiny.gguf"); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ModelServer() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  std::string blob_;
  std::atomic<bool> break_midway_{false};
  std::vector<std::string> ranges_seen_;

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

class Pull : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = scratch() / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(home_);
    fs::create_directories(home_);
  }
  ProcessResult pull(std::vector<std::string> args) { return run_flashfix(args, {{"FLASHFIX_HOME", home_.string()}}); }
  std::string default_model() {
    std::ifstream in(home_ / "config.json");
    if (!in) return "";
    return nlohmann::json::parse(in).value("default_model", "");
  }
  fs::path home_;
  ModelServer server_;
};

TEST_F(Pull, DownloadsVerifiesAndBecomesTheDefault) {
  std::string digest = sha256_of(server_.blob_);
  auto r = pull({"pull", server_.url("/models/tiny.gguf"), "--sha256", digest});
  ASSERT_EQ(r.status, 0) << r.err;
  fs::path file = home_ / "models" / "tiny.gguf";
  EXPECT_EQ(r.out, file.string() + "\n");
  EXPECT_EQ(slurp(file), server_.blob_);
  EXPECT_FALSE(fs::exists(file.string() + ".part"));
  EXPECT_EQ(slurp(file.string() + ".sha256"), digest + "  tiny.gguf\n");
  EXPECT_EQ(default_model(), file.string());
  EXPECT_NE(r.err.find("verified"), std::string::npos) << r.err;

  // Pulling again finds the file and checks it instead of downloading.
  auto again = pull({"pull", server_.url("/models/tiny.gguf"), "--sha256", digest});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("already present"), std::string::npos) << again.err;
  EXPECT_EQ(server_.ranges_seen_.size(), 1u);
}

TEST_F(Pull, ResumesABrokenDownloadWithARangeRequest) {
  server_.break_midway_ = true;
  auto broken = pull({"pull", server_.url("/models/tiny.gguf")});
  EXPECT_EQ(broken.status, 1);
  EXPECT_NE(broken.err.find("run the same command again to resume"), std::string::npos) << broken.err;
  fs::path part = home_ / "models" / "tiny.gguf.part";
  ASSERT_TRUE(fs::exists(part));
  uint64_t kept = fs::file_size(part);
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, server_.blob_.size());
  EXPECT_FALSE(fs::exists(home_ / "models" / "tiny.gguf"));
  EXPECT_EQ(default_model(), "");

  server_.break_midway_ = false;
  auto resumed = pull({"pull", server_.url("/models/tiny.gguf"), "--sha256", sha256_of(server_.blob_)});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  ASSERT_EQ(server_.ranges_seen_.size(), 2u);
  EXPECT_EQ(server_.ranges_seen_[1], "bytes=" + std::to_string(kept) + "-");
  EXPECT_NE(resumed.err.find("resumed at byte " + std::to_string(kept)), std::string::npos) << resumed.err;
  EXPECT_EQ(slurp(home_ / "models" / "tiny.gguf"), server_.blob_);
}

TEST_F(Pull, DiscardsADownloadWhoseChecksumDiffers) {
  std::string wrong(64, 'a');
  auto r = pull({"pull", server_.url("/models/tiny.gguf"), "--sha256", wrong});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("checksum mismatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(sha256_of(server_.blob_)), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(home_ / "models" / "tiny.gguf"));
  EXPECT_FALSE(fs::exists(home_ / "models" / "tiny.gguf.part"));
  EXPECT_EQ(default_model(), "");
}

TEST_F(Pull, FollowsRedirectsIntoModelsDir) {
  fs::path dir = home_ / "elsewhere";
  auto r = pull({"pull", server_.url("/moved/tiny.gguf"), "--models-dir", dir.string()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(dir / "tiny.gguf"), server_.blob_);
}

TEST_F(Pull, OnlyTheFirstOrAnExplicitDefaultChangesTheDefault) {
  fs::path a = home_ / "a", b = home_ / "b";
  ASSERT_EQ(pull({"pull", server_.url("/models/tiny.gguf"), "--models-dir", a.string()}).status, 0);
  ASSERT_EQ(pull({"pull", server_.url("/models/tiny.gguf"), "--models-dir", b.string()}).status, 0);
  EXPECT_EQ(default_model(), (a / "tiny.gguf").string());
  ASSERT_EQ(pull({"pull", server_.url("/models/tiny.gguf"), "--models-dir", b.string(), "--default"}).status, 0);
  EXPECT_EQ(default_model(), (b / "tiny.gguf").string());
}

TEST_F(Pull, ReportsHttpErrorsAndBeingOffline) {
  auto missing = pull({"pull", server_.url("/models/nothing.gguf")});
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("HTTP status 404"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(home_ / "models" / "nothing.gguf"));

  // A loopback port nobody listens on (bound, then closed) stands in for a machine without a network.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);
  close(fd);
  auto offline = pull({"pull", "http://127.0.0.1:" + std::to_string(port) + "/m.gguf"});
  EXPECT_EQ(offline.status, 1);
  EXPECT_NE(offline.err.find("cannot connect"), std::string::npos) << offline.err;
  EXPECT_NE(offline.err.find("offline"), std::string::npos) << offline.err;
}

TEST_F(Pull, UsageErrors) {
  EXPECT_EQ(pull({"pull"}).status, 2);
  auto unknown = pull({"pull", "no-such-model"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("qwen3-coder-30b-a3b"), std::string::npos) << unknown.err;
  EXPECT_EQ(pull({"pull", "ftp://host/m.gguf"}).status, 2);
  EXPECT_EQ(pull({"pull", server_.url("/models/tiny.gguf"), "--sha256", "xyz"}).status, 2);
  EXPECT_EQ(pull({"pull", server_.url("/")}).status, 2);
  auto list = pull({"pull", "--list"});
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("huggingface.co"), std::string::npos);
}

TEST_F(Pull, MalformedConfigIsAClearError) {
  std::ofstream(home_ / "config.json") << "{not json";
  auto r = pull({"pull", server_.url("/models/tiny.gguf")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("config.json is not valid JSON"), std::string::npos) << r.err;
}

}  // namespace
