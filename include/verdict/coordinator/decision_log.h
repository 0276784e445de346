// DecisionLog: the coordinator's durable memory. The engine never touches
// storage except through this interface, so the LevelDB default and later
// backends (PostgreSQL, shared by a cluster) are interchangeable, and tests can
// inject faults.
//
// Durability: Write(txn, /*sync=*/true) returns only after the record is on
// stable storage (fsync). Write(txn, false) may be lost in a crash but is never
// torn: after a crash each record is some whole version that was written.
// Later writes of the same id replace earlier ones.
//
// Thread-safety: every method may be called from any thread concurrently;
// implementations group concurrent synced writes where they can.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "verdict/common/status.h"
#include "verdict/coordinator/transaction.h"

namespace verdict::coordinator {

class DecisionLog {
 public:
  virtual ~DecisionLog() = default;

  // Stores `txn` (replacing any earlier record of txn.id). When
  // `idempotency_key` is non-empty it is bound to txn.id in the same atomic write.
  virtual Status Write(const Transaction& txn, bool sync,
                       const std::string& idempotency_key = "") = 0;

  // The record of `id`, or nullopt when there is none.
  virtual Result<std::optional<Transaction>> Read(const std::string& id) = 0;

  // The txn id bound to an idempotency key, or nullopt.
  virtual Result<std::optional<std::string>> LookupIdempotencyKey(const std::string& key) = 0;

  // Calls `fn` for every record that is not completed (the recovery set).
  // Return false from fn to stop early.
  virtual Status ScanIncomplete(const std::function<bool(Transaction)>& fn) = 0;

  // Calls `fn` for every record, in id order, starting after `after_id`.
  virtual Status ScanAll(const std::string& after_id,
                         const std::function<bool(Transaction)>& fn) = 0;

  // Deletes completed records whose completion is older than `cutoff_unix_ms`,
  // and their idempotency keys. Returns how many records were deleted.
  virtual Result<int64_t> DeleteCompletedBefore(int64_t cutoff_unix_ms) = 0;
};

struct LevelDbLogOptions {
  size_t block_cache_bytes = 8 << 20;
  size_t write_buffer_bytes = 16 << 20;
};

// Opens (creating if needed) a LevelDB decision log in `dir`. Fails with a
// one-line reason when the directory is unusable, locked by another process,
// or holds records of an unsupported format version.
Result<std::unique_ptr<DecisionLog>> OpenLevelDbDecisionLog(const std::string& dir,
                                                            const LevelDbLogOptions& options = {});

struct PostgresLogOptions {
  int pool_size = 8;  // connections; concurrent writers beyond this wait
};

// Opens the decision log in the PostgreSQL database at `uri` (libpq URI or
// key=value string), creating its tables if missing. Fails with a one-line
// reason when the server cannot be reached or the schema has another format.
// The layout and fsync points are in docs/log-format.md.
Result<std::unique_ptr<DecisionLog>> OpenPostgresDecisionLog(const std::string& uri,
                                                             const PostgresLogOptions& options = {});

}  // namespace verdict::coordinator
