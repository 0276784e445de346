// PostgreSQL for tests: a private, throw-away server per test process, and one
// fresh database per test on it.
//
//   std::string uri = verdict::testing::NewTestDatabase("pg_resource");
//   auto res = participant::PostgresResource::Open(uri, {.participant_name = "p1"});
//
// TestPostgresUri() is the server every test in the process shares:
//   * VERDICT_TEST_PG_URI set: that server (it must allow CREATE DATABASE and
//     have max_prepared_transactions > 0); nothing is started or stopped.
//   * otherwise: ONE private cluster started on first use (initdb into a temp
//     dir — as user postgres via runuser when running as root — then pg_ctl
//     start on a free loopback port with its own socket dir,
//     max_prepared_transactions=100, fsync=on, trust auth on loopback). It is
//     stopped (pg_ctl stop -m fast) and deleted at process exit; a watchdog
//     process stops and deletes it too if this process dies without exiting
//     normally (crash, SIGKILL by a test timeout).
// The PostgreSQL binaries are taken from $VERDICT_PG_BINDIR, else the newest
// /usr/lib/postgresql/<version>/bin, else $PATH.
//
// Tests that must take a server down (database-unavailable behaviour, server
// restart with prepared transactions) start their own LocalPostgres instead of
// stopping the shared one.
//
// Failing to provide a server is fatal for a test process: the functions that
// return a URI print the reason and abort(), since no PostgreSQL test could
// say anything meaningful without one.
//
// Thread-safety: all functions are thread-safe; a LocalPostgres object is for
// one controlling thread.
#pragma once

#include <memory>
#include <string>

#include "verdict/common/status.h"

namespace verdict::testing {

// A private PostgreSQL server in a temp directory.
class LocalPostgres {
 public:
  struct Options {
    int max_prepared_transactions = 100;
    int max_connections = 300;
  };

  // initdb + start. The error (with the tail of the server or initdb log) is
  // one Status message.
  static Result<std::unique_ptr<LocalPostgres>> Create(Options options);
  static Result<std::unique_ptr<LocalPostgres>> Create() { return Create(Options{}); }

  // Stops the server (fast shutdown) and deletes its directory.
  ~LocalPostgres();
  LocalPostgres(const LocalPostgres&) = delete;
  LocalPostgres& operator=(const LocalPostgres&) = delete;

  // Stops the server, keeping its data. `immediate` = crash-like shutdown
  // (pg_ctl -m immediate: no checkpoint; recovery replays WAL on restart).
  Status Stop(bool immediate = false);
  // Starts it again on the same port with the same data.
  Status Start();
  bool running() const { return running_; }

  int port() const { return port_; }
  // postgresql://postgres@127.0.0.1:<port>/<dbname>
  std::string Uri(const std::string& dbname = "postgres") const;

 private:
  LocalPostgres() = default;
  Status StartOnPort(int port);

  std::string dir_;       // temp dir: data/, sockets, logs
  std::string bindir_;    // PostgreSQL binaries ("" = $PATH)
  Options options_;
  int port_ = 0;
  bool running_ = false;
  int watchdog_fd_ = -1;  // write end of the watchdog's pipe
};

// The shared server's URI (database "postgres"). See the file comment.
const std::string& TestPostgresUri();

// Creates a fresh, empty database named "<prefix>_<random>" (prefix reduced to
// [a-z0-9_]) on the shared server and returns its URI.
std::string NewTestDatabase(const std::string& prefix);

// Same, on the server `admin_uri` points at (e.g. a LocalPostgres). Returns the
// new database's URI, or the error.
Result<std::string> CreateDatabase(const std::string& admin_uri, const std::string& prefix);

// `uri` with its database replaced by `dbname` (URI or key=value form).
std::string UriWithDatabase(const std::string& uri, const std::string& dbname);

// Prepared transactions of the database at `uri` whose gid starts with
// `gid_prefix` ("" = all); -1 (after printing why) when the query fails.
int CountPreparedXacts(const std::string& uri, const std::string& gid_prefix);

// Runs `sql` (one or more statements, autocommit) against `uri`.
Status ExecSql(const std::string& uri, const std::string& sql);

}  // namespace verdict::testing
