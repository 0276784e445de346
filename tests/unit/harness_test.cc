// Checks of the process/HTTP test harness itself (tests/support/harness.h),
// using ordinary system binaries and in-process HTTP servers.
#include "support/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace {

namespace vt = verdict::testing;
using namespace std::chrono_literals;

bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  // Reparented and not (yet) reaped by init: a zombie is dead too.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

// Restores (or unsets) an environment variable at scope exit.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = getenv(name);
    if (old != nullptr) old_ = old;
    if (value != nullptr)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_.has_value())
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// An httplib server on 127.0.0.1:<free port> running in a background thread.
class LocalServer {
 public:
  explicit LocalServer(std::function<void(httplib::Server&)> routes) {
    routes(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    // bind_to_any_port already listens: connections queue until the thread serves.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(FreePortTest, ReturnsDistinctBindablePorts) {
  std::set<int> seen;
  for (int i = 0; i < 20; ++i) {
    int port = vt::FreePort();
    ASSERT_GT(port, 0);
    ASSERT_LT(port, 65536);
    EXPECT_TRUE(seen.insert(port).second) << "port " << port << " handed out twice";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << "port " << port << ": " << strerror(errno);
    EXPECT_EQ(listen(fd, 1), 0);
    close(fd);
  }
}

TEST(TempDirTest, CreatesAndRemovesRecursively) {
  ScopedEnv keep("VERDICT_KEEP_TEST_DIRS", nullptr);
  std::string path;
  {
    vt::TempDir dir("verdict-harness-test");
    path = dir.path();
    ASSERT_FALSE(path.empty());
    EXPECT_EQ(path.rfind("/tmp/verdict-harness-test.", 0), 0u) << path;
    ASSERT_TRUE(std::filesystem::is_directory(path));
    std::string nested = dir.MakeSub("a/b/c");
    EXPECT_EQ(nested, path + "/a/b/c");
    ASSERT_TRUE(std::filesystem::is_directory(nested));
    std::ofstream(nested + "/file.txt") << "data";
    EXPECT_EQ(vt::ReadFile(nested + "/file.txt"), "data");
    EXPECT_EQ(dir.Sub("x"), path + "/x");
    EXPECT_FALSE(std::filesystem::exists(dir.Sub("x")));
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << path << " still exists";
}

TEST(TempDirTest, KeptWhenRequested) {
  ScopedEnv keep("VERDICT_KEEP_TEST_DIRS", "1");
  std::string path;
  {
    vt::TempDir dir("verdict-harness-keep");
    path = dir.path();
    std::ofstream(path + "/f") << "x";
  }
  EXPECT_TRUE(std::filesystem::exists(path + "/f"));
  std::filesystem::remove_all(path);
}

TEST(TempDirTest, DistinctDirectories) {
  vt::TempDir a, b;
  EXPECT_NE(a.path(), b.path());
}

TEST(TailFileTest, ReturnsLastLines) {
  vt::TempDir dir;
  std::string f = dir.Sub("log");
  {
    std::ofstream out(f);
    for (int i = 1; i <= 100; ++i) out << "line " << i << "\n";
  }
  EXPECT_EQ(vt::TailFile(f, 3), "line 98\nline 99\nline 100\n");
  EXPECT_EQ(vt::TailFile(f, 0), "");
  EXPECT_EQ(vt::TailFile(f, 1000).substr(0, 7), "line 1\n");
  EXPECT_NE(vt::TailFile(dir.Sub("missing"), 5).find("no log"), std::string::npos);
}

TEST(ProcessTest, Kill9GivesStatus137) {
  vt::Process p({"/bin/sleep", {"30"}, {}, ""});
  ASSERT_TRUE(p.Start()) << p.error();
  EXPECT_GT(p.pid(), 0);
  EXPECT_TRUE(p.Running());
  EXPECT_FALSE(p.WaitExit(50ms).has_value());
  pid_t pid = p.pid();
  auto t0 = std::chrono::steady_clock::now();
  p.Kill9();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_FALSE(p.Running());
  EXPECT_EQ(p.exit_status(), 137);
  EXPECT_EQ(p.WaitExit(0ms), 137);
  EXPECT_TRUE(ProcessGone(pid));
  p.Kill9();  // idempotent
  EXPECT_EQ(p.exit_status(), 137);
}

TEST(ProcessTest, ExitCodesAreReported) {
  for (int code : {0, 1, 3, 137}) {
    vt::Process p({"/bin/sh", {"-c", "exit " + std::to_string(code)}, {}, ""});
    ASSERT_TRUE(p.Start()) << p.error();
    EXPECT_EQ(p.WaitExit(5s), code);
    EXPECT_FALSE(p.Running());
  }
}

TEST(ProcessTest, DeathBySignalIs128PlusSignal) {
  vt::Process p({"/bin/sh", {"-c", "kill -ABRT $$"}, {}, ""});
  ASSERT_TRUE(p.Start()) << p.error();
  EXPECT_EQ(p.WaitExit(5s), 128 + SIGABRT);
}

TEST(ProcessTest, TerminateSendsSigterm) {
  vt::Process p({"/bin/sleep", {"30"}, {}, ""});
  ASSERT_TRUE(p.Start()) << p.error();
  EXPECT_EQ(p.Terminate(5s), 128 + SIGTERM);
  EXPECT_FALSE(p.Running());
  // A second Terminate returns the recorded status.
  EXPECT_EQ(p.Terminate(1s), 128 + SIGTERM);
}

TEST(ProcessTest, TerminateReturnsExitCodeOfCleanShutdown) {
  vt::Process p({"/bin/sh", {"-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"}, {}, ""});
  ASSERT_TRUE(p.Start()) << p.error();
  std::this_thread::sleep_for(200ms);  // let the shell install its trap
  EXPECT_EQ(p.Terminate(5s), 0);
}

TEST(ProcessTest, TerminateKillsAProcessThatIgnoresSigterm) {
  vt::Process p({"/bin/sh", {"-c", "trap '' TERM; exec sleep 30"}, {}, ""});
  ASSERT_TRUE(p.Start()) << p.error();
  std::this_thread::sleep_for(200ms);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.Terminate(300ms), -1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_FALSE(p.Running());
  EXPECT_EQ(p.exit_status(), 137);
}

TEST(ProcessTest, ChildGetsACleanSignalMask) {
  // verdict mains block SIGTERM; a test process that did the same must not pass
  // the blocked mask on, or Terminate() could never stop the child.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  vt::Process p({"/bin/sleep", {"30"}, {}, ""});
  bool started = p.Start();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(started) << p.error();
  EXPECT_EQ(p.Terminate(5s), 128 + SIGTERM);
}

TEST(ProcessTest, LogCapturesStdoutAndStderrAcrossRestarts) {
  vt::TempDir dir;
  std::string log = dir.Sub("p.log");
  vt::Process p({"/bin/sh", {"-c", "echo to-stdout; echo to-stderr >&2"}, {}, log});
  ASSERT_TRUE(p.Start()) << p.error();
  ASSERT_EQ(p.WaitExit(5s), 0);
  pid_t first = p.pid();
  ASSERT_TRUE(p.Start()) << p.error();  // restart with the same options
  ASSERT_EQ(p.WaitExit(5s), 0);
  EXPECT_NE(p.pid(), first);
  std::string text = vt::ReadFile(log);
  size_t a = text.find("to-stdout"), b = text.find("to-stderr");
  ASSERT_NE(a, std::string::npos) << text;
  ASSERT_NE(b, std::string::npos) << text;
  EXPECT_NE(text.find("to-stdout", b), std::string::npos) << "log was not appended:\n" << text;
  EXPECT_NE(text.find("==== [harness"), std::string::npos) << text;
  EXPECT_EQ(p.LogTail(1), "to-stderr\n");
}

TEST(ProcessTest, EnvironmentIsPassedAndFailpointsAreNotInherited) {
  ScopedEnv fp("VERDICT_FAILPOINTS", "coordinator.before_decision_log=crash");
  ScopedEnv inherited("VERDICT_HARNESS_TEST_INHERITED", "yes");
  vt::TempDir dir;
  std::string log = dir.Sub("env.log");
  vt::Process p(
      {"/bin/sh",
       {"-c",
        "echo \"foo=$FOO fp=${VERDICT_FAILPOINTS-unset} inh=$VERDICT_HARNESS_TEST_INHERITED\""},
       {{"FOO", "bar baz"}},
       log});
  ASSERT_TRUE(p.Start()) << p.error();
  ASSERT_EQ(p.WaitExit(5s), 0);
  EXPECT_EQ(p.LogTail(1), "foo=bar baz fp=unset inh=yes\n");

  p.options().env = {{"VERDICT_FAILPOINTS", "x=sleep(1)"}};
  ASSERT_TRUE(p.Start()) << p.error();
  ASSERT_EQ(p.WaitExit(5s), 0);
  EXPECT_EQ(p.LogTail(1), "foo= fp=x=sleep(1) inh=yes\n");
}

TEST(ProcessTest, DescriptorsAreNotLeakedIntoTheChild) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);  // deliberately without SOCK_CLOEXEC
  ASSERT_GE(fd, 3);
  vt::TempDir dir;
  std::string log = dir.Sub("fd.log");
  std::string script =
      "if [ -e /proc/self/fd/" + std::to_string(fd) + " ]; then echo leaked; else echo clean; fi";
  vt::Process p({"/bin/sh", {"-c", script}, {}, log});
  bool started = p.Start();
  close(fd);
  ASSERT_TRUE(started) << p.error();
  ASSERT_EQ(p.WaitExit(5s), 0);
  EXPECT_EQ(p.LogTail(1), "clean\n");
}

TEST(ProcessTest, ExecFailureIsReported) {
  vt::Process p({"/nonexistent/verdict-binary", {}, {}, ""});
  EXPECT_FALSE(p.Start());
  EXPECT_NE(p.error().find("No such file"), std::string::npos) << p.error();
  EXPECT_FALSE(p.Running());
}

TEST(ProcessTest, BinaryIsLookedUpInPath) {
  vt::Process p({"true", {}, {}, ""});
  ASSERT_TRUE(p.Start()) << p.error();
  EXPECT_EQ(p.WaitExit(5s), 0);
}

TEST(ProcessTest, DestructorKillsTheChild) {
  pid_t pid;
  {
    vt::Process p({"/bin/sleep", {"30"}, {}, ""});
    ASSERT_TRUE(p.Start()) << p.error();
    pid = p.pid();
    ASSERT_FALSE(ProcessGone(pid));
  }
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(ProcessTest, ChildDiesWithItsParent) {
  // A middle process starts `sleep 30` through the harness, reports its pid and
  // exits without running destructors: PR_SET_PDEATHSIG must kill the sleep.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t middle = fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    close(fds[0]);
    auto* p = new vt::Process({"/bin/sleep", {"30"}, {}, ""});  // never destroyed
    pid_t child = p->Start() ? p->pid() : -1;
    ssize_t ignored = write(fds[1], &child, sizeof(child));
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  pid_t child = -1;
  ASSERT_EQ(read(fds[0], &child, sizeof(child)), static_cast<ssize_t>(sizeof(child)));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(middle, &status, 0), middle);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(vt::WaitFor([&] { return ProcessGone(child); }, 5s))
      << "pid " << child << " outlived its parent";
  if (!ProcessGone(child)) kill(child, SIGKILL);
}

TEST(HttpTest, UnreachableGivesStatusZero) {
  int port = vt::FreePort();
  vt::HttpResult r = vt::HttpGet("http://127.0.0.1:" + std::to_string(port) + "/healthz", {}, 1s);
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
  EXPECT_NE(r.Describe().find("no response"), std::string::npos);
  EXPECT_FALSE(vt::WaitForHealthy("http://127.0.0.1:" + std::to_string(port), 200ms));
}

TEST(HttpTest, GetAndPostAgainstALocalServer) {
  LocalServer server([](httplib::Server& s) {
    s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    s.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json j = {{"body", req.body},
                          {"txn", req.get_header_value("Verdict-Txn-Id")},
                          {"ctype", req.get_header_value("Content-Type")}};
      res.status = 201;
      res.set_content(j.dump(), "application/json");
    });
    s.Get("/text", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 409;
      res.set_content("not json " + req.get_param_value("q"), "text/plain");
    });
    s.Get("/err", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content(R"({"error":{"code":"in_doubt","message":"m"}})", "application/json");
    });
  });
  EXPECT_TRUE(vt::WaitForHealthy(server.url(), 2s));

  vt::HttpResult r =
      vt::HttpPostJson(server.url() + "/echo", {{"delta", -5}}, {{"Verdict-Txn-Id", "t-1"}});
  ASSERT_EQ(r.status, 201) << r.Describe();
  EXPECT_EQ(r.json["txn"], "t-1");
  EXPECT_EQ(r.json["ctype"], "application/json");
  EXPECT_EQ(nlohmann::json::parse(r.json["body"].get<std::string>())["delta"], -5);

  r = vt::HttpGet(server.url() + "/text?q=abc");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, "not json abc");
  EXPECT_TRUE(r.json.is_null());
  EXPECT_EQ(r.ErrorCode(), "");

  r = vt::HttpGet(server.url() + "/err");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.ErrorCode(), "in_doubt");

  r = vt::HttpGet(server.url() + "/missing");
  EXPECT_EQ(r.status, 404);
}

TEST(HttpTest, WaitForHealthyWaitsForTheServer) {
  std::atomic<bool> healthy{false};
  LocalServer server([&](httplib::Server& s) {
    s.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
      res.status = healthy ? 200 : 503;
    });
  });
  std::thread flip([&] {
    std::this_thread::sleep_for(300ms);
    healthy = true;
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(vt::WaitForHealthy(server.url(), 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  flip.join();
}

TEST(WaitForTest, TrueWhenConditionHoldsFalseAtDeadline) {
  int calls = 0;
  EXPECT_TRUE(vt::WaitFor([&] { return ++calls >= 3; }, 5s, 1ms));
  EXPECT_EQ(calls, 3);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(vt::WaitFor([] { return false; }, 100ms, 10ms));
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(BinPathTest, PointsIntoTheBuildBinDir) {
  std::string p = vt::BinPath("verdictd");
  EXPECT_EQ(p, std::string(VERDICT_BIN_DIR) + "/verdictd");
  EXPECT_EQ(p.front(), '/');
}

}  // namespace
