// PostgresResource: a participant Resource whose data lives in PostgreSQL and
// whose prepare step is PostgreSQL's own two-phase commit (PREPARE TRANSACTION).
//
// Model:
//   * Business work for a transaction id runs in one real PostgreSQL
//     transaction, opened by the first WithTransaction() call for that id on a
//     connection checked out of the pool and held until Prepare/Abort. Row locks
//     taken by the work are therefore held until the outcome (rule 6 of
//     CONTRACT.md: a conflicting transaction waits up to lock_timeout_ms, then
//     fails with Conflict "lock_timeout").
//   * Prepare writes the transaction's metadata row (autocommit, on another
//     connection) and then runs PREPARE TRANSACTION 'verdict:<participant>:<txn>'
//     on the held connection, which then goes back to the pool. After that the
//     prepared transaction belongs to the server, not to any session: it survives
//     a crash of this process and of the PostgreSQL server (fsync=on), and
//     Commit/Abort finish it from any connection with COMMIT/ROLLBACK PREPARED.
//   * Durable state lives in two places, both in the same database:
//       pg_prepared_xacts          the staged work of every prepared txn;
//       verdict_participant_txns   one metadata row per txn (coordinator URL,
//                                  3PC peers, protocol, state prepared |
//                                  precommitted | committed | aborted |
//                                  read_only) and remembered outcomes.
//     ListInDoubt() reads pg_prepared_xacts (the truth about what is staged)
//     joined with the metadata; a prepared gid without a metadata row is still
//     in doubt (coordinator "" = the participant's default coordinator).
//   * Gids carry the participant name, so several participants (each with its
//     own name) can share one database without touching each other's prepared
//     transactions.
//   * Nothing about an unprepared transaction is durable: if this process dies,
//     PostgreSQL rolls the open transaction back and a later Prepare votes no.
//
// Requirements: the server's max_prepared_transactions must be > 0 (Open()
// refuses otherwise) and at least as large as the number of transactions this
// (and every other) participant may hold prepared at once.
//
// Thread-safety: every public method is thread-safe. Calls for the same txn id
// are serialized internally; calls for different txn ids run concurrently, each
// on its own pooled connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "verdict/common/clock.h"
#include "verdict/common/status.h"
#include "verdict/participant/resource.h"

namespace verdict::participant {

struct PostgresResourceOptions {
  // Required. Distinguishes this participant's prepared transactions from
  // other participants' in the same database: gids are
  // "verdict:<participant_name>:<txn_id>". 1-62 characters of
  // [A-Za-z0-9._-] (no ':', so one name's gids never look like another's;
  // the gid stays under PostgreSQL's 200-byte limit). Gids are cluster-wide:
  // names must be unique per PostgreSQL cluster, and kept across restarts
  // (recovery finds the prepared transactions by this prefix).
  std::string participant_name;
  // Most connections this resource opens. Each open (unprepared) business
  // transaction holds one; a small reserve is kept for protocol steps
  // (prepare's metadata write, commit, abort, recovery) so those never starve
  // behind open transactions. Must be >= 2.
  int pool_size = 16;
  // Applied with SET LOCAL lock_timeout in every business transaction: work
  // that conflicts with another transaction's locks waits this long, then
  // fails with Conflict "lock_timeout".
  int lock_timeout_ms = 2000;
  // How long a caller waits for a free pooled connection before Unavailable.
  int acquire_timeout_ms = 5000;
  // Wall clock for metadata timestamps and the age of open transactions.
  // nullptr = SystemClock::Default(). Must outlive the resource.
  Clock* clock = nullptr;
  // Named statements (name, SQL) registered on every pooled connection, for
  // business code to run with exec_prepared().
  std::vector<std::pair<std::string, std::string>> prepared_statements;
};

// A snapshot of the connection pool, for tests and metrics.
struct PostgresPoolStats {
  int open_connections = 0;   // connections currently established
  int idle_connections = 0;   // of those, sitting in the pool
  int open_transactions = 0;  // business transactions holding a connection
};

class PostgresResource final : public Resource {
 public:
  // Connects to `uri` (a libpq connection string or postgresql:// URI; libpq's
  // connect_timeout defaults to 5 s unless the URI sets it), checks
  // max_prepared_transactions > 0 and creates the metadata table if it is
  // missing. Errors are one line: InvalidArgument for bad options; Unavailable
  // when the server cannot be reached or max_prepared_transactions is 0;
  // another code (e.g. Internal for missing privileges) when the table cannot
  // be created.
  static Result<std::unique_ptr<PostgresResource>> Open(const std::string& uri,
                                                        PostgresResourceOptions opts);

  // Rolls back every still-open (unprepared) transaction and closes the pool.
  // Prepared transactions stay prepared in the server (they are durable).
  ~PostgresResource() override;
  PostgresResource(const PostgresResource&) = delete;
  PostgresResource& operator=(const PostgresResource&) = delete;

  // Runs `fn` inside the PostgreSQL transaction bound to `txn_id`, opening it
  // on the first call (a pooled connection is held until Prepare or Abort).
  // Calls for the same txn id are serialized and see each other's work.
  //
  // `fn` must not commit or abort the transaction it is given. When `fn`
  // returns non-OK or throws, the whole PostgreSQL transaction is rolled back:
  // all work of `txn_id` here is lost, later calls for it are refused with
  // Conflict and Prepare votes no. libpqxx exceptions are mapped to Status:
  //   lock_timeout            -> Conflict "lock_timeout: ..."
  //   check/unique/FK violation, serialization failure, deadlock -> Conflict
  //   broken connection       -> Unavailable
  // Work under a txn id that is already prepared, finished or failed here is
  // refused with Conflict "txn_not_active: ...". InvalidArgument for a
  // malformed txn id. Conflict messages start with a snake_case reason and
  // ": " (the BankStore error convention).
  Status WithTransaction(const std::string& txn_id,
                         const std::function<Status(pqxx::work&)>& fn);

  // Runs `fn` in autocommit mode on a pooled connection (each statement
  // commits on its own), outside any verdict transaction: for account
  // creation, committed reads, schema set-up. Exceptions map as above.
  Status WithAutocommit(const std::function<Status(pqxx::nontransaction&)>& fn);

  // Runs `ddl` in one transaction that holds the advisory lock named
  // `lock_name`, so processes setting up the same schema at once do not race
  // (CREATE ... IF NOT EXISTS is not safe concurrently). Rolled back when ddl
  // throws; exceptions map as above, with `what` as context.
  Status WithSchemaLock(const std::string& what, const std::string& lock_name,
                        const std::function<void(pqxx::nontransaction&)>& ddl);

  // Resource. Prepare: kYes only after PREPARE TRANSACTION succeeded (work and
  // metadata durable); kReadOnly (and commit) when the txn wrote nothing;
  // kNo when there is no open transaction or it failed. A repeated prepare
  // gives the same vote. A database that cannot be reached gives an error
  // Status (counted as no); Commit/Abort then return Unavailable so that the
  // coordinator retries them.
  Result<Vote> Prepare(const TxnRecord& record) override;
  Status Precommit(const std::string& txn_id) override;
  Status Commit(const std::string& txn_id) override;
  Status Abort(const std::string& txn_id) override;
  Result<std::vector<TxnRecord>> ListInDoubt() override;
  Result<LocalState> GetState(const std::string& txn_id) override;
  std::vector<std::string> AbortStaleActive(int64_t cutoff_unix_ms) override;
  void ForgetOutcomesBefore(int64_t cutoff_unix_ms) override;

  const std::string& participant_name() const { return options_.participant_name; }
  // "verdict:<participant_name>:<txn_id>".
  std::string GidFor(const std::string& txn_id) const;
  PostgresPoolStats pool_stats() const;

  class Pool;  // connection pool; defined in postgres_resource.cc

 private:
  struct OpenTxn;

  PostgresResource(PostgresResourceOptions options, std::unique_ptr<Pool> pool);

  // Runs `fn` in autocommit mode on a pooled (non-business) connection. When
  // `retry_stale` and the connection turns out broken after earlier use, the
  // step is retried once on a fresh connection (callers pass only idempotent
  // steps). Exceptions are mapped to Status with `what` as context.
  Status RunShort(const std::string& what,
                  const std::function<Status(pqxx::nontransaction&)>& fn,
                  bool retry_stale = true);
  // Opens txn's PostgreSQL transaction. Requires txn->mu held, phase kNew.
  Status Begin(const std::string& txn_id, OpenTxn* txn);
  // Prepares an open transaction. Requires txn->mu held, phase kOpen; leaves
  // the txn closed.
  Result<Vote> PrepareOpen(const TxnRecord& record, OpenTxn* txn);
  // Rolls back txn's open PostgreSQL transaction (if any; a no-op after
  // PREPARE TRANSACTION) and returns its connection to the pool. Requires
  // txn->mu held.
  void RollbackOpen(OpenTxn* txn);
  // RollbackOpen and mark closed (later calls for the txn are refused while
  // the entry stays in open_). Requires txn->mu held.
  void EndOpen(OpenTxn* txn);
  // EndOpen, then remove from open_. Requires txn->mu held.
  void Close(const std::string& txn_id, OpenTxn* txn);
  // Removes `txn_id` from open_ if it still maps to `txn`.
  void Forget(const std::string& txn_id, const OpenTxn* txn);
  std::shared_ptr<OpenTxn> FindOpen(const std::string& txn_id);
  // Upserts the metadata row's state (and, when `record` is given, its
  // protocol/coordinator/peers) in autocommit: durable on return.
  Status WriteMetadata(const std::string& txn_id, const std::string& state,
                       const TxnRecord* record);

  const PostgresResourceOptions options_;
  Clock* const clock_;
  std::unique_ptr<Pool> pool_;

  std::mutex mu_;  // guards open_
  std::unordered_map<std::string, std::shared_ptr<OpenTxn>> open_;
};

}  // namespace verdict::participant
