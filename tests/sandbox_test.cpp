// Hostile commands against the sandbox. Every test ends with the same checks (TearDown): the host
// is unharmed (a canary process of the test is alive and can still be signalled), no process of
// the sandbox remains (none carries the run's marker variable), and nothing outside the workspace
// changed (the sibling directory, its file, and the list of entries next to the workspace).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "sandbox/sandbox.h"
#include "subprocess.h"

namespace fs = std::filesystem;
using namespace flashfix::sandbox;
using namespace std::chrono_literals;
using flashfix::test::host_sh;

extern char** environ;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  return pid;
}

std::vector<pid_t> processes_marked(const std::string& mark) {
  std::vector<pid_t> found;
  std::string needle = "FLASHFIX_SBX_MARK=" + mark;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string env = slurp(entry.path() / "environ");
    if (env.find(needle) != std::string::npos) found.push_back(std::stoi(name));
  }
  return found;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/flashfix-sbx-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root = tmpl;
    ws = root / "ws";
    outside = root / "outside";
    fs::create_directories(ws);
    fs::create_directories(outside);
    std::ofstream(outside / "sentinel") << "untouched\n";
    mark = fs::path(tmpl).filename().string();
    canary = spawn({"sleep", "600"});
    ASSERT_GT(canary, 0);
  }

  void TearDown() override {
    // The host is unharmed: the canary lives and answers, and the host can still start processes.
    EXPECT_EQ(kill(canary, 0), 0) << "the canary was killed";
    EXPECT_EQ(waitpid(canary, nullptr, WNOHANG), 0) << "the canary exited";
    kill(canary, SIGKILL);
    waitpid(canary, nullptr, 0);
    EXPECT_EQ(host_sh("true").first, 0) << "the host cannot start processes";
    // Nothing of the sandbox remains.
    EXPECT_TRUE(processes_marked(mark).empty()) << "a sandboxed process outlived its run";
    // Nothing outside the workspace changed.
    EXPECT_EQ(slurp(outside / "sentinel"), "untouched\n");
    std::vector<std::string> entries;
    for (const auto& e : fs::directory_iterator(root)) entries.push_back(e.path().filename());
    std::sort(entries.begin(), entries.end());
    EXPECT_EQ(entries, (std::vector<std::string>{"outside", "ws"}));
    std::vector<std::string> outside_entries;
    for (const auto& e : fs::directory_iterator(outside)) outside_entries.push_back(e.path().filename());
    EXPECT_EQ(outside_entries, std::vector<std::string>{"sentinel"});
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  Policy policy() const {
    Policy p;
    p.workspace = ws;
    p.timeout = 10s;
    p.memory = 256ull << 20;
    p.pids = 64;
    p.tmp_size = 64ull << 20;
    p.env_set = {{"FLASHFIX_SBX_MARK", mark}};
    return p;
  }

  Result sh(const std::string& script, const std::function<void(Policy&)>& tweak = {}) {
    Policy p = policy();
    if (tweak) tweak(p);
    Result r = Sandbox::run({{"sh", "-c", script}, std::nullopt}, p);
    EXPECT_NE(r.status, Status::setup_failed) << r.error;
    return r;
  }

  fs::path root, ws, outside;
  std::string mark;
  pid_t canary = -1;
};

TEST_F(SandboxTest, RunsCommandWithOwnPidsHostnameAndWorkspace) {
  auto r = sh("echo out; echo err >&2; echo $$; hostname; pwd; ls /proc | grep -c '^[0-9]'; exit 3");
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_EQ(r.exit_code, 3);
  // init is PID 1, the command PID 2; ls and grep are the only others.
  EXPECT_EQ(r.out.data, "out\n2\nflashfix-sandbox\n" + ws.string() + "\n4\n");
  EXPECT_EQ(r.err.data, "err\n");
  EXPECT_GT(r.peak_memory, 0u);
  EXPECT_GT(r.wall.count(), 0);
}

TEST_F(SandboxTest, ForkBombIsBoundedByThePidsLimit) {
  auto r = sh("bomb() { bomb | bomb & }; bomb; sleep 30", [](Policy& p) {
    p.pids = 32;
    p.timeout = 3s;
  });
  // With a cgroup (v2 or v1), pids.max makes forks fail until the timeout; without one, sampling
  // kills the tree.
  EXPECT_TRUE(r.status == Status::timed_out || r.status == Status::process_limit)
      << to_string(r.status) << " (" << to_string(r.enforcement) << ")";
  EXPECT_LT(r.wall, 8s) << to_string(r.enforcement);
}

TEST_F(SandboxTest, MemoryBombIsKilledAndReported) {
  auto r = sh("python3 -c 'a = []\nwhile True: a.append(b\"x\" * (16 << 20))'", [](Policy& p) { p.memory = 128ull << 20; });
  EXPECT_EQ(r.status, Status::memory_limit) << to_string(r.status) << " " << r.err.data;
  EXPECT_LT(r.wall, 8s);
}

TEST_F(SandboxTest, CpuSpinIsKilledAtTheTimeout) {
  auto r = sh("while :; do :; done", [](Policy& p) { p.timeout = 1s; });
  EXPECT_EQ(r.status, Status::timed_out);
  EXPECT_LT(r.wall, 3s);
}

TEST_F(SandboxTest, SigtermIgnoringSpinIsKilledAfterTheGrace) {
  auto r = sh("trap '' TERM; while :; do :; done", [](Policy& p) {
    p.timeout = 1s;
    p.cpu_seconds = 100;  // the wall clock, not RLIMIT_CPU, must end it
    p.kill_grace = 500ms;
  });
  EXPECT_EQ(r.status, Status::timed_out);
  EXPECT_GE(r.wall, 1500ms);
  EXPECT_LT(r.wall, 4s);
}

TEST_F(SandboxTest, DaemonDoesNotOutliveTheCommand) {
  // Double fork into a new session, keeping stdout open: the run must still end at once.
  auto r = sh("setsid sh -c 'sleep 60 & sleep 60' & sleep 0.2; echo started");
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.data, "started\n");
  EXPECT_LT(r.wall, 3s);
}

TEST_F(SandboxTest, ZombiesAreReaped) {
  auto r = sh("sleep 0.1 & sleep 0.1 & (sleep 0.1 &); exec sleep 0.5");
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_EQ(r.exit_code, 0);
}

TEST_F(SandboxTest, OutputFloodStopsAtTheCapQuickly) {
  auto r = sh("head -c 10G /dev/zero", [](Policy& p) {
    p.output_keep = 4096;
    p.output_stop = 64ull << 20;
  });
  EXPECT_EQ(r.status, Status::output_limit);
  EXPECT_LT(r.wall, 5s);
  EXPECT_GT(r.out.total, 64ull << 20);
  EXPECT_LT(r.out.total, 1ull << 30);
  EXPECT_TRUE(r.out.truncated());
  EXPECT_LT(r.out.data.size(), 4096u + 100);
}

TEST_F(SandboxTest, TruncatedOutputKeepsHeadAndTailAndSaysHowMuchWasCut) {
  auto r = sh("seq 1 100000", [](Policy& p) { p.output_keep = 1000; });
  ASSERT_EQ(r.status, Status::exited);
  EXPECT_EQ(r.out.data.rfind("1\n2\n3\n", 0), 0u);
  EXPECT_TRUE(r.out.data.ends_with("99999\n100000\n"));
  EXPECT_EQ(r.out.cut, r.out.total - 1000);
  EXPECT_NE(r.out.data.find("[flashfix sandbox: " + std::to_string(r.out.cut) + " bytes cut]"), std::string::npos);
}

TEST_F(SandboxTest, BinaryOutputSurvives) {
  auto r = sh("printf '\\377\\000\\376\\n\\200'; printf '\\303\\050' >&2");
  EXPECT_EQ(r.out.data, std::string("\xff\0\xfe\n\x80", 5));
  EXPECT_EQ(r.err.data, "\xc3\x28");
}

TEST_F(SandboxTest, DiskFillOfTmpStopsAtItsSize) {
  bool existed = fs::exists("/tmp/fill");
  auto r = sh("dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; df -k /tmp | tail -1", [](Policy& p) { p.tmp_size = 16ull << 20; });
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_NE(r.out.data.find("No space left"), std::string::npos) << r.out.data;
  EXPECT_EQ(fs::exists("/tmp/fill"), existed);
}

TEST_F(SandboxTest, FileSizeLimitStopsAHugeFile) {
  auto r = sh("exec head -c 50M /dev/zero > big", [](Policy& p) { p.file_size = 1 << 20; });
  EXPECT_EQ(r.status, Status::signaled);
  EXPECT_EQ(r.signal, SIGXFSZ);
  EXPECT_LE(fs::file_size(ws / "big"), 1u << 20);
}

TEST_F(SandboxTest, WritesOutsideTheWorkspaceFail) {
  fs::create_symlink(outside / "sentinel", ws / "abs_link");
  fs::create_symlink("../outside/sentinel", ws / "rel_link");
  std::string passwd = slurp("/etc/passwd");
  auto r = sh("echo pwned > ../outside/sentinel; echo pwned > " + (outside / "sentinel").string() +
              "; echo pwned >> abs_link; echo pwned >> rel_link"
              "; echo pwned > /etc/flashfix-escape && echo WROTE_ETC"
              "; echo pwned > /usr/flashfix-escape && echo WROTE_USR"
              "; echo pwned > /flashfix-escape && echo WROTE_ROOT"
              "; echo pwned >> /etc/passwd && echo WROTE_PASSWD"
              "; ln /etc/passwd hardlink && echo HARDLINKED"
              "; ln -s /etc/passwd symlink; echo pwned >> symlink && echo WROTE_SYMLINK"
              "; echo ok > inside; true");
  EXPECT_EQ(r.out.data, "");
  EXPECT_EQ(slurp(ws / "inside"), "ok\n");
  EXPECT_FALSE(fs::exists("/etc/flashfix-escape"));
  EXPECT_FALSE(fs::exists("/usr/flashfix-escape"));
  EXPECT_FALSE(fs::exists("/flashfix-escape"));
  EXPECT_EQ(slurp("/etc/passwd"), passwd);
  fs::remove(ws / "abs_link");
  fs::remove(ws / "rel_link");
}

TEST_F(SandboxTest, ReadOnlyPathsAreReadableNotWritable) {
  auto r = sh("cat " + (outside / "sentinel").string() + "; echo pwned > " + (outside / "sentinel").string() +
                  " || echo REFUSED",
              [&](Policy& p) { p.read_only = {outside}; });
  EXPECT_EQ(r.out.data, "untouched\nREFUSED\n");
}

TEST_F(SandboxTest, CallerHomeAndSecretsAreInvisible) {
  setenv("FLASHFIX_TEST_SECRET", "hunter2-secret", 1);
  std::string home = getenv("HOME") ? getenv("HOME") : "/root";
  auto r = sh("env; cat /proc/1/environ; ls -A " + home + " && echo HOME_VISIBLE; cat /etc/shadow; ls /home; ls /run");
  unsetenv("FLASHFIX_TEST_SECRET");
  EXPECT_EQ(r.out.data.find("hunter2"), std::string::npos);
  EXPECT_EQ(r.out.data.find("HOME_VISIBLE"), std::string::npos);
  EXPECT_EQ(r.out.data.find("root:"), std::string::npos) << "shadow readable";
  EXPECT_NE(r.out.data.find("HOME=/tmp"), std::string::npos);
}

// A TCP server on the host's loopback that records what one client sends.
struct LoopbackServer {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = 0;
  LoopbackServer() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd, 4);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  std::string received() const {  // non-blocking: empty when nobody connected
    fcntl(fd, F_SETFL, O_NONBLOCK);
    int c = accept(fd, nullptr, nullptr);
    if (c < 0) return {};
    std::string got(64, '\0');
    ssize_t n = read(c, got.data(), got.size());
    close(c);
    return got.substr(0, size_t(std::max<ssize_t>(n, 0)));
  }
  ~LoopbackServer() { close(fd); }
};

TEST_F(SandboxTest, NetworkOffBlocksTcpAndDns) {
  LoopbackServer server;
  auto r = sh("bash -c 'echo hi > /dev/tcp/127.0.0.1/" + std::to_string(server.port) +
              "' && echo CONNECTED; getent hosts flashfix-sandbox-test.example.com && echo RESOLVED"
              "; python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)' 2>/dev/null && echo UDP"
              "; true");
  EXPECT_EQ(r.out.data, "");
  EXPECT_EQ(server.received(), "");
  EXPECT_LT(r.wall, 5s);
}

TEST_F(SandboxTest, NetworkOnReachesTheHostLoopback) {
  LoopbackServer server;
  auto r = sh("bash -c 'echo hi > /dev/tcp/127.0.0.1/" + std::to_string(server.port) + "' && echo CONNECTED",
              [](Policy& p) { p.network = true; });
  EXPECT_EQ(r.out.data, "CONNECTED\n");
  EXPECT_EQ(server.received(), "hi\n");
}

TEST_F(SandboxTest, PtraceAndSignalsToOtherProcessesFail) {
  auto r = sh("sleep 5 & python3 -c 'import ctypes, sys; l = ctypes.CDLL(None, use_errno=True); "
              "print(l.ptrace(16, int(sys.argv[1]), 0, 0), ctypes.get_errno())' $!; kill -9 " +
              std::to_string(canary) + " 2>/dev/null && echo KILLED_CANARY; kill -9 1; sleep 0.1; kill -0 1 && echo INIT_ALIVE; kill $!");
  EXPECT_EQ(r.out.data, "-1 1\nINIT_ALIVE\n");  // EPERM; init ignores signals from inside
}

TEST_F(SandboxTest, UnshareAndMountAreDenied) {
  auto r = sh("unshare -U true && echo UNSHARED_USER; unshare -n true && echo UNSHARED_NET"
              "; mount -t tmpfs none /tmp && echo MOUNTED; umount /proc && echo UNMOUNTED; true");
  EXPECT_EQ(r.out.data, "");
}

TEST_F(SandboxTest, SixteenSandboxesInParallel) {
  std::array<Result, 16> results;
  std::vector<std::thread> threads;
  for (auto& slot : results) threads.emplace_back([&] { slot = sh("echo $$; sleep 0.3"); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    EXPECT_EQ(r.status, Status::exited) << r.error;
    EXPECT_EQ(r.out.data, "2\n");
  }
}

TEST_F(SandboxTest, CommandNotFoundAndNotExecutable) {
  auto r = Sandbox::run({{"flashfix-no-such-command"}, std::nullopt}, policy());
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.data.find("command not found"), std::string::npos);
  std::ofstream(ws / "script.sh") << "#!/bin/sh\necho hi\n";
  r = Sandbox::run({{"./script.sh"}, std::nullopt}, policy());
  EXPECT_EQ(r.exit_code, 126);
}

TEST_F(SandboxTest, CommandKilledBySignal) {
  auto r = sh("kill -SEGV $$");
  EXPECT_EQ(r.status, Status::signaled);
  EXPECT_EQ(r.signal, SIGSEGV);
}

TEST_F(SandboxTest, StdinIsFedOrEmpty) {
  std::string data("line one\nbinary \0\xff end", 22);
  auto r = Sandbox::run({{"cat"}, data}, policy());
  EXPECT_EQ(r.out.data, data);
  r = Sandbox::run({{"cat"}, std::nullopt}, policy());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out.data, "");
}

TEST_F(SandboxTest, BadPolicyIsASetupFailureWithTheReason) {
  Policy p = policy();
  p.workspace = root / "missing";
  auto r = Sandbox::run({{"true"}, std::nullopt}, p);
  EXPECT_EQ(r.status, Status::setup_failed);
  EXPECT_NE(r.error.find("missing"), std::string::npos) << r.error;
  r = Sandbox::run({{}, std::nullopt}, policy());
  EXPECT_EQ(r.status, Status::setup_failed);
}

TEST_F(SandboxTest, IsolationNoneStillBoundsAndCleansUp) {
  auto r = sh("setsid sh -c 'sleep 60 & sleep 60' & echo $$", [](Policy& p) { p.isolation = Isolation::none; });
  EXPECT_EQ(r.status, Status::exited);
  EXPECT_NE(r.out.data, "2\n");  // the host's PIDs: no namespace
  EXPECT_LT(r.wall, 3s);
}

// ---- the CLI ---------------------------------------------------------------------------------

TEST_F(SandboxTest, CliPassesStatusOutputAndStdin) {
  std::string bin = FLASHFIX_BIN, at = " --workspace " + ws.string() + " ";
  auto [code, out] = host_sh(bin + " sandbox-run" + at + "-- sh -c 'echo out; exit 7'");
  EXPECT_EQ(code, 7);
  EXPECT_EQ(out, "out\n");
  std::tie(code, out) = host_sh("echo piped | " + bin + " sandbox-run" + at + "-- cat");
  EXPECT_EQ(out, "piped\n");
  std::tie(code, out) = host_sh(bin + " sandbox-run" + at + "--timeout 0.5 -- sleep 10");
  EXPECT_EQ(code, 124);
  std::tie(code, out) = host_sh(bin + " sandbox-run" + at + "-- sh -c 'kill -KILL $$'");
  EXPECT_EQ(code, 128 + SIGKILL);
  std::tie(code, out) = host_sh(bin + " sandbox-run --help");
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("124"), std::string::npos);
}

TEST_F(SandboxTest, CliRejectsBadInputClearly) {
  std::string bin = FLASHFIX_BIN;
  auto [code, out] = host_sh(bin + " sandbox-run --memory 12Q -- true");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("expects a size"), std::string::npos) << out;
  std::tie(code, out) = host_sh(bin + " sandbox-run --workspace " + (root / "missing").string() + " -- true");
  EXPECT_EQ(code, 125);
  EXPECT_NE(out.find("missing"), std::string::npos) << out;
}

TEST_F(SandboxTest, CliStartupEnvironmentSecretsDoNotLeak) {
  // The secret sits in the supervisor's initial environment block, which /proc/PID/environ shows.
  auto [code, out] = host_sh("FLASHFIX_STARTUP_SECRET=hunter2-startup " + std::string(FLASHFIX_BIN) +
                             " sandbox-run --workspace " + ws.string() + " -- sh -c 'env; cat /proc/1/environ'");
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
}

TEST_F(SandboxTest, KernelRefusalNamesTheMissingCapabilityAndTheOptOut) {
  // A user namespace whose own limit forbids nested user namespaces, like a locked-down container.
  std::string bin = FLASHFIX_BIN;
  auto [code, out] = host_sh("unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && echo LIMITED'");
  if (code != 0 || out.find("LIMITED") == std::string::npos)
    GTEST_SKIP() << "cannot build a namespace-refusing environment here: " << out;
  std::tie(code, out) = host_sh("unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec " + bin +
                                " sandbox-run --workspace " + ws.string() + " -- true'");
  EXPECT_EQ(code, 125);
  EXPECT_NE(out.find("user namespace"), std::string::npos) << out;
  EXPECT_NE(out.find("--sandbox=none"), std::string::npos) << out;
  std::tie(code, out) = host_sh("unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec " + bin +
                                " sandbox-run --sandbox=none --workspace " + ws.string() + " -- echo fine'");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "fine\n");
}

TEST(SandboxSize, ParsesBinaryMultiples) {
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("2G"), 2ull << 30);
  EXPECT_EQ(parse_size("100k"), 100ull << 10);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_size(""), std::nullopt);
  EXPECT_EQ(parse_size("12Q"), std::nullopt);
  EXPECT_EQ(parse_size("M"), std::nullopt);
  EXPECT_EQ(parse_size("99999999999T"), std::nullopt);
}

}  // namespace
