// PostgresResource: see include/verdict/participant/postgres_resource.h for the
// model. Implementation notes:
//   * Every libpqxx call sits inside try/catch; MapCurrentException() turns the
//     exception into a Status and says whether the connection is still usable.
//   * A business transaction owns (OpenTxn::conn, OpenTxn::work) from its first
//     WithTransaction() until Prepare/Abort/AbortStaleActive; OpenTxn::mu
//     serializes everything done to it. The pqxx::work is always destroyed
//     before its connection goes back to the pool.
//   * Short protocol steps (metadata writes, COMMIT/ROLLBACK PREPARED, queries)
//     run on a pooled connection in autocommit mode (RunShort). They are all
//     idempotent, so a step that failed because a pooled connection had gone
//     stale (e.g. the server restarted) is retried once on a fresh one.
#include "verdict/participant/postgres_resource.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

#include "verdict/common/ids.h"
#include "verdict/common/logging.h"

namespace verdict::participant {
namespace {

constexpr char kComponent[] = "pg-resource";
constexpr char kMetaTable[] = "verdict_participant_txns";
constexpr size_t kMaxParticipantNameLength = 62;  // gid must stay < 200 bytes

// Internal named statements, registered on every pooled connection.
constexpr char kStmtBegin[] = "verdict_res_begin";
constexpr char kStmtLookup[] = "verdict_res_lookup";
constexpr char kStmtUpsertFull[] = "verdict_res_upsert_full";
constexpr char kStmtSetState[] = "verdict_res_set_state";
constexpr char kStmtMarkAborted[] = "verdict_res_mark_aborted";
constexpr char kStmtMarkCommittedAsync[] = "verdict_res_mark_committed_async";
constexpr char kStmtMarkCommittedIfPrepared[] = "verdict_res_mark_committed";
constexpr char kStmtListInDoubt[] = "verdict_res_list_in_doubt";
constexpr char kStmtWroteAnything[] = "verdict_res_wrote";

// Metadata row states.
constexpr char kStatePrepared[] = "prepared";
constexpr char kStatePrecommitted[] = "precommitted";
constexpr char kStateCommitted[] = "committed";
constexpr char kStateAborted[] = "aborted";
constexpr char kStateReadOnly[] = "read_only";

// "$N" converted from unix milliseconds.
#define VERDICT_TS(n) "to_timestamp($" #n "::float8 / 1000.0)"

const std::vector<std::pair<std::string, std::string>>& InternalStatements() {
  static const auto* statements = new std::vector<std::pair<std::string, std::string>>{
      // Inside a fresh business transaction: SET LOCAL lock_timeout and learn
      // whether the txn id was already used here, in one round trip.
      {kStmtBegin,
       "SELECT set_config('lock_timeout', $2, true),"
       " (SELECT state FROM verdict_participant_txns WHERE gid = $1),"
       " EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE gid = $1)"},
      {kStmtLookup,
       "SELECT (SELECT state FROM verdict_participant_txns WHERE gid = $1),"
       " EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE gid = $1)"},
      {kStmtUpsertFull,
       "INSERT INTO verdict_participant_txns"
       " (gid, participant, txn_id, protocol, coordinator, peers, state, updated_at)"
       " VALUES ($1, $2, $3, $4, $5, $6, $7, " VERDICT_TS(8) ")"
       " ON CONFLICT (gid) DO UPDATE SET protocol = EXCLUDED.protocol,"
       " coordinator = EXCLUDED.coordinator, peers = EXCLUDED.peers,"
       " state = EXCLUDED.state, updated_at = EXCLUDED.updated_at"},
      {kStmtSetState,
       "INSERT INTO verdict_participant_txns"
       " (gid, participant, txn_id, protocol, coordinator, peers, state, updated_at)"
       " VALUES ($1, $2, $3, '', '', '[]', $4, " VERDICT_TS(5) ")"
       " ON CONFLICT (gid) DO UPDATE SET state = EXCLUDED.state,"
       " updated_at = EXCLUDED.updated_at"},
      // Outcome bookkeeping after COMMIT PREPARED: committed without waiting
      // for a WAL flush (synchronous_commit off for this statement's
      // transaction). Losing it in a crash is harmless: the row still says
      // prepared, the gid is gone, and a retried commit re-marks it.
      {kStmtMarkCommittedAsync,
       "INSERT INTO verdict_participant_txns"
       " (gid, participant, txn_id, protocol, coordinator, peers, state, updated_at)"
       " SELECT $1::text, $2::text, $3::text, '', '', '[]', 'committed', " VERDICT_TS(4)
       " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async"
       " ON CONFLICT (gid) DO UPDATE SET state = EXCLUDED.state,"
       " updated_at = EXCLUDED.updated_at"},
      // Records an abort unless the row already holds a final outcome that an
      // abort must not overwrite; returns the row when it now says aborted.
      // Not flushed either (Abort need not be durable: a prepared txn that
      // reappears is aborted again; a lost row only makes GetState unknown).
      {kStmtMarkAborted,
       "INSERT INTO verdict_participant_txns AS t"
       " (gid, participant, txn_id, protocol, coordinator, peers, state, updated_at)"
       " SELECT $1::text, $2::text, $3::text, '', '', '[]', 'aborted', " VERDICT_TS(4)
       " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async"
       " ON CONFLICT (gid) DO UPDATE SET state = 'aborted', updated_at = EXCLUDED.updated_at"
       " WHERE t.state NOT IN ('committed', 'read_only')"
       " RETURNING state"},
      {kStmtMarkCommittedIfPrepared,
       "UPDATE verdict_participant_txns SET state = 'committed', updated_at = " VERDICT_TS(2)
       " WHERE gid = $1 AND state IN ('prepared', 'precommitted') RETURNING state"},
      {kStmtListInDoubt,
       "SELECT p.gid, (extract(epoch FROM p.prepared) * 1000)::bigint,"
       " m.protocol, m.coordinator, m.peers, m.state"
       " FROM pg_prepared_xacts p LEFT JOIN verdict_participant_txns m ON m.gid = p.gid"
       " WHERE p.database = current_database() AND left(p.gid, length($1)) = $1"
       " ORDER BY p.prepared, p.gid"},
      // Inside the business transaction at prepare time: fails when the
      // transaction is already aborted server-side; false when it wrote nothing
      // (no transaction id assigned: no rows written or locked).
      {kStmtWroteAnything, "SELECT txid_current_if_assigned() IS NOT NULL"},
  };
  return *statements;
}

// First line of a libpq/libpqxx message, without the "ERROR:  " prefix, with
// runs of whitespace collapsed: error Statuses are one line.
std::string OneLine(const std::string& text) {
  std::string first = text.substr(0, text.find('\n'));
  for (const char* prefix : {"ERROR:  ", "FATAL:  "}) {
    if (first.rfind(prefix, 0) == 0) first = first.substr(std::char_traits<char>::length(prefix));
  }
  // libpq connection errors span lines ("...refused\n\tIs the server running");
  // keep the rest too but flattened, since it names the host and port.
  std::string rest = text.find('\n') == std::string::npos ? "" : text.substr(text.find('\n'));
  std::string joined = first + rest;
  std::string out;
  bool space = false;
  for (char c : joined) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// Only the first line of a server error (the rest is CONTEXT/DETAIL noise).
std::string ServerMessage(const std::string& text) {
  return OneLine(text.substr(0, text.find('\n')));
}

Status FromSqlState(const std::string& state, const std::string& msg, bool* broken) {
  auto starts = [&state](const char* p) { return state.rfind(p, 0) == 0; };
  if (state == "55P03") return Status::Conflict("lock_timeout: " + msg);
  if (state == "40P01") return Status::Conflict("deadlock_detected: " + msg);
  if (starts("40")) return Status::Conflict("serialization_failure: " + msg);
  if (state == "23514") return Status::Conflict("check_violation: " + msg);
  if (state == "23505") return Status::Conflict("unique_violation: " + msg);
  if (starts("23")) return Status::Conflict("integrity_violation: " + msg);
  if (state == "25P02") return Status::Conflict("transaction_aborted: " + msg);
  if (state == "55000") return Status::Conflict("object_not_in_prerequisite_state: " + msg);
  if (state == "57014") return Status::Timeout("statement_canceled: " + msg);
  if (starts("08") || state == "57P01" || state == "57P02" || state == "57P03") {
    *broken = true;
    return Status::Unavailable("PostgreSQL unavailable: " + msg);
  }
  if (starts("53")) return Status::Unavailable("PostgreSQL out of resources: " + msg);
  if (starts("22")) return Status::InvalidArgument("invalid data: " + msg);
  return Status::Internal("PostgreSQL error " + state + ": " + msg);
}

// Maps the exception currently being handled (call only inside a catch
// block). Sets *broken when the connection it came from must not be reused.
Status MapCurrentException(const std::string& context, bool* broken) {
  const std::string where = context.empty() ? "" : context + ": ";
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    *broken = true;
    return Status::Unavailable(where + "PostgreSQL connection failed: " + OneLine(e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    *broken = true;
    return Status::Unavailable(where + "PostgreSQL connection lost during commit: " +
                               ServerMessage(e.what()));
  } catch (const pqxx::transaction_rollback& e) {
    // Serialization failures and deadlocks (libpqxx 6 gives them no sqlstate()).
    std::string msg = ServerMessage(e.what());
    if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
      return Status::Conflict("deadlock_detected: " + msg);
    }
    return Status::Conflict("serialization_failure: " + msg);
  } catch (const pqxx::sql_error& e) {
    // The message keeps its leading "<reason>: " (see bank_store.h); the
    // context goes at the end.
    Status s = FromSqlState(e.sqlstate(), ServerMessage(e.what()), broken);
    if (context.empty()) return s;
    return Status(s.code(), s.message() + " (during " + context + ")");
  } catch (const pqxx::failure& e) {
    *broken = true;
    return Status::Unavailable(where + "PostgreSQL failure: " + OneLine(e.what()));
  } catch (const std::exception& e) {
    return Status::Internal(where + OneLine(e.what()));
  } catch (...) {
    return Status::Internal(where + "unknown exception");
  }
}

// libpq connection options are "key=value ..." or a postgresql:// URI; adds a
// connect timeout unless the caller chose one, so an unreachable host fails in
// seconds instead of the kernel's TCP timeout.
std::string WithDefaultConnectTimeout(const std::string& uri) {
  if (uri.find("connect_timeout") != std::string::npos) return uri;
  if (uri.rfind("postgresql://", 0) == 0 || uri.rfind("postgres://", 0) == 0) {
    return uri + (uri.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=5";
  }
  return uri.empty() ? "connect_timeout=5" : uri + " connect_timeout=5";
}

bool ValidParticipantName(const std::string& name) {
  if (name.empty() || name.size() > kMaxParticipantNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Status CheckTxnId(const std::string& txn_id) {
  if (!IsValidId(txn_id)) return Status::InvalidArgument("invalid transaction id: '" + txn_id + "'");
  return Status::Ok();
}

std::string PeersToJson(const std::vector<std::string>& peers) {
  return nlohmann::json(peers).dump();
}

std::vector<std::string> PeersFromJson(const std::string& text) {
  std::vector<std::string> peers;
  if (text.empty()) return peers;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_array()) return peers;
    for (const auto& p : j) {
      if (p.is_string()) peers.push_back(p.get<std::string>());
    }
  } catch (const std::exception& e) {
    VLOG_WARN(kComponent, "unreadable peers column '" << text << "': " << e.what());
  }
  return peers;
}

}  // namespace

namespace pg_detail {

// Swallows server notices: the only routine one is the warning "there is no
// transaction in progress" that libpqxx's closing ROLLBACK draws after a
// successful PREPARE TRANSACTION. Others go to the debug log.
class NoticeSink final : public pqxx::errorhandler {
 public:
  explicit NoticeSink(pqxx::connection_base& conn) : pqxx::errorhandler(conn) {}
  bool operator()(const char msg[]) noexcept override {
    try {
      std::string text(msg);
      if (text.find("there is no transaction in progress") == std::string::npos) {
        VLOG_DEBUG(kComponent, "server notice: " << OneLine(text));
      }
    } catch (...) {
    }
    return false;  // handled: do not pass on to older handlers
  }
};

}  // namespace pg_detail

using pg_detail::NoticeSink;

// One pooled connection. Member order matters: the notice handler must be
// unregistered (destroyed) before the connection it is registered on.
struct PooledConnection {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<NoticeSink> notices;
  int64_t uses = 0;  // checkouts so far; 0 = freshly connected
};

// A bounded, thread-safe pool of connections to one database.
//
// At most `size` connections exist at once. Business transactions (which hold
// a connection for a long time) may hold at most size - reserve of them, so
// short protocol steps always find a connection within a bounded wait. Broken
// connections are dropped on release, together with every idle one (a broken
// connection usually means the server restarted, which broke them all); new
// ones are opened on demand.
class PostgresResource::Pool {
 public:
  Pool(std::string uri, int size, std::chrono::milliseconds acquire_timeout,
       std::vector<std::pair<std::string, std::string>> statements)
      : uri_(WithDefaultConnectTimeout(uri)),
        size_(size),
        reserve_(size >= 8 ? 2 : 1),
        acquire_timeout_(acquire_timeout),
        statements_(std::move(statements)) {}

  // Waits up to the acquire timeout for a connection; opens a new one when the
  // pool is below its size. Unavailable when none can be had.
  Result<std::unique_ptr<PooledConnection>> Acquire(bool business) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + acquire_timeout_;
    while (true) {
      const bool allowed = !business || business_ < size_ - reserve_;
      if (allowed && !idle_.empty()) {
        std::unique_ptr<PooledConnection> c = std::move(idle_.back());
        idle_.pop_back();
        if (business) ++business_;
        return c;
      }
      if (allowed && total_ < size_) {
        ++total_;
        if (business) ++business_;
        lock.unlock();
        Result<std::unique_ptr<PooledConnection>> c = Connect();
        if (!c.ok()) {
          lock.lock();
          --total_;
          if (business) --business_;
          cv_.notify_all();
        }
        return c;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout &&
          std::chrono::steady_clock::now() >= deadline) {
        return Status::Unavailable("no free PostgreSQL connection within " +
                                   std::to_string(acquire_timeout_.count()) + "ms (pool_size " +
                                   std::to_string(size_) + ", " + std::to_string(business_) +
                                   " held by open transactions)");
      }
    }
  }

  // Returns a connection taken by Acquire(business). `broken` (or a connection
  // libpqxx reports closed) drops it, and with it every idle connection.
  void Release(std::unique_ptr<PooledConnection> c, bool business, bool broken) {
    std::vector<std::unique_ptr<PooledConnection>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (business) --business_;
      if (broken || c == nullptr || c->conn == nullptr || !c->conn->is_open()) {
        --total_;
        dropped.push_back(std::move(c));
        total_ -= static_cast<int>(idle_.size());
        for (auto& idle : idle_) dropped.push_back(std::move(idle));
        idle_.clear();
      } else {
        idle_.push_back(std::move(c));
      }
      cv_.notify_all();
    }
    // Closing connections (network I/O) happens outside the lock.
    dropped.clear();
  }

  PostgresPoolStats Stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    PostgresPoolStats s;
    s.open_connections = total_;
    s.idle_connections = static_cast<int>(idle_.size());
    s.open_transactions = business_;
    return s;
  }

 private:
  Result<std::unique_ptr<PooledConnection>> Connect() {
    auto c = std::make_unique<PooledConnection>();
    bool broken = false;
    try {
      c->conn = std::make_unique<pqxx::connection>(uri_);
      c->notices = std::make_unique<NoticeSink>(*c->conn);
      for (const auto& [name, sql] : statements_) c->conn->prepare(name, sql);
      return c;
    } catch (const pqxx::broken_connection& e) {
      return Status::Unavailable("cannot connect to PostgreSQL: " + OneLine(e.what()));
    } catch (...) {
      return MapCurrentException("connect", &broken);
    }
  }

  const std::string uri_;
  const int size_;
  const int reserve_;
  const std::chrono::milliseconds acquire_timeout_;
  const std::vector<std::pair<std::string, std::string>> statements_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PooledConnection>> idle_;
  int total_ = 0;     // connections checked out or idle
  int business_ = 0;  // of those, held by business transactions
};

// A business transaction known to this process. Guarded by `mu`.
struct PostgresResource::OpenTxn {
  enum class Phase {
    kNew,        // no PostgreSQL transaction yet
    kOpen,       // conn + work hold an open PostgreSQL transaction
    kFailed,     // work failed and was rolled back; prepare votes no
    kClosed,     // prepared, aborted or refused: removed from open_
    kDiscarded,  // opening failed; removed from open_, callers start over
  };
  std::mutex mu;
  Phase phase = Phase::kNew;
  int64_t created_at_ms = 0;  // immutable after creation (set under open_ lock)
  std::unique_ptr<PooledConnection> conn;
  std::unique_ptr<pqxx::work> work;
  std::string failure;  // why kFailed
};

namespace {

// Aborts `work` (best effort) and reports whether the connection must be
// dropped. libpqxx's ROLLBACK after PREPARE TRANSACTION is a harmless no-op.
bool AbortQuietly(pqxx::work* work, pqxx::connection* conn) {
  if (work == nullptr) return false;
  try {
    work->abort();
  } catch (...) {
    return true;
  }
  return conn == nullptr || !conn->is_open();
}

}  // namespace

Result<std::unique_ptr<PostgresResource>> PostgresResource::Open(const std::string& uri,
                                                                 PostgresResourceOptions opts) {
  if (!ValidParticipantName(opts.participant_name)) {
    return Status::InvalidArgument(
        "PostgreSQL participant name must be 1-62 characters of [A-Za-z0-9._-], got '" +
        opts.participant_name + "'");
  }
  if (opts.pool_size < 2) return Status::InvalidArgument("PostgreSQL pool_size must be >= 2");
  if (opts.lock_timeout_ms < 0) return Status::InvalidArgument("lock_timeout_ms must be >= 0");
  if (opts.acquire_timeout_ms <= 0) return Status::InvalidArgument("acquire_timeout_ms must be > 0");
  if (opts.clock == nullptr) opts.clock = SystemClock::Default();

  std::vector<std::pair<std::string, std::string>> statements = InternalStatements();
  for (const auto& s : opts.prepared_statements) {
    if (s.first.rfind("verdict_res_", 0) == 0) {
      return Status::InvalidArgument("statement names starting with verdict_res_ are reserved");
    }
    statements.push_back(s);
  }
  auto pool = std::make_unique<Pool>(uri, opts.pool_size,
                                     std::chrono::milliseconds(opts.acquire_timeout_ms),
                                     std::move(statements));
  std::unique_ptr<PostgresResource> resource(new PostgresResource(std::move(opts), std::move(pool)));

  int max_prepared = -1;
  Status s = resource->RunShort("open", [&](pqxx::nontransaction& tx) -> Status {
    pqxx::row r = tx.exec1("SELECT current_setting('max_prepared_transactions')::int");
    max_prepared = r[0].as<int>();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (max_prepared <= 0) {
    return Status::Unavailable(
        "PostgreSQL max_prepared_transactions is 0; PREPARE TRANSACTION needs it > 0");
  }
  // Schema set-up, serialized across processes by an advisory lock so that two
  // participants opening one fresh database at once do not race on CREATE.
  s = resource->WithSchemaLock(
      "create metadata table", "verdict_participant_txns", [](pqxx::nontransaction& tx) {
        tx.exec0(std::string("CREATE TABLE IF NOT EXISTS ") + kMetaTable +
                 " (gid text PRIMARY KEY, participant text NOT NULL, txn_id text NOT NULL,"
                 " protocol text NOT NULL DEFAULT '', coordinator text NOT NULL DEFAULT '',"
                 " peers text NOT NULL DEFAULT '[]', state text NOT NULL,"
                 " updated_at timestamptz NOT NULL DEFAULT now())");
        tx.exec0(std::string("CREATE INDEX IF NOT EXISTS verdict_participant_txns_by_age ON ") +
                 kMetaTable + " (participant, updated_at)");
      });
  if (!s.ok()) return s;
  VLOG_INFO(kComponent, "participant '" << resource->participant_name()
                                        << "' using PostgreSQL (max_prepared_transactions="
                                        << max_prepared << ")");
  return resource;
}

PostgresResource::PostgresResource(PostgresResourceOptions options, std::unique_ptr<Pool> pool)
    : options_(std::move(options)), clock_(options_.clock), pool_(std::move(pool)) {}

PostgresResource::~PostgresResource() {
  std::unordered_map<std::string, std::shared_ptr<OpenTxn>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open.swap(open_);
  }
  for (auto& [id, txn] : open) {
    std::lock_guard<std::mutex> lock(txn->mu);
    RollbackOpen(txn.get());
    txn->phase = OpenTxn::Phase::kClosed;
  }
}

std::string PostgresResource::GidFor(const std::string& txn_id) const {
  return "verdict:" + options_.participant_name + ":" + txn_id;
}

PostgresPoolStats PostgresResource::pool_stats() const { return pool_->Stats(); }

Status PostgresResource::RunShort(const std::string& what,
                                  const std::function<Status(pqxx::nontransaction&)>& fn,
                                  bool retry_stale) {
  for (int attempt = 0;; ++attempt) {
    Result<std::unique_ptr<PooledConnection>> acquired = pool_->Acquire(/*business=*/false);
    if (!acquired.ok()) return acquired.status();
    std::unique_ptr<PooledConnection> c = std::move(acquired).value();
    const bool reused = c->uses++ > 0;
    bool broken = false;
    Status s;
    try {
      pqxx::nontransaction tx(*c->conn);
      s = fn(tx);
    } catch (...) {
      s = MapCurrentException(what, &broken);
    }
    pool_->Release(std::move(c), /*business=*/false, broken);
    if (broken && reused && retry_stale && attempt == 0) {
      VLOG_DEBUG(kComponent, what << ": stale pooled connection, retrying: " << s.message());
      continue;
    }
    return s;
  }
}

Status PostgresResource::WithAutocommit(const std::function<Status(pqxx::nontransaction&)>& fn) {
  return RunShort("", fn, /*retry_stale=*/false);
}

Status PostgresResource::WithSchemaLock(const std::string& what, const std::string& lock_name,
                                        const std::function<void(pqxx::nontransaction&)>& ddl) {
  return RunShort(what, [&](pqxx::nontransaction& tx) -> Status {
    tx.exec0("BEGIN");
    try {
      tx.exec("SELECT pg_advisory_xact_lock(hashtext(" + tx.quote(lock_name) + "))");
      ddl(tx);
      tx.exec0("COMMIT");
    } catch (...) {
      try {
        tx.exec0("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
    return Status::Ok();
  });
}

std::shared_ptr<PostgresResource::OpenTxn> PostgresResource::FindOpen(const std::string& txn_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(txn_id);
  return it == open_.end() ? nullptr : it->second;
}

void PostgresResource::Forget(const std::string& txn_id, const OpenTxn* txn) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(txn_id);
  if (it != open_.end() && it->second.get() == txn) open_.erase(it);
}

void PostgresResource::RollbackOpen(OpenTxn* txn) {
  bool broken = AbortQuietly(txn->work.get(), txn->conn ? txn->conn->conn.get() : nullptr);
  txn->work.reset();
  if (txn->conn) pool_->Release(std::move(txn->conn), /*business=*/true, broken);
}

void PostgresResource::EndOpen(OpenTxn* txn) {
  RollbackOpen(txn);
  txn->phase = OpenTxn::Phase::kClosed;
}

void PostgresResource::Close(const std::string& txn_id, OpenTxn* txn) {
  EndOpen(txn);
  Forget(txn_id, txn);
}

Status PostgresResource::Begin(const std::string& txn_id, OpenTxn* txn) {
  const std::string gid = GidFor(txn_id);
  for (int attempt = 0;; ++attempt) {
    Result<std::unique_ptr<PooledConnection>> acquired = pool_->Acquire(/*business=*/true);
    if (!acquired.ok()) return acquired.status();
    std::unique_ptr<PooledConnection> c = std::move(acquired).value();
    const bool reused = c->uses++ > 0;
    bool broken = false;
    Status s;
    std::unique_ptr<pqxx::work> work;
    try {
      work = std::make_unique<pqxx::work>(*c->conn);
      pqxx::row r = work->exec_prepared1(kStmtBegin, gid, std::to_string(options_.lock_timeout_ms));
      if (!r[1].is_null() || r[2].as<bool>()) {
        const std::string state = r[1].is_null() ? kStatePrepared : r[1].as<std::string>();
        s = Status::Conflict("txn_not_active: transaction " + txn_id + " is already " + state +
                             " here");
      }
    } catch (...) {
      s = MapCurrentException("begin", &broken);
    }
    if (s.ok()) {
      txn->conn = std::move(c);
      txn->work = std::move(work);
      txn->phase = OpenTxn::Phase::kOpen;
      return s;
    }
    broken = AbortQuietly(work.get(), c->conn.get()) || broken;
    work.reset();
    pool_->Release(std::move(c), /*business=*/true, broken);
    if (broken && reused && attempt == 0) continue;  // stale pooled connection
    return s;
  }
}

Status PostgresResource::WithTransaction(const std::string& txn_id,
                                         const std::function<Status(pqxx::work&)>& fn) {
  VERDICT_RETURN_IF_ERROR(CheckTxnId(txn_id));
  while (true) {
    std::shared_ptr<OpenTxn> txn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::shared_ptr<OpenTxn>& slot = open_[txn_id];
      if (slot == nullptr) {
        slot = std::make_shared<OpenTxn>();
        slot->created_at_ms = clock_->NowUnixMs();
      }
      txn = slot;
    }
    std::lock_guard<std::mutex> lock(txn->mu);
    switch (txn->phase) {
      case OpenTxn::Phase::kDiscarded:
        continue;  // a concurrent first call could not open it; start over
      case OpenTxn::Phase::kClosed:
        return Status::Conflict("txn_not_active: transaction " + txn_id +
                                " is already finished here");
      case OpenTxn::Phase::kFailed:
        return Status::Conflict("txn_not_active: transaction " + txn_id +
                                " already failed here (" + txn->failure + ")");
      case OpenTxn::Phase::kNew: {
        Status s = Begin(txn_id, txn.get());
        if (!s.ok()) {
          txn->phase = s.code() == StatusCode::kConflict ? OpenTxn::Phase::kClosed
                                                         : OpenTxn::Phase::kDiscarded;
          Forget(txn_id, txn.get());
          return s;
        }
        break;
      }
      case OpenTxn::Phase::kOpen:
        break;
    }

    Status s;
    bool broken = false;
    try {
      s = fn(*txn->work);
    } catch (...) {
      s = MapCurrentException("", &broken);
    }
    if (!s.ok()) {
      // All of this txn's work here is lost; the connection goes back now so a
      // failed txn holds no locks while it waits for its abort.
      broken = AbortQuietly(txn->work.get(), txn->conn->conn.get()) || broken;
      txn->work.reset();
      pool_->Release(std::move(txn->conn), /*business=*/true, broken);
      txn->phase = OpenTxn::Phase::kFailed;
      txn->failure = s.message();
      VLOG_DEBUG(kComponent, "txn " << txn_id << " work failed, rolled back: " << s.ToString());
    }
    return s;
  }
}

Status PostgresResource::WriteMetadata(const std::string& txn_id, const std::string& state,
                                       const TxnRecord* record) {
  const std::string gid = GidFor(txn_id);
  const int64_t now = clock_->NowUnixMs();
  return RunShort("write metadata", [&](pqxx::nontransaction& tx) -> Status {
    if (record != nullptr) {
      tx.exec_prepared0(kStmtUpsertFull, gid, options_.participant_name, txn_id, record->protocol,
                        record->coordinator, PeersToJson(record->peers), state, now);
    } else {
      tx.exec_prepared0(kStmtSetState, gid, options_.participant_name, txn_id, state, now);
    }
    return Status::Ok();
  });
}

Result<Vote> PostgresResource::PrepareOpen(const TxnRecord& record, OpenTxn* txn) {
  const std::string& txn_id = record.txn_id;
  const std::string gid = GidFor(txn_id);

  // 1. Is the transaction still healthy, and did it write anything?
  bool wrote = false;
  {
    bool broken = false;
    Status s;
    try {
      wrote = txn->work->exec_prepared1(kStmtWroteAnything)[0].as<bool>();
    } catch (...) {
      s = MapCurrentException("prepare", &broken);
    }
    if (!s.ok()) {
      Close(txn_id, txn);
      if (broken) return s;  // the database is unreachable: an error, counted as no
      VLOG_WARN(kComponent, "txn " << txn_id << " cannot be prepared, voting no: " << s.message());
      return Vote::kNo;
    }
  }

  if (!wrote) {
    // Nothing written or locked: end the transaction and leave phase two.
    bool broken = false;
    try {
      txn->work->commit();
    } catch (...) {
      VLOG_DEBUG(kComponent, "read-only commit: " << MapCurrentException("", &broken).message());
      broken = true;
    }
    txn->work.reset();  // committed: nothing for RollbackOpen to end
    pool_->Release(std::move(txn->conn), /*business=*/true, broken);
    EndOpen(txn);
    // Recorded before the entry leaves open_, so that no later call can open
    // new work under this id in between (the row refuses it).
    Status m = WriteMetadata(txn_id, kStateReadOnly, &record);
    if (!m.ok()) {
      VLOG_WARN(kComponent, "txn " << txn_id << " read-only vote not recorded: " << m.message());
    }
    Forget(txn_id, txn);
    return Vote::kReadOnly;
  }

  // 2. Metadata first: once the gid exists, recovery must find its coordinator.
  Status m = WriteMetadata(txn_id, kStatePrepared, &record);
  if (!m.ok()) {
    Close(txn_id, txn);
    return Status(m.code(), "prepare " + txn_id + ": " + m.message());
  }

  // 3. PREPARE TRANSACTION: the work becomes durable and session-independent.
  bool broken = false;
  Status s;
  try {
    txn->work->exec0("PREPARE TRANSACTION " + txn->work->quote(gid));
  } catch (...) {
    s = MapCurrentException("PREPARE TRANSACTION", &broken);
  }
  EndOpen(txn);  // the connection goes back to the pool either way
  if (s.ok()) {
    Forget(txn_id, txn);
    return Vote::kYes;
  }
  if (broken) {
    // The server may or may not have prepared it. Counted as no; if it was
    // prepared, ListInDoubt() shows it and the coordinator's abort (or
    // recovery) rolls it back.
    Forget(txn_id, txn);
    return Status::Unavailable("PREPARE TRANSACTION for " + txn_id +
                               " has an unknown outcome (connection lost): " + s.message());
  }
  // The server refused and rolled the transaction back.
  VLOG_WARN(kComponent, "txn " << txn_id << " PREPARE TRANSACTION failed, voting no: "
                               << s.message());
  Status a = WriteMetadata(txn_id, kStateAborted, nullptr);
  if (!a.ok()) VLOG_WARN(kComponent, "txn " << txn_id << " abort not recorded: " << a.message());
  Forget(txn_id, txn);
  return Vote::kNo;
}

Result<Vote> PostgresResource::Prepare(const TxnRecord& record) {
  VERDICT_RETURN_IF_ERROR(CheckTxnId(record.txn_id));
  const std::string& txn_id = record.txn_id;
  if (std::shared_ptr<OpenTxn> txn = FindOpen(txn_id)) {
    std::lock_guard<std::mutex> lock(txn->mu);
    if (txn->phase == OpenTxn::Phase::kOpen) return PrepareOpen(record, txn.get());
    if (txn->phase == OpenTxn::Phase::kFailed) {
      VLOG_DEBUG(kComponent, "txn " << txn_id << " failed earlier, voting no: " << txn->failure);
      Close(txn_id, txn.get());
      return Vote::kNo;
    }
    // kNew/kClosed/kDiscarded: nothing open in memory; the database decides.
  }

  // No open transaction here: a repeated prepare, or work lost in a crash.
  const std::string gid = GidFor(txn_id);
  Vote vote = Vote::kNo;
  Status s = RunShort("prepare", [&](pqxx::nontransaction& tx) -> Status {
    pqxx::row r = tx.exec_prepared1(kStmtLookup, gid);
    const std::string state = r[0].is_null() ? "" : r[0].as<std::string>();
    if (r[1].as<bool>() || state == kStateCommitted) {
      vote = Vote::kYes;
    } else if (state == kStateReadOnly) {
      vote = Vote::kReadOnly;
    } else {
      vote = Vote::kNo;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return vote;
}

Status PostgresResource::Precommit(const std::string& txn_id) {
  VERDICT_RETURN_IF_ERROR(CheckTxnId(txn_id));
  const std::string gid = GidFor(txn_id);
  const int64_t now = clock_->NowUnixMs();
  return RunShort("precommit", [&](pqxx::nontransaction& tx) -> Status {
    pqxx::row r = tx.exec_prepared1(kStmtLookup, gid);
    const std::string state = r[0].is_null() ? "" : r[0].as<std::string>();
    if (r[1].as<bool>()) {
      tx.exec_prepared0(kStmtSetState, gid, options_.participant_name, txn_id, kStatePrecommitted,
                        now);
      return Status::Ok();
    }
    if (state == kStatePrecommitted || state == kStateCommitted) return Status::Ok();
    return Status::Conflict("transaction " + txn_id + " is not prepared here" +
                            (state.empty() ? "" : " (" + state + ")"));
  });
}

Status PostgresResource::Commit(const std::string& txn_id) {
  VERDICT_RETURN_IF_ERROR(CheckTxnId(txn_id));
  if (std::shared_ptr<OpenTxn> txn = FindOpen(txn_id)) {
    std::lock_guard<std::mutex> lock(txn->mu);
    if (txn->phase == OpenTxn::Phase::kOpen || txn->phase == OpenTxn::Phase::kFailed) {
      return Status::Conflict("transaction " + txn_id + " was never prepared here; cannot commit");
    }
  }
  const std::string gid = GidFor(txn_id);
  const int64_t now = clock_->NowUnixMs();
  return RunShort("commit", [&](pqxx::nontransaction& tx) -> Status {
    bool committed_now = false;
    try {
      tx.exec0("COMMIT PREPARED " + tx.quote(gid));
      committed_now = true;
    } catch (const pqxx::sql_error& e) {
      if (e.sqlstate() != "42704") throw;  // 42704: no such prepared transaction
    }
    if (committed_now) {
      tx.exec_prepared0(kStmtMarkCommittedAsync, gid, options_.participant_name, txn_id, now);
      return Status::Ok();
    }
    // Not prepared (any more). If the metadata still says prepared, this is a
    // retry after COMMIT PREPARED succeeded but its bookkeeping did not: the
    // commit decision means it can only have been committed.
    if (!tx.exec_prepared(kStmtMarkCommittedIfPrepared, gid, now).empty()) return Status::Ok();
    pqxx::row r = tx.exec_prepared1(kStmtLookup, gid);
    if (!r[0].is_null() && r[0].as<std::string>() == kStateAborted) {
      VLOG_ERROR(kComponent, "commit of " << txn_id << " which was aborted here");
      return Status::Conflict("transaction " + txn_id + " was aborted here; cannot commit");
    }
    return Status::Ok();  // committed before, read-only, or unknown here
  });
}

Status PostgresResource::Abort(const std::string& txn_id) {
  VERDICT_RETURN_IF_ERROR(CheckTxnId(txn_id));
  bool rolled_back = false;
  std::shared_ptr<OpenTxn> txn = FindOpen(txn_id);
  std::unique_lock<std::mutex> txn_lock;
  if (txn != nullptr) {
    txn_lock = std::unique_lock<std::mutex>(txn->mu);
    if (txn->phase == OpenTxn::Phase::kOpen || txn->phase == OpenTxn::Phase::kFailed) {
      // Rolled back now; the entry stays (closed, refusing work) until the
      // outcome row is written below.
      EndOpen(txn.get());
      rolled_back = true;
    }
  }
  const std::string gid = GidFor(txn_id);
  const int64_t now = clock_->NowUnixMs();
  Status s = RunShort("abort", [&](pqxx::nontransaction& tx) -> Status {
    if (!rolled_back) {
      try {
        tx.exec0("ROLLBACK PREPARED " + tx.quote(gid));
      } catch (const pqxx::sql_error& e) {
        if (e.sqlstate() != "42704") throw;  // not prepared: nothing to discard
      }
    }
    if (!tx.exec_prepared(kStmtMarkAborted, gid, options_.participant_name, txn_id, now).empty()) {
      return Status::Ok();
    }
    pqxx::row r = tx.exec_prepared1(kStmtLookup, gid);
    if (!r[0].is_null() && r[0].as<std::string>() == kStateCommitted) {
      VLOG_ERROR(kComponent, "abort of " << txn_id << " which was committed here");
      return Status::Conflict("transaction " + txn_id + " was committed here; cannot abort");
    }
    return Status::Ok();  // read-only here: nothing to abort
  });
  if (rolled_back) Forget(txn_id, txn.get());
  return s;
}

Result<std::vector<TxnRecord>> PostgresResource::ListInDoubt() {
  const std::string prefix = GidFor("");
  std::vector<TxnRecord> records;
  Status s = RunShort("list in-doubt", [&](pqxx::nontransaction& tx) -> Status {
    records.clear();
    pqxx::result rows = tx.exec_prepared(kStmtListInDoubt, prefix);
    for (const pqxx::row& row : rows) {
      TxnRecord rec;
      rec.txn_id = row[0].as<std::string>().substr(prefix.size());
      rec.prepared_at_ms = row[1].is_null() ? 0 : row[1].as<int64_t>();
      if (!row[2].is_null() && !row[2].as<std::string>().empty()) {
        rec.protocol = row[2].as<std::string>();
      }
      rec.coordinator = row[3].is_null() ? "" : row[3].as<std::string>();
      rec.peers = PeersFromJson(row[4].is_null() ? "" : row[4].as<std::string>());
      const std::string state = row[5].is_null() ? "" : row[5].as<std::string>();
      rec.state = state == kStatePrecommitted ? LocalState::kPrecommitted : LocalState::kPrepared;
      records.push_back(std::move(rec));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return records;
}

Result<LocalState> PostgresResource::GetState(const std::string& txn_id) {
  VERDICT_RETURN_IF_ERROR(CheckTxnId(txn_id));
  if (std::shared_ptr<OpenTxn> txn = FindOpen(txn_id)) {
    std::lock_guard<std::mutex> lock(txn->mu);
    if (txn->phase == OpenTxn::Phase::kOpen) return LocalState::kActive;
    // Its work is rolled back and its vote will be no: it can only abort.
    if (txn->phase == OpenTxn::Phase::kFailed) return LocalState::kAborted;
  }
  const std::string gid = GidFor(txn_id);
  LocalState state = LocalState::kUnknown;
  Status s = RunShort("get state", [&](pqxx::nontransaction& tx) -> Status {
    pqxx::row r = tx.exec_prepared1(kStmtLookup, gid);
    const std::string meta = r[0].is_null() ? "" : r[0].as<std::string>();
    if (r[1].as<bool>()) {
      state = meta == kStatePrecommitted ? LocalState::kPrecommitted : LocalState::kPrepared;
    } else if (meta == kStateCommitted) {
      state = LocalState::kCommitted;
    } else if (meta == kStateAborted) {
      state = LocalState::kAborted;
    } else {
      // No row, read-only, or a "prepared" row whose gid is gone before its
      // outcome was recorded: nothing precise to say.
      state = LocalState::kUnknown;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return state;
}

std::vector<std::string> PostgresResource::AbortStaleActive(int64_t cutoff_unix_ms) {
  std::vector<std::pair<std::string, std::shared_ptr<OpenTxn>>> candidates;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, txn] : open_) {
      if (txn->created_at_ms < cutoff_unix_ms) candidates.emplace_back(id, txn);
    }
  }
  std::vector<std::string> aborted;
  for (auto& [id, txn] : candidates) {
    // A txn busy right now (work running, or being prepared) is left alone;
    // the next sweep sees it again if it is still open then.
    std::unique_lock<std::mutex> lock(txn->mu, std::try_to_lock);
    if (!lock.owns_lock()) continue;
    const bool had_work =
        txn->phase == OpenTxn::Phase::kOpen || txn->phase == OpenTxn::Phase::kFailed;
    if (txn->phase == OpenTxn::Phase::kClosed || txn->phase == OpenTxn::Phase::kDiscarded) {
      continue;
    }
    if (!had_work) {
      Close(id, txn.get());
      continue;
    }
    EndOpen(txn.get());
    Status m = WriteMetadata(id, kStateAborted, nullptr);
    if (!m.ok()) VLOG_WARN(kComponent, "txn " << id << " abort not recorded: " << m.message());
    Forget(id, txn.get());
    VLOG_INFO(kComponent, "rolled back stale unprepared txn " << id);
    aborted.push_back(id);
  }
  return aborted;
}

void PostgresResource::ForgetOutcomesBefore(int64_t cutoff_unix_ms) {
  Status s = RunShort("forget outcomes", [&](pqxx::nontransaction& tx) -> Status {
    tx.exec_params0(
        "DELETE FROM verdict_participant_txns WHERE participant = $1"
        " AND updated_at < " VERDICT_TS(2) " AND (state IN ('committed', 'aborted', 'read_only')"
        " OR NOT EXISTS (SELECT 1 FROM pg_prepared_xacts p"
        "                WHERE p.gid = verdict_participant_txns.gid))",
        options_.participant_name, cutoff_unix_ms);
    return Status::Ok();
  });
  if (!s.ok()) VLOG_WARN(kComponent, "forgetting old outcomes failed: " << s.message());
}

}  // namespace verdict::participant
