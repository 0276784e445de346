// PostgreSQL decision log (`verdictd --log-backend postgres --pg-uri URI`).
//
// Schema (created at open, under an advisory lock so coordinators starting
// together do not race):
//   verdict_log_meta(key text primary key, value text)   -- 'format' -> '1'
//   verdict_decision_log(
//     txn_id text primary key,
//     format smallint,          -- the record's version byte (EncodeRecord)
//     body text,                -- the record body (JSON) after that byte
//     completed boolean, completed_at_ms bigint,
//     idempotency_key text unique)
//   partial indexes on (txn_id) WHERE NOT completed (the recovery set) and on
//   (completed_at_ms) WHERE completed (retention).
//
// Durability: each Write is one upsert in its own transaction. sync=true
// commits with synchronous_commit=on (the WAL is flushed before COMMIT
// returns); sync=false sets it off for that transaction, which may lose the
// write in a server crash but never tears it. Writes of one transaction reach
// the table in call order (the coordinator serializes them).
//
// Errors: libpqxx exceptions are caught here. A write whose commit fails or
// whose connection breaks is reported as IoError: its outcome is unknown,
// which the coordinator handles by writing a superseding abort.
#include <pqxx/pqxx>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "verdict/common/failpoint.h"
#include "verdict/coordinator/decision_log.h"

namespace verdict::coordinator {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS verdict_log_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS verdict_decision_log (
  txn_id text PRIMARY KEY,
  format smallint NOT NULL,
  body text NOT NULL,
  completed boolean NOT NULL,
  completed_at_ms bigint NOT NULL DEFAULT 0,
  idempotency_key text UNIQUE
);
CREATE INDEX IF NOT EXISTS verdict_decision_log_incomplete
  ON verdict_decision_log (txn_id) WHERE NOT completed;
CREATE INDEX IF NOT EXISTS verdict_decision_log_completed_at
  ON verdict_decision_log (completed_at_ms) WHERE completed;
)sql";

constexpr char kUpsert[] = R"sql(
INSERT INTO verdict_decision_log (txn_id, format, body, completed, completed_at_ms, idempotency_key)
VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''))
ON CONFLICT (txn_id) DO UPDATE SET
  format = EXCLUDED.format, body = EXCLUDED.body, completed = EXCLUDED.completed,
  completed_at_ms = EXCLUDED.completed_at_ms,
  idempotency_key = COALESCE(EXCLUDED.idempotency_key, verdict_decision_log.idempotency_key)
)sql";

constexpr int kScanPage = 500;

Result<Transaction> DecodeRow(const pqxx::row& row) {
  int format = row["format"].as<int>();
  std::string bytes(1, static_cast<char>(format));
  bytes += row["body"].as<std::string>();
  return DecodeRecord(bytes);
}

class PostgresDecisionLog final : public DecisionLog {
 public:
  PostgresDecisionLog(std::string uri, int pool_size) : uri_(std::move(uri)), pool_size_(pool_size) {}

  Status Init() {
    return Run("open decision log", /*retry=*/false, [](pqxx::connection& c) {
      pqxx::work w(c);
      w.exec("SELECT pg_advisory_xact_lock(hashtext('verdict_decision_log'))");
      w.exec(kSchema);
      pqxx::result r = w.exec("SELECT value FROM verdict_log_meta WHERE key = 'format'");
      if (r.empty()) {
        w.exec("INSERT INTO verdict_log_meta (key, value) VALUES ('format', '1')");
      } else if (r[0][0].as<std::string>() != "1") {
        return Status::InvalidArgument("the PostgreSQL decision log has format " +
                                       r[0][0].as<std::string>() + "; this verdictd reads format 1");
      }
      w.commit();
      return Status::Ok();
    });
  }

  Status Write(const Transaction& txn, bool sync, const std::string& idempotency_key) override {
    VERDICT_RETURN_IF_ERROR(failpoint::Hit("log.before_write"));
    std::string record = EncodeRecord(txn);
    int format = static_cast<uint8_t>(record[0]);
    std::string body = record.substr(1);
    return Run("decision log write", /*retry=*/false, [&](pqxx::connection& c) {
      pqxx::work w(c);
      w.exec(sync ? "SET LOCAL synchronous_commit TO on" : "SET LOCAL synchronous_commit TO off");
      w.exec_params(kUpsert, txn.id, format, body, txn.completed, txn.completed_at_ms,
                    idempotency_key);
      w.commit();
      return Status::Ok();
    });
  }

  Result<std::optional<Transaction>> Read(const std::string& id) override {
    std::optional<Transaction> out;
    Status s = Run("decision log read", /*retry=*/true, [&](pqxx::connection& c) {
      pqxx::nontransaction n(c);
      pqxx::result r =
          n.exec_params("SELECT format, body FROM verdict_decision_log WHERE txn_id = $1", id);
      if (r.empty()) return Status::Ok();
      Result<Transaction> txn = DecodeRow(r[0]);
      if (!txn.ok()) return txn.status();
      out = std::move(txn).value();
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<std::optional<std::string>> LookupIdempotencyKey(const std::string& key) override {
    std::optional<std::string> out;
    Status s = Run("decision log read", /*retry=*/true, [&](pqxx::connection& c) {
      pqxx::nontransaction n(c);
      pqxx::result r = n.exec_params(
          "SELECT txn_id FROM verdict_decision_log WHERE idempotency_key = $1", key);
      if (!r.empty()) out = r[0][0].as<std::string>();
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Status ScanIncomplete(const std::function<bool(Transaction)>& fn) override {
    return Scan("NOT completed", "", fn);
  }

  Status ScanAll(const std::string& after_id, const std::function<bool(Transaction)>& fn) override {
    return Scan("true", after_id, fn);
  }

  Result<int64_t> DeleteCompletedBefore(int64_t cutoff_unix_ms) override {
    int64_t deleted = 0;
    Status s = Run("retention delete", /*retry=*/true, [&](pqxx::connection& c) {
      pqxx::work w(c);
      w.exec("SET LOCAL synchronous_commit TO off");
      pqxx::result r = w.exec_params(
          "DELETE FROM verdict_decision_log WHERE completed AND completed_at_ms < $1",
          cutoff_unix_ms);
      deleted = r.affected_rows();
      w.commit();
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return deleted;
  }

 private:
  // Pages through rows matching `where` in txn_id order, after `after_id`.
  Status Scan(const std::string& where, std::string after_id,
              const std::function<bool(Transaction)>& fn) {
    const std::string query = "SELECT txn_id, format, body FROM verdict_decision_log WHERE " +
                              where + " AND txn_id > $1 ORDER BY txn_id LIMIT " +
                              std::to_string(kScanPage);
    for (;;) {
      pqxx::result page;
      VERDICT_RETURN_IF_ERROR(Run("decision log scan", /*retry=*/true, [&](pqxx::connection& c) {
        pqxx::nontransaction n(c);
        page = n.exec_params(query, after_id);
        return Status::Ok();
      }));
      for (const auto& row : page) {
        after_id = row["txn_id"].as<std::string>();
        Result<Transaction> txn = DecodeRow(row);
        if (!txn.ok()) return txn.status();
        if (!fn(std::move(txn).value())) return Status::Ok();
      }
      if (page.size() < static_cast<size_t>(kScanPage)) return Status::Ok();
    }
  }

  // Runs `op` on a pooled connection. A broken connection is replaced; when
  // `retry` (idempotent reads and deletes) the operation is tried once more.
  Status Run(const std::string& what, bool retry,
             const std::function<Status(pqxx::connection&)>& op) {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<pqxx::connection> conn;
      Status acquired = Acquire(&conn);
      if (!acquired.ok()) return Status::IoError(what + ": " + acquired.message());
      try {
        Status s = op(*conn);
        Release(std::move(conn));
        return s;
      } catch (const pqxx::broken_connection& e) {
        Release(std::move(conn));  // closed: the pool forgets it
        if (!retry || attempt > 0) return Status::IoError(what + ": connection lost: " + e.what());
      } catch (const pqxx::in_doubt_error& e) {
        Release(std::move(conn));
        return Status::IoError(what + ": commit outcome unknown: " + e.what());
      } catch (const std::exception& e) {
        Release(std::move(conn));  // the failed transaction was rolled back on unwind
        return Status::IoError(what + ": " + e.what());
      }
    }
  }

  Status Acquire(std::unique_ptr<pqxx::connection>* out) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < pool_size_; });
      if (!idle_.empty()) {
        *out = std::move(idle_.front());
        idle_.pop_front();
        if ((*out)->is_open()) return Status::Ok();
        out->reset();
        --open_;
      }
      ++open_;
    }
    try {
      *out = std::make_unique<pqxx::connection>(uri_);
      return Status::Ok();
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      --open_;
      cv_.notify_one();
      std::string msg = e.what();
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      for (char& ch : msg) {
        if (ch == '\n') ch = ' ';
      }
      return Status::Unavailable("cannot connect to PostgreSQL: " + msg);
    }
  }

  void Release(std::unique_ptr<pqxx::connection> conn) {
    std::lock_guard lock(mu_);
    if (conn && conn->is_open()) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
    cv_.notify_one();
  }

  const std::string uri_;
  const int pool_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // idle + checked out
};

}  // namespace

Result<std::unique_ptr<DecisionLog>> OpenPostgresDecisionLog(const std::string& uri,
                                                             const PostgresLogOptions& options) {
  if (uri.empty()) return Status::InvalidArgument("--pg-uri is empty");
  if (options.pool_size < 1) return Status::InvalidArgument("pool_size must be at least 1");
  auto log = std::make_unique<PostgresDecisionLog>(uri, options.pool_size);
  VERDICT_RETURN_IF_ERROR(log->Init());
  return std::unique_ptr<DecisionLog>(std::move(log));
}

}  // namespace verdict::coordinator
