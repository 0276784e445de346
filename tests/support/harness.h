// Test harness for integration and fault tests that run REAL verdict processes.
//
//   verdict::testing::VerdictdProcess coord;
//   ASSERT_TRUE(coord.Start());                       // waits for /healthz
//   verdict::testing::BankProcess bank_a({.coordinator_url = coord.url(), .name = "bank-a"});
//   ASSERT_TRUE(bank_a.Start());
//   ASSERT_EQ(bank_a.CreateAccount("alice", 100).status, 201);
//   auto txn = verdict::testing::CreateTxn(coord.url(), {{"protocol", "2pc"}});
//   ...
//   coord.Kill9();
//   ASSERT_TRUE(coord.Restart());                     // same port, same data dir
//
// Everything a service writes to stdout/stderr is appended to its log file;
// LogTail(n) returns the last n lines for failure messages. Start()/Restart()
// return ::testing::AssertionResult carrying the log tail when the process
// does not come up, so `ASSERT_TRUE(proc.Start())` explains itself.
//
// Temporary directories are removed at the end of the test unless the
// environment variable VERDICT_KEEP_TEST_DIRS is set (then their paths are
// printed to stderr so the logs and data can be inspected).
//
// Note: this namespace is verdict::testing. Test code inside `namespace verdict`
// must spell GoogleTest's namespace `::testing` (e.g. `::testing::Test`).
//
// Thread-safety: a Process may be controlled from several threads (its state is
// guarded by a mutex); the service wrappers are meant for one test thread.
// Processes get PR_SET_PDEATHSIG(SIGKILL), which Linux ties to the *thread*
// that forked: start processes from the test's main thread (or from a thread
// that outlives them), never from a short-lived helper thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#ifndef VERDICT_BIN_DIR
#error "VERDICT_BIN_DIR must be defined (tests/CMakeLists.txt sets it)"
#endif

namespace verdict::testing {

using namespace std::chrono_literals;

using EnvMap = std::map<std::string, std::string>;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Absolute path of a binary in the build's bin dir, e.g. BinPath("verdictd").
std::string BinPath(const std::string& name);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it
// back, close). Another process may grab it in between; Start() of the service
// wrappers retries with a fresh port when the bind fails.
int FreePort();

// ---------------------------------------------------------------------------
// Temporary directory: mkdtemp under /tmp, removed recursively by the
// destructor unless VERDICT_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "verdict-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name (not created).
  std::string Sub(const std::string& name) const;
  // path()/name, created (with parents) if missing.
  std::string MakeSub(const std::string& name) const;

 private:
  std::string path_;
};

// mkdir -p; true when the directory exists afterwards.
bool MakeDirs(const std::string& path);
// Whole file contents ("" when unreadable).
std::string ReadFile(const std::string& path);
// Last `lines` lines of a file (the whole file when shorter).
std::string TailFile(const std::string& path, int lines);

// ---------------------------------------------------------------------------
// A child process: fork/exec of `binary` with `args`, the test's environment
// plus `env` (VERDICT_FAILPOINTS is never inherited from the test process, only
// taken from `env`), stdout+stderr appended to `log_path` (or /dev/null).
struct ProcessOptions {
  std::string binary{};             // absolute path, or a name looked up in PATH
  std::vector<std::string> args{};  // argv[1..]
  EnvMap env{};                     // added to / overriding the inherited environment
  std::string log_path{};           // "" = /dev/null
};

class Process {
 public:
  explicit Process(ProcessOptions options);
  // SIGKILL and reap when still running.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Spawns the process. False (with error()) when it could not be executed.
  // May be called again after the previous instance exited or was killed
  // (a restart with the same options).
  bool Start();
  const std::string& error() const { return error_; }

  ProcessOptions& options() { return options_; }
  const ProcessOptions& options() const { return options_; }

  // pid of the current (or last) child; -1 before Start().
  pid_t pid() const;
  // True while the child has not exited (reaps it when it has).
  bool Running();
  // SIGKILL and reap. No-op when not running.
  void Kill9();
  // Sends `sig` (no-op when not running).
  void Signal(int sig);
  // SIGTERM, then waits up to `timeout` for the exit; returns its exit status
  // (see WaitExit). When the process does not exit in time it is SIGKILLed and
  // -1 is returned. Returns the recorded status when it had already exited.
  int Terminate(std::chrono::milliseconds timeout = 10s);
  // Waits up to `timeout` for the child to exit. Returns the exit code for a
  // normal exit (137 for a failpoint crash, which is _exit(137)), 128+N when it
  // was killed by signal N (137 for SIGKILL), nullopt while still running.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  // The exit status once the child has been reaped.
  std::optional<int> exit_status() const;

  // Last `lines` lines of the log file.
  std::string LogTail(int lines = 40) const;

 private:
  bool ReapLocked(bool block);

  ProcessOptions options_;
  mutable std::mutex mu_;
  pid_t pid_ = -1;
  bool running_ = false;
  std::optional<int> exit_status_;
  std::string error_;
};

// ---------------------------------------------------------------------------
// HTTP helpers (cpp-httplib, TCP_NODELAY, one connection per call).
struct HttpResult {
  int status = 0;  // 0 when the server could not be reached / no reply
  std::string body;
  nlohmann::json json;  // parsed body; null when the body is not JSON
  std::string error;    // transport error text when status == 0

  // "status 409: {...}" for assertion messages.
  std::string Describe() const;
  // json["error"]["code"] or "".
  std::string ErrorCode() const;
};

inline constexpr std::chrono::milliseconds kDefaultHttpTimeout = 30s;

// `url` is absolute: http://host:port/path?query.
HttpResult HttpGet(const std::string& url, const Headers& headers = {},
                   std::chrono::milliseconds timeout = kDefaultHttpTimeout);
// POST with Content-Type application/json.
HttpResult HttpPost(const std::string& url, const std::string& body, const Headers& headers = {},
                    std::chrono::milliseconds timeout = kDefaultHttpTimeout);
HttpResult HttpPostJson(const std::string& url, const nlohmann::json& body,
                        const Headers& headers = {},
                        std::chrono::milliseconds timeout = kDefaultHttpTimeout);

// Polls GET base_url/healthz until it answers 200 or `timeout` passes.
bool WaitForHealthy(const std::string& base_url, std::chrono::milliseconds timeout = 10s);

// Polls `condition` every `poll` until it returns true (true) or `timeout`
// passes (false; the condition is evaluated one last time at the deadline).
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds poll = 20ms);

// ---------------------------------------------------------------------------
// A verdict service binary listening on 127.0.0.1:<port> with a data dir.
// Common base of VerdictdProcess and BankProcess.
struct ServiceOptions {
  std::vector<std::string> extra_args{};  // appended after the standard flags
  EnvMap env{};                           // e.g. {{"VERDICT_FAILPOINTS", "x=crash"}}
  // Data directory; "" = <root>/data, created by the harness.
  std::string data_dir{};
  // Directory for the log file (and the default data dir); "" = an owned TempDir.
  std::string root_dir{};
  int port = 0;  // 0 = FreePort()
  std::chrono::milliseconds start_timeout = 10s;
};

class ServiceProcess {
 public:
  virtual ~ServiceProcess();
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  // Starts the binary and waits for /healthz. On failure the process is killed
  // and the result carries the log tail.
  ::testing::AssertionResult Start();
  // Starts again with the same port, data dir and flags. A still-running
  // process is SIGKILLed first. When `env` is given it replaces the extra
  // environment (e.g. EnvMap{} to drop failpoints).
  ::testing::AssertionResult Restart(std::optional<EnvMap> env = std::nullopt);
  // Starts without waiting for /healthz (for tests of startup failures).
  bool StartNoWait();

  // SIGKILL and reap.
  void Kill9();
  // SIGTERM; waits up to `timeout`; returns the exit status (-1 = had to SIGKILL).
  // The default is generous: a cpp-httplib server finishes its shutdown only
  // when peers' idle keep-alive connections time out (ServerOptions::
  // keep_alive_timeout_s).
  int Stop(std::chrono::milliseconds timeout = 45s);
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  bool Running();
  bool Healthy(std::chrono::milliseconds timeout = 1s) const;

  std::string url() const;  // http://127.0.0.1:<port>
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  std::string LogTail(int lines = 40) const;
  Process& process() { return *process_; }
  // The extra arguments / environment used by the next Start()/Restart().
  ServiceOptions& options() { return options_; }
  const ServiceOptions& options() const { return options_; }

 protected:
  ServiceProcess(std::string binary_name, std::string log_name, ServiceOptions options);
  // Full argv[1..] for the current port and data dir.
  virtual std::vector<std::string> BuildArgs() const = 0;

 private:
  ::testing::AssertionResult StartAndWait(bool allow_new_port);
  // Kills any running instance and starts a new one with the current options.
  bool Spawn();

  std::string binary_name_;
  ServiceOptions options_;
  std::unique_ptr<TempDir> owned_root_;
  std::string root_dir_;
  std::string data_dir_;
  std::string log_path_;
  int port_ = 0;
  bool port_chosen_by_harness_ = false;
  std::unique_ptr<Process> process_;
};

// build/bin/verdictd --listen 127.0.0.1:<port> --data-dir <dir> [extra_args...]
class VerdictdProcess : public ServiceProcess {
 public:
  explicit VerdictdProcess(ServiceOptions options = {});

 protected:
  std::vector<std::string> BuildArgs() const override;
};

struct BankOptions {
  std::string coordinator_url{};  // required
  std::string name{};             // --name when non-empty
  std::string pg_uri{};           // --pg-uri when non-empty
  ServiceOptions service{};
};

// build/bin/verdict-bank --listen 127.0.0.1:<port> --data-dir <dir>
//   --coordinator <url> [--pg-uri URI] [--name N] [extra_args...]
class BankProcess : public ServiceProcess {
 public:
  explicit BankProcess(BankOptions options);

  BankOptions& bank_options() { return bank_options_; }
  const BankOptions& bank_options() const { return bank_options_; }

  // POST /accounts {"id","balance"}: 201, or 409 when it exists.
  HttpResult CreateAccount(const std::string& id, int64_t balance);
  // GET /accounts/{id} -> committed balance; nullopt on 404 / error.
  std::optional<int64_t> Balance(const std::string& id);
  // POST /accounts/{id}/apply with Verdict-Txn-Id: txn_id, {"delta":delta}.
  HttpResult Apply(const std::string& txn_id, const std::string& account, int64_t delta);

 protected:
  std::vector<std::string> BuildArgs() const override;

 private:
  BankOptions bank_options_;
};

// ---------------------------------------------------------------------------
// Coordinator API helpers (CONTRACT.md). `headers` carries e.g. an
// Authorization header when the coordinator runs with --api-token.
HttpResult CreateTxn(const std::string& coord_url,
                     const nlohmann::json& body = nlohmann::json::object(),
                     const Headers& headers = {});
HttpResult AddParticipant(const std::string& coord_url, const std::string& txn_id,
                          const std::string& name, const std::string& url,
                          const Headers& headers = {});
HttpResult Commit(const std::string& coord_url, const std::string& txn_id,
                  const Headers& headers = {});
HttpResult Abort(const std::string& coord_url, const std::string& txn_id,
                 const Headers& headers = {});
HttpResult GetTxn(const std::string& coord_url, const std::string& txn_id,
                  const Headers& headers = {});
HttpResult Decision(const std::string& coord_url, const std::string& txn_id,
                    const Headers& headers = {});
// GET /admin/transactions?state=S&limit=N (state "" = no filter).
HttpResult ListTransactions(const std::string& coord_url, const std::string& state,
                            int limit = 1000, const Headers& headers = {});
// POST /admin/transactions/{id}/resolve {"decision": decision}.
HttpResult Resolve(const std::string& coord_url, const std::string& txn_id,
                   const std::string& decision, const Headers& headers = {});
// POST /admin/recovery/run.
HttpResult RunRecovery(const std::string& coord_url, const Headers& headers = {});

// {"Authorization", "Bearer <token>"}.
Headers BearerAuth(const std::string& token);

}  // namespace verdict::testing
