#include "support/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "verdict/common/transport.h"

extern char** environ;

namespace verdict::testing {
namespace {

bool KeepTestDirs() {
  const char* v = getenv("VERDICT_KEEP_TEST_DIRS");
  return v != nullptr && v[0] != '\0' && strcmp(v, "0") != 0;
}

std::string ErrnoText(int err) { return std::string(strerror(err)); }

// Binds 127.0.0.1:0 and returns the port the kernel picked (0 on failure).
int KernelPickedPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// cpp-httplib servers bind with SO_REUSEPORT, so two services handed the same
// port would both bind it and share its traffic instead of one failing. To keep
// concurrently running test processes (ctest -j) apart, every port handed out
// is claimed with an flock on /tmp/verdict-test-ports/<port>, held (fd kept
// open, close-on-exec) until the test process exits.
bool ClaimPort(int port) {
  static const std::string dir = [] {
    std::string d = "/tmp/verdict-test-ports";
    mkdir(d.c_str(), 01777);
    chmod(d.c_str(), 01777);
    return d;
  }();
  std::string path = dir + "/" + std::to_string(port);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return true;  // cannot coordinate; fall back to the kernel's choice
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return false;
  }
  static std::mutex mu;
  static std::vector<int>* held = new std::vector<int>();  // intentionally leaked
  std::lock_guard lock(mu);
  held->push_back(fd);
  return true;
}

std::string ResolveBinary(const std::string& binary) {
  if (binary.find('/') != std::string::npos) return binary;
  const char* path_env = getenv("PATH");
  std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + binary;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return binary;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void WriteAll(int fd, const std::string& text) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

std::string NowText() {
  auto now = std::chrono::system_clock::now();
  time_t secs = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc);
  snprintf(buf + n, sizeof(buf) - n, ".%03dZ", ms);
  return buf;
}

std::string ShellQuoteForDisplay(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\"'\\$;&|<>*?") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace

std::string BinPath(const std::string& name) { return std::string(VERDICT_BIN_DIR) + "/" + name; }

int FreePort() {
  for (int attempt = 0; attempt < 64; ++attempt) {
    int port = KernelPickedPort();
    if (port == 0) continue;
    if (ClaimPort(port)) return port;
  }
  ADD_FAILURE() << "FreePort: could not find a free port on 127.0.0.1";
  return 0;
}

// ---------------------------------------------------------------------------
// TempDir and file helpers.

TempDir::TempDir(const std::string& prefix) {
  std::string templ = "/tmp/" + prefix + ".XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << templ << "): " << ErrnoText(errno);
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (KeepTestDirs()) {
    fprintf(stderr, "[harness] keeping test dir %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Sub(const std::string& name) const { return path_ + "/" + name; }

std::string TempDir::MakeSub(const std::string& name) const {
  std::string p = Sub(name);
  if (!MakeDirs(p)) ADD_FAILURE() << "cannot create " << p;
  return p;
}

bool MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  return std::filesystem::is_directory(path, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string TailFile(const std::string& path, int lines) {
  if (lines <= 0) return "";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(no log at " + path + ")";
  // Read at most the last 256 KiB: enough for any sane tail.
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = size > 262144 ? size - 262144 : 0;
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::deque<std::string> tail;
  std::stringstream ss(text);
  std::string line;
  bool first = true;
  while (std::getline(ss, line)) {
    if (first && start > 0) {  // partial first line
      first = false;
      continue;
    }
    first = false;
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += l + "\n";
  return out;
}

// ---------------------------------------------------------------------------
// Process.

Process::Process(ProcessOptions options) : options_(std::move(options)) {}

Process::~Process() { Kill9(); }

bool Process::Start() {
  std::lock_guard lock(mu_);
  if (running_) ReapLocked(false);
  if (running_) {
    error_ = "already running (pid " + std::to_string(pid_) + ")";
    return false;
  }
  error_.clear();
  exit_status_.reset();

  // Everything the child needs is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed (the test may be threaded).
  std::string path = ResolveBinary(options_.binary);
  std::vector<std::string> argv_s;
  argv_s.push_back(path);
  for (const auto& a : options_.args) argv_s.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_s;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (key == "VERDICT_FAILPOINTS" || options_.env.count(key) > 0) continue;
    env_s.push_back(std::move(kv));
  }
  for (const auto& [k, v] : options_.env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::string log_path = options_.log_path.empty() ? "/dev/null" : options_.log_path;
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    error_ = "cannot open log " + log_path + ": " + ErrnoText(errno);
    return false;
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    error_ = "pipe2: " + ErrnoText(errno);
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return false;
  }
  std::string cmdline;
  for (const auto& a : argv_s) cmdline += (cmdline.empty() ? "" : " ") + ShellQuoteForDisplay(a);
  for (const auto& [k, v] : options_.env)
    cmdline = k + "=" + ShellQuoteForDisplay(v) + " " + cmdline;
  WriteAll(log_fd, "==== [harness " + NowText() + "] exec: " + cmdline + "\n");

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    error_ = "fork: " + ErrnoText(errno);
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    close(err_pipe[0]);
    close(err_pipe[1]);
    return false;
  }
  if (pid == 0) {
    // Child. Die with the test process (see the note in harness.h).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // Signal state is inherited across exec: give the child a clean one.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    // Do not leak the test's descriptors (listening sockets of in-process
    // servers, port claims) into the child: mark them all close-on-exec.
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      long max_fd = sysconf(_SC_OPEN_MAX);
      if (max_fd < 0 || max_fd > 65536) max_fd = 65536;
      for (int fd = 3; fd < max_fd; ++fd) {
        if (fd != err_pipe[1]) fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    execve(path.c_str(), argv.data(), envp.data());
    int err = errno;
    ssize_t ignored = write(err_pipe[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }

  close(err_pipe[1]);
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  pid_ = pid;
  running_ = true;
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    ReapLocked(true);
    error_ = "exec " + path + ": " + ErrnoText(child_errno);
    return false;
  }
  return true;
}

bool Process::ReapLocked(bool block) {
  if (!running_) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    running_ = false;
    exit_status_ = DecodeWaitStatus(status);
    return true;
  }
  if (r < 0) {  // ECHILD: reaped elsewhere; the status is lost
    running_ = false;
    exit_status_ = -1;
    return true;
  }
  return false;
}

pid_t Process::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

bool Process::Running() {
  std::lock_guard lock(mu_);
  ReapLocked(false);
  return running_;
}

void Process::Kill9() {
  std::lock_guard lock(mu_);
  if (!running_) return;
  if (ReapLocked(false)) return;
  kill(pid_, SIGKILL);
  ReapLocked(true);
}

void Process::Signal(int sig) {
  std::lock_guard lock(mu_);
  if (!running_) return;
  if (ReapLocked(false)) return;
  kill(pid_, sig);
}

int Process::Terminate(std::chrono::milliseconds timeout) {
  Signal(SIGTERM);
  std::optional<int> status = WaitExit(timeout);
  if (status.has_value()) return *status;
  Kill9();
  return -1;
}

std::optional<int> Process::WaitExit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (pid_ < 0) return std::nullopt;
      if (!running_ || ReapLocked(false)) return exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

std::optional<int> Process::exit_status() const {
  std::lock_guard lock(mu_);
  return exit_status_;
}

std::string Process::LogTail(int lines) const {
  if (options_.log_path.empty()) return "(no log file)";
  return TailFile(options_.log_path, lines);
}

// ---------------------------------------------------------------------------
// HTTP.

std::string HttpResult::Describe() const {
  if (status == 0) return "no response (" + error + ")";
  std::string b = body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
  return "status " + std::to_string(status) + ": " + b;
}

std::string HttpResult::ErrorCode() const {
  if (!json.is_object()) return "";
  auto it = json.find("error");
  if (it == json.end() || !it->is_object()) return "";
  auto code = it->find("code");
  if (code == it->end() || !code->is_string()) return "";
  return code->get<std::string>();
}

namespace {

HttpResult DoHttp(const std::string& method, const std::string& url, const std::string* body,
                  const Headers& headers, std::chrono::milliseconds timeout) {
  HttpResult out;
  std::string origin, path;
  Status s = SplitUrl(url, &origin, &path);
  if (!s.ok()) {
    out.error = s.message();
    return out;
  }
  if (path.empty()) path = "/";
  httplib::Client client(origin);
  client.set_tcp_nodelay(true);
  client.set_keep_alive(false);
  auto connect_timeout = std::min<std::chrono::milliseconds>(timeout, 5s);
  auto split = [](std::chrono::milliseconds d, time_t* sec, time_t* usec) {
    *sec = static_cast<time_t>(d.count() / 1000);
    *usec = static_cast<time_t>((d.count() % 1000) * 1000);
  };
  time_t sec, usec;
  split(connect_timeout, &sec, &usec);
  client.set_connection_timeout(sec, usec);
  split(timeout, &sec, &usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  httplib::Result res = method == "GET" ? client.Get(path.c_str(), h)
                                        : client.Post(path.c_str(), h, *body, "application/json");
  if (!res) {
    out.error = httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  out.body = res->body;
  if (!out.body.empty()) {
    nlohmann::json j = nlohmann::json::parse(out.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.json = std::move(j);
  }
  return out;
}

}  // namespace

HttpResult HttpGet(const std::string& url, const Headers& headers,
                   std::chrono::milliseconds timeout) {
  return DoHttp("GET", url, nullptr, headers, timeout);
}

HttpResult HttpPost(const std::string& url, const std::string& body, const Headers& headers,
                    std::chrono::milliseconds timeout) {
  return DoHttp("POST", url, &body, headers, timeout);
}

HttpResult HttpPostJson(const std::string& url, const nlohmann::json& body, const Headers& headers,
                        std::chrono::milliseconds timeout) {
  return HttpPost(url, body.dump(), headers, timeout);
}

bool WaitForHealthy(const std::string& base_url, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return HttpGet(JoinUrl(base_url, "/healthz"), {}, 1s).status == 200; },
                 timeout, 50ms);
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds poll) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

Headers BearerAuth(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// ---------------------------------------------------------------------------
// ServiceProcess.

ServiceProcess::ServiceProcess(std::string binary_name, std::string log_name,
                               ServiceOptions options)
    : binary_name_(std::move(binary_name)), options_(std::move(options)) {
  if (options_.root_dir.empty()) {
    owned_root_ = std::make_unique<TempDir>("verdict-" + log_name);
    root_dir_ = owned_root_->path();
  } else {
    root_dir_ = options_.root_dir;
    MakeDirs(root_dir_);
  }
  if (options_.data_dir.empty()) {
    data_dir_ = root_dir_ + "/data";
    if (!MakeDirs(data_dir_)) ADD_FAILURE() << "cannot create " << data_dir_;
  } else {
    data_dir_ = options_.data_dir;
  }
  log_path_ = root_dir_ + "/" + log_name + ".log";
  if (options_.port != 0) {
    port_ = options_.port;
  } else {
    port_ = FreePort();
    port_chosen_by_harness_ = true;
  }
}

ServiceProcess::~ServiceProcess() {
  if (process_ != nullptr && ::testing::Test::HasFailure()) {
    fprintf(stderr, "[harness] %s (%s) log tail:\n%s", binary_name_.c_str(), url().c_str(),
            LogTail(30).c_str());
  }
  process_.reset();  // SIGKILL before the directory goes away
}

std::string ServiceProcess::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string ServiceProcess::LogTail(int lines) const { return TailFile(log_path_, lines); }

bool ServiceProcess::Spawn() {
  if (process_ != nullptr) process_->Kill9();
  ProcessOptions po;
  po.binary = BinPath(binary_name_);
  po.args = BuildArgs();
  po.env = options_.env;
  po.log_path = log_path_;
  process_ = std::make_unique<Process>(std::move(po));
  return process_->Start();
}

bool ServiceProcess::StartNoWait() {
  if (!Spawn()) {
    ADD_FAILURE() << binary_name_ << ": " << process_->error();
    return false;
  }
  return true;
}

::testing::AssertionResult ServiceProcess::Start() { return StartAndWait(port_chosen_by_harness_); }

::testing::AssertionResult ServiceProcess::Restart(std::optional<EnvMap> env) {
  if (env.has_value()) options_.env = std::move(*env);
  if (process_ != nullptr) process_->Kill9();
  return StartAndWait(false);
}

::testing::AssertionResult ServiceProcess::StartAndWait(bool allow_new_port) {
  const int attempts = allow_new_port ? 3 : 1;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    std::error_code ec;
    auto log_size_before =
        std::filesystem::exists(log_path_, ec) ? std::filesystem::file_size(log_path_, ec) : 0;
    if (!Spawn()) {
      return ::testing::AssertionFailure()
             << binary_name_ << " did not start: " << process_->error() << "\n--- log tail ("
             << log_path_ << "):\n"
             << LogTail(40);
    }
    auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    bool retry_with_new_port = false;
    while (true) {
      if (!process_->Running()) {
        std::string log = ReadFile(log_path_);
        std::string fresh = log.size() > log_size_before ? log.substr(log_size_before) : "";
        if (attempt < attempts && (fresh.find("in use") != std::string::npos ||
                                   fresh.find("EADDRINUSE") != std::string::npos)) {
          retry_with_new_port = true;
          break;
        }
        return ::testing::AssertionFailure()
               << binary_name_ << " on " << url() << " exited with status "
               << process_->exit_status().value_or(-1)
               << " before /healthz answered\n--- log tail (" << log_path_ << "):\n"
               << LogTail(40);
      }
      if (Healthy(500ms)) return ::testing::AssertionSuccess();
      if (std::chrono::steady_clock::now() >= deadline) {
        process_->Kill9();
        return ::testing::AssertionFailure()
               << binary_name_ << " on " << url() << " did not answer /healthz within "
               << options_.start_timeout.count() << " ms\n--- log tail (" << log_path_ << "):\n"
               << LogTail(40);
      }
      std::this_thread::sleep_for(20ms);
    }
    if (retry_with_new_port) {
      fprintf(stderr, "[harness] %s: port %d was taken, retrying with another\n",
              binary_name_.c_str(), port_);
      port_ = FreePort();
    }
  }
  return ::testing::AssertionFailure() << binary_name_ << " could not bind a port";
}

void ServiceProcess::Kill9() {
  if (process_ != nullptr) process_->Kill9();
}

int ServiceProcess::Stop(std::chrono::milliseconds timeout) {
  if (process_ == nullptr) return -1;
  return process_->Terminate(timeout);
}

std::optional<int> ServiceProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (process_ == nullptr) return std::nullopt;
  return process_->WaitExit(timeout);
}

bool ServiceProcess::Running() { return process_ != nullptr && process_->Running(); }

bool ServiceProcess::Healthy(std::chrono::milliseconds timeout) const {
  return HttpGet(url() + "/healthz", {}, timeout).status == 200;
}

// ---------------------------------------------------------------------------
// VerdictdProcess / BankProcess.

VerdictdProcess::VerdictdProcess(ServiceOptions options)
    : ServiceProcess("verdictd", "verdictd", std::move(options)) {}

std::vector<std::string> VerdictdProcess::BuildArgs() const {
  std::vector<std::string> args = {"--listen", "127.0.0.1:" + std::to_string(port()), "--data-dir",
                                   data_dir()};
  for (const auto& a : options().extra_args) args.push_back(a);
  return args;
}

BankProcess::BankProcess(BankOptions options)
    : ServiceProcess("verdict-bank", options.name.empty() ? "verdict-bank" : options.name,
                     options.service),
      bank_options_(std::move(options)) {}

std::vector<std::string> BankProcess::BuildArgs() const {
  std::vector<std::string> args = {"--listen", "127.0.0.1:" + std::to_string(port()), "--data-dir",
                                   data_dir()};
  if (!bank_options_.coordinator_url.empty()) {
    args.push_back("--coordinator");
    args.push_back(bank_options_.coordinator_url);
  }
  if (!bank_options_.pg_uri.empty()) {
    args.push_back("--pg-uri");
    args.push_back(bank_options_.pg_uri);
  }
  if (!bank_options_.name.empty()) {
    args.push_back("--name");
    args.push_back(bank_options_.name);
  }
  for (const auto& a : options().extra_args) args.push_back(a);
  return args;
}

HttpResult BankProcess::CreateAccount(const std::string& id, int64_t balance) {
  return HttpPostJson(url() + "/accounts", {{"id", id}, {"balance", balance}});
}

std::optional<int64_t> BankProcess::Balance(const std::string& id) {
  HttpResult r = HttpGet(url() + "/accounts/" + id);
  if (r.status != 200 || !r.json.is_object()) return std::nullopt;
  auto it = r.json.find("balance");
  if (it == r.json.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

HttpResult BankProcess::Apply(const std::string& txn_id, const std::string& account,
                              int64_t delta) {
  return HttpPostJson(url() + "/accounts/" + account + "/apply", {{"delta", delta}},
                      {{"Verdict-Txn-Id", txn_id}});
}

// ---------------------------------------------------------------------------
// Coordinator helpers.

HttpResult CreateTxn(const std::string& coord_url, const nlohmann::json& body,
                     const Headers& headers) {
  return HttpPostJson(JoinUrl(coord_url, "/v1/transactions"), body, headers);
}

HttpResult AddParticipant(const std::string& coord_url, const std::string& txn_id,
                          const std::string& name, const std::string& url, const Headers& headers) {
  return HttpPostJson(JoinUrl(coord_url, "/v1/transactions/" + txn_id + "/participants"),
                      {{"name", name}, {"url", url}}, headers);
}

HttpResult Commit(const std::string& coord_url, const std::string& txn_id, const Headers& headers) {
  return HttpPost(JoinUrl(coord_url, "/v1/transactions/" + txn_id + "/commit"), "", headers);
}

HttpResult Abort(const std::string& coord_url, const std::string& txn_id, const Headers& headers) {
  return HttpPost(JoinUrl(coord_url, "/v1/transactions/" + txn_id + "/abort"), "", headers);
}

HttpResult GetTxn(const std::string& coord_url, const std::string& txn_id, const Headers& headers) {
  return HttpGet(JoinUrl(coord_url, "/v1/transactions/" + txn_id), headers);
}

HttpResult Decision(const std::string& coord_url, const std::string& txn_id,
                    const Headers& headers) {
  return HttpGet(JoinUrl(coord_url, "/v1/transactions/" + txn_id + "/decision"), headers);
}

HttpResult ListTransactions(const std::string& coord_url, const std::string& state, int limit,
                            const Headers& headers) {
  std::string path = "/admin/transactions?limit=" + std::to_string(limit);
  if (!state.empty()) path += "&state=" + state;
  return HttpGet(JoinUrl(coord_url, path), headers);
}

HttpResult Resolve(const std::string& coord_url, const std::string& txn_id,
                   const std::string& decision, const Headers& headers) {
  return HttpPostJson(JoinUrl(coord_url, "/admin/transactions/" + txn_id + "/resolve"),
                      {{"decision", decision}}, headers);
}

HttpResult RunRecovery(const std::string& coord_url, const Headers& headers) {
  return HttpPost(JoinUrl(coord_url, "/admin/recovery/run"), "", headers);
}

}  // namespace verdict::testing
