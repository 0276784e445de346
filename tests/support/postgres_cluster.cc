#include "support/postgres_cluster.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <pqxx/pqxx>
#include <sstream>
#include <vector>

#include "verdict/common/ids.h"

extern char** environ;

namespace verdict::testing {
namespace {

constexpr char kPostgresUser[] = "postgres";

bool IsRoot() { return geteuid() == 0; }

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

// The last `lines` lines of a file, joined with " | " (for one-line errors).
std::string FileTail(const std::string& path, size_t lines = 8) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) all.push_back(line);
  }
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += all[i];
  }
  return out;
}

// Newest /usr/lib/postgresql/<N>/bin that has initdb, unless overridden.
std::string FindBinDir() {
  if (const char* env = std::getenv("VERDICT_PG_BINDIR"); env != nullptr && *env != '\0') {
    return env;
  }
  int best = -1;
  if (DIR* d = opendir("/usr/lib/postgresql")) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      const std::string initdb = "/usr/lib/postgresql/" + name + "/bin/initdb";
      if (access(initdb.c_str(), X_OK) == 0) best = std::max(best, std::atoi(name.c_str()));
    }
    closedir(d);
  }
  return best < 0 ? "" : "/usr/lib/postgresql/" + std::to_string(best) + "/bin";
}

std::string Tool(const std::string& bindir, const std::string& name) {
  return bindir.empty() ? name : bindir + "/" + name;
}

// argv prefixed with "runuser -u postgres --" when root (PostgreSQL refuses to
// run as root).
std::vector<std::string> AsPostgres(std::vector<std::string> argv) {
  if (!IsRoot()) return argv;
  std::vector<std::string> out = {"runuser", "-u", kPostgresUser, "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

// Runs argv (PATH lookup), stdout+stderr appended to `log_path`; returns the
// exit code, or -1 when it could not be started.
int RunCommand(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // A directory every user can enter (runuser keeps the cwd).
  posix_spawn_file_actions_addchdir_np(&actions, "/tmp");
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string SanitizeDbPrefix(const std::string& prefix) {
  std::string out;
  for (char c : prefix) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out.push_back(static_cast<char>(std::tolower(u)));
    } else if (!out.empty() && out.back() != '_') {
      out.push_back('_');
    }
    if (out.size() >= 30) break;
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "t_" + out;
  return out;
}

int RunInitdb(const std::string& bindir, const std::string& data, const std::string& log) {
  return RunCommand(AsPostgres({Tool(bindir, "initdb"), "-D", data, "-U", kPostgresUser,
                                "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"}),
                    log);
}

// A pristine initdb result shared by every test process of this user and
// PostgreSQL build: /tmp/verdict-pg-template-<tag>/data, created once under
// an flock and published by rename (so a reader never sees a partial one).
// Returns the template dir; callers copy its data/ with cp -a.
Result<std::string> EnsureInitdbTemplate(const std::string& bindir) {
  char tag[32];
  std::snprintf(tag, sizeof(tag), "%zx-%u", std::hash<std::string>{}(bindir),
                static_cast<unsigned>(geteuid()));
  const std::string dir = std::string("/tmp/verdict-pg-template-") + tag;
  const std::string ready = dir + "/ready";
  if (access(ready.c_str(), F_OK) == 0) return dir;

  const std::string lock_path = dir + ".lock";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return Status::IoError("open " + lock_path + ": " + std::strerror(errno));
  while (flock(lock_fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  Status result;
  if (access(ready.c_str(), F_OK) != 0) {
    const std::string tmp = dir + ".tmp-" + std::to_string(getpid());
    RunCommand({"rm", "-rf", dir, tmp}, "/dev/null");
    if (mkdir(tmp.c_str(), 0700) != 0) {
      result = Status::IoError("mkdir " + tmp + ": " + std::strerror(errno));
    } else {
      if (IsRoot()) {
        const passwd* pw = getpwnam(kPostgresUser);
        if (pw == nullptr || chown(tmp.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
          result = Status::IoError("chown " + tmp + " to postgres failed");
        }
      }
      if (result.ok()) {
        const std::string log = tmp + "/initdb.log";
        int rc = RunInitdb(bindir, tmp + "/data", log);
        if (rc != 0) {
          result = Status::Internal("initdb failed (exit " + std::to_string(rc) +
                                    "): " + FileTail(log));
        } else {
          std::ofstream(tmp + "/ready") << "ok\n";
          if (rename(tmp.c_str(), dir.c_str()) != 0) {
            result = Status::IoError("rename " + tmp + ": " + std::strerror(errno));
          }
        }
      }
      if (!result.ok()) RunCommand({"rm", "-rf", tmp}, "/dev/null");
    }
  }
  flock(lock_fd, LOCK_UN);
  close(lock_fd);
  if (!result.ok()) return result;
  return dir;
}

[[noreturn]] void Fatal(const std::string& what) {
  std::fprintf(stderr, "FATAL (test PostgreSQL): %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace

Result<std::unique_ptr<LocalPostgres>> LocalPostgres::Create(Options options) {
  std::unique_ptr<LocalPostgres> pg(new LocalPostgres());
  pg->options_ = options;
  pg->bindir_ = FindBinDir();

  char tmpl[] = "/tmp/verdict-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return Status::IoError(std::string("mkdtemp for test PostgreSQL: ") + std::strerror(errno));
  }
  pg->dir_ = tmpl;
  if (IsRoot()) {
    const passwd* pw = getpwnam(kPostgresUser);
    if (pw == nullptr) return Status::Internal("running as root but there is no 'postgres' user");
    if (chown(pg->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return Status::IoError("chown " + pg->dir_ + ": " + std::strerror(errno));
    }
  }

  // Watchdog: a detached shell that waits for EOF on a pipe whose only write
  // end this process holds (close-on-exec, so children do not inherit it).
  // When this process ends in any way, it stops the server and deletes the dir.
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::IoError(std::string("pipe2: ") + std::strerror(errno));
  {
    const std::string pg_ctl = Tool(pg->bindir_, "pg_ctl");
    const std::string runuser = IsRoot() ? "runuser -u postgres -- " : "";
    const std::string script =
        "cat >/dev/null 2>&1; "
        "if [ -f \"$1/data/postmaster.pid\" ]; then " + runuser + "\"$2\" -D \"$1/data\" "
        "-m immediate stop >/dev/null 2>&1; fi; [ -f \"$1/keep\" ] || rm -rf \"$1\"";
    std::vector<std::string> argv = {"/bin/sh", "-c", script, "verdict-pg-watchdog", pg->dir_,
                                     pg_ctl};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);  // survives a group kill
    pid_t pid = -1;
    int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(fds[0]);
    if (rc != 0) {
      close(fds[1]);
      return Status::Internal(std::string("spawning the PostgreSQL watchdog: ") + std::strerror(rc));
    }
    pg->watchdog_fd_ = fds[1];
    // The watchdog is reaped by init once it finishes (we never wait for it);
    // leaving it as our child would only matter if this process outlived it.
  }

  const std::string data = pg->dir_ + "/data";
  const std::string initdb_log = pg->dir_ + "/initdb.log";
  // A copy of the cached initdb result when there is one (initdb costs seconds
  // of CPU per test process); a fresh initdb otherwise.
  Result<std::string> cached = EnsureInitdbTemplate(pg->bindir_);
  bool copied = false;
  if (cached.ok()) {
    copied = RunCommand(AsPostgres({"cp", "-a", *cached + "/data", data}), initdb_log) == 0;
    if (!copied) RunCommand(AsPostgres({"rm", "-rf", data}), initdb_log);
  }
  if (!copied) {
    int rc = RunInitdb(pg->bindir_, data, initdb_log);
    if (rc != 0) {
      return Status::Internal("initdb failed (exit " + std::to_string(rc) +
                              "): " + FileTail(initdb_log));
    }
  }
  {
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "\n# verdict test settings\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "unix_socket_directories = '" << pg->dir_ << "'\n"
         << "max_prepared_transactions = " << options.max_prepared_transactions << "\n"
         << "max_connections = " << options.max_connections << "\n"
         << "fsync = on\n"
         << "synchronous_commit = on\n"
         << "shared_buffers = 32MB\n"
         << "log_min_messages = warning\n";
    if (!conf) return Status::IoError("cannot write " + data + "/postgresql.conf");
  }

  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const int port = FreeLoopbackPort();
    if (port <= 0) return Status::IoError("no free loopback port for PostgreSQL");
    last = pg->StartOnPort(port);
    if (last.ok()) return pg;
  }
  return last;
}

Status LocalPostgres::StartOnPort(int port) {
  const std::string log = dir_ + "/server.log";
  const std::string ctl_log = dir_ + "/pg_ctl.log";
  int rc = RunCommand(AsPostgres({Tool(bindir_, "pg_ctl"), "-D", dir_ + "/data", "-l", log, "-w",
                                  "-t", "60", "-o", "-p " + std::to_string(port), "start"}),
                      ctl_log);
  if (rc != 0) {
    return Status::Unavailable("pg_ctl start on port " + std::to_string(port) + " failed (exit " +
                               std::to_string(rc) + "): " + FileTail(log, 4));
  }
  port_ = port;
  running_ = true;
  return Status::Ok();
}

Status LocalPostgres::Start() {
  if (running_) return Status::Ok();
  return StartOnPort(port_);
}

Status LocalPostgres::Stop(bool immediate) {
  if (!running_) return Status::Ok();
  const std::string ctl_log = dir_ + "/pg_ctl.log";
  int rc = RunCommand(AsPostgres({Tool(bindir_, "pg_ctl"), "-D", dir_ + "/data", "-w", "-t", "60",
                                  "-m", immediate ? "immediate" : "fast", "stop"}),
                      ctl_log);
  if (rc != 0) {
    return Status::Internal("pg_ctl stop failed (exit " + std::to_string(rc) +
                            "): " + FileTail(ctl_log, 4));
  }
  running_ = false;
  return Status::Ok();
}

LocalPostgres::~LocalPostgres() {
  if (running_) {
    Status s = Stop(/*immediate=*/false);
    if (!s.ok()) std::fprintf(stderr, "test PostgreSQL: %s\n", s.ToString().c_str());
  }
  if (!dir_.empty()) {
    if (std::getenv("VERDICT_KEEP_TEST_DIRS") != nullptr) {
      std::ofstream(dir_ + "/keep") << "kept\n";  // tells the watchdog to leave it
      std::fprintf(stderr, "keeping test PostgreSQL dir %s\n", dir_.c_str());
    } else {
      RunCommand({"rm", "-rf", dir_}, "/dev/null");
    }
  }
  // Releases the watchdog; it finds the server stopped and nothing to delete.
  if (watchdog_fd_ >= 0) close(watchdog_fd_);
}

std::string LocalPostgres::Uri(const std::string& dbname) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

const std::string& TestPostgresUri() {
  static std::once_flag once;
  static std::string* uri = nullptr;
  // Destroyed by exit(): stops the server. Deliberately a function-local
  // static unique_ptr so that it is torn down after every test has run.
  static std::unique_ptr<LocalPostgres> server;
  std::call_once(once, [] {
    if (const char* env = std::getenv("VERDICT_TEST_PG_URI"); env != nullptr && *env != '\0') {
      uri = new std::string(env);
      return;
    }
    Result<std::unique_ptr<LocalPostgres>> pg = LocalPostgres::Create();
    if (!pg.ok()) Fatal("cannot start a private PostgreSQL: " + pg.status().ToString());
    server = std::move(pg).value();
    uri = new std::string(server->Uri("postgres"));
  });
  return *uri;
}

std::string UriWithDatabase(const std::string& uri, const std::string& dbname) {
  for (const char* scheme : {"postgresql://", "postgres://"}) {
    if (uri.rfind(scheme, 0) != 0) continue;
    const size_t authority = std::strlen(scheme);
    size_t path = uri.find_first_of("/?", authority);
    if (path == std::string::npos) return uri + "/" + dbname;
    size_t query = uri.find('?', path);
    std::string tail = query == std::string::npos ? "" : uri.substr(query);
    return uri.substr(0, path) + "/" + dbname + tail;
  }
  // key=value form: a later keyword overrides an earlier one.
  return uri + " dbname=" + dbname;
}

Result<std::string> CreateDatabase(const std::string& admin_uri, const std::string& prefix) {
  static std::atomic<int> counter{0};
  const std::string name = SanitizeDbPrefix(prefix) + "_" + NewRandomId().substr(0, 10) + "_" +
                           std::to_string(counter.fetch_add(1));
  try {
    pqxx::connection conn(admin_uri);
    pqxx::nontransaction tx(conn);
    tx.exec0("CREATE DATABASE " + tx.quote_name(name) + " TEMPLATE template0");
  } catch (const std::exception& e) {
    return Status::Unavailable("CREATE DATABASE " + name + ": " + FirstLine(e.what()));
  }
  return UriWithDatabase(admin_uri, name);
}

std::string NewTestDatabase(const std::string& prefix) {
  Result<std::string> uri = CreateDatabase(TestPostgresUri(), prefix);
  if (!uri.ok()) Fatal(uri.status().ToString());
  return uri.value();
}

int CountPreparedXacts(const std::string& uri, const std::string& gid_prefix) {
  try {
    pqxx::connection conn(uri);
    pqxx::nontransaction tx(conn);
    pqxx::row r = tx.exec_params1(
        "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()"
        " AND left(gid, length($1)) = $1",
        gid_prefix);
    return r[0].as<int>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "CountPreparedXacts(%s): %s\n", uri.c_str(), FirstLine(e.what()).c_str());
    return -1;
  }
}

Status ExecSql(const std::string& uri, const std::string& sql) {
  try {
    pqxx::connection conn(uri);
    pqxx::nontransaction tx(conn);
    tx.exec(sql);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::Internal(FirstLine(e.what()));
  }
}

}  // namespace verdict::testing
