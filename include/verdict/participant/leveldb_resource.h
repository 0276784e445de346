// LevelDbResource: an embedded, transactional key/value store that is a
// participant::Resource. verdict-bank's embedded store is built on it.
//
// Concurrency control is strict two-phase locking on keys: Update() takes an
// exclusive lock on the key for the calling txn and keeps it until the txn
// commits or aborts. A txn that wants a key another txn holds waits up to
// options.lock_wait, then gets Conflict "lock_timeout: ...". Reads outside a
// txn (ReadCommitted) see only committed data and never wait.
//
// Durability:
//   Update      staged in memory only; lost on a crash (the later prepare then
//               finds nothing and votes no, which is what 2PC wants).
//   Insert      one synced write.
//   Prepare     one synced WriteBatch with the prepared record (TxnRecord + the
//               staged writes) -> kYes. After a restart Open() reloads every
//               prepared record and re-locks its keys until it is decided.
//   Precommit   the record rewritten with state precommitted, synced.
//   Commit      one synced WriteBatch: staged writes applied, prepared record
//               deleted, outcome "committed" written.
//   Abort       one unsynced WriteBatch: prepared record deleted, outcome
//               "aborted" written (a prepared txn that reappears after a crash
//               is asked about again and aborted again).
//
// Key layout (one LevelDB database per data dir):
//   m/format                          "1": the layout version
//   d/<key>                           committed value of <key>
//   p/<txn_id>                        prepared record (format in leveldb_codec.h)
//   o/<txn_id>                        outcome: committed | aborted, with time
//   t/<20-digit at_ms>/<txn_id>       empty; orders outcomes by age for
//                                     ForgetOutcomesBefore
//
// A txn that committed or aborted here refuses further work (Conflict
// "txn_not_active: ...") while its outcome is remembered, so a late business
// call cannot resurrect it.
//
// Thread-safety: every method is thread-safe. One process per data dir
// (LevelDB's LOCK file enforces it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "verdict/common/clock.h"
#include "verdict/common/status.h"
#include "verdict/participant/resource.h"

namespace leveldb {
class DB;
class FilterPolicy;
}  // namespace leveldb

namespace verdict::participant {

struct LevelDbResourceOptions {
  // How long Update waits for a key held by another txn.
  std::chrono::milliseconds lock_wait{2'000};
  // Finished outcomes are also kept in memory this long (the disk copy lasts
  // until ForgetOutcomesBefore).
  std::chrono::milliseconds outcome_cache{10 * 60 * 1000};
  // Timestamps (first staged, prepared, outcome). nullptr = SystemClock::Default().
  Clock* clock = nullptr;
};

class LevelDbResource final : public Resource {
 public:
  // Creates `dir` if needed and opens (or creates) the store in it, reloading
  // prepared txns. IoError naming the dir when it cannot be used (not a
  // directory, no permission, locked by another process); Internal for a
  // corrupt or foreign database.
  static Result<std::unique_ptr<LevelDbResource>> Open(const std::string& dir,
                                                       LevelDbResourceOptions options = {});
  ~LevelDbResource() override;
  LevelDbResource(const LevelDbResource&) = delete;
  LevelDbResource& operator=(const LevelDbResource&) = delete;

  // ---- Business API ----

  // The committed value of `key` (nullopt when absent). Never waits for locks.
  Result<std::optional<std::string>> ReadCommitted(const std::string& key);

  // Creates `key` outside any txn, synced. Conflict "exists: ..." when the key
  // exists, "locked: ..." while a txn or another Insert holds it.
  Status Insert(const std::string& key, const std::string& value);

  // Computes the txn's next value of a key from its current one (the value this
  // txn staged, else the committed value; nullopt = absent). Returning nullopt
  // stages a delete; returning an error stages nothing.
  using UpdateFn =
      std::function<Result<std::optional<std::string>>(const std::optional<std::string>& current)>;

  // Locks `key` for `txn_id` (waiting up to lock_wait), then stages fn(current).
  // `fn` runs with the resource's internal mutex held: it must be quick and
  // must not call back into the resource. Errors:
  //   Conflict "lock_timeout: ..."   another txn kept the key past lock_wait;
  //   Conflict "txn_not_active: ..." txn_id is preparing, prepared, committed
  //                                  or aborted here;
  //   InvalidArgument                empty txn id or key;
  //   whatever fn returned (the key lock is then released unless the txn held
  //   it before this call).
  Status Update(const std::string& txn_id, const std::string& key, const UpdateFn& fn);

  // ---- Resource ----
  Result<Vote> Prepare(const TxnRecord& record) override;
  Status Precommit(const std::string& txn_id) override;
  // Commit of an aborted txn is Conflict (the protocol was violated); of an
  // active (never prepared) txn applies its work (one-phase commit).
  Status Commit(const std::string& txn_id) override;
  // Abort of a committed txn is Conflict. An unknown id is remembered as
  // aborted so later work under it is refused.
  Status Abort(const std::string& txn_id) override;
  Result<std::vector<TxnRecord>> ListInDoubt() override;
  Result<LocalState> GetState(const std::string& txn_id) override;
  std::vector<std::string> AbortStaleActive(int64_t cutoff_unix_ms) override;
  void ForgetOutcomesBefore(int64_t cutoff_unix_ms) override;

  // ---- Introspection (tests, metrics) ----
  // The txn that holds `key`'s lock, or "" when it is free.
  std::string LockOwner(const std::string& key);
  size_t LockedKeyCount();

 private:
  // In-memory life of a txn that has not finished here.
  enum class Phase { kActive, kPreparing, kPrepared, kPrecommitted };
  struct Txn {
    Phase phase = Phase::kActive;
    // A durable write for this txn (prepare, precommit, commit) is in flight;
    // other protocol calls wait, business calls are refused.
    bool busy = false;
    std::map<std::string, std::optional<std::string>> writes;
    std::set<std::string> locks;  // keys whose lock this txn owns
    int64_t first_staged_ms = 0;
    TxnRecord record;             // meaningful from kPreparing on
  };
  struct Finished {
    LocalState state;
    int64_t at_ms;
  };
  enum class Known { kNo, kCommitted, kAborted };

  LevelDbResource(leveldb::DB* db, const leveldb::FilterPolicy* filter,
                  LevelDbResourceOptions options);
  Status LoadPrepared();

  int64_t NowMs() { return clock_->NowUnixMs(); }
  // Waits (mu_ held via `lock`) until txn_id is not busy; returns its entry or
  // nullptr once it is gone.
  Txn* WaitIdle(std::unique_lock<std::mutex>& lock, const std::string& txn_id);
  // Drops a txn from memory: releases its key locks and remembers its outcome.
  // Requires mu_.
  void FinishLocked(const std::string& txn_id, LocalState outcome, int64_t at_ms);
  void RememberLocked(const std::string& txn_id, LocalState outcome, int64_t at_ms);
  void ReleaseKeyLocked(const std::string& key);
  // Outcome from the in-memory cache (mu_ held) or the disk (mu_ not held).
  Known CachedOutcomeLocked(const std::string& txn_id);
  Result<Known> DiskOutcome(const std::string& txn_id);
  // The outcome of a txn no longer held in memory: the cache (under `lock`,
  // which it releases), then the disk.
  Result<Known> FinishedOutcomeUnlocking(std::unique_lock<std::mutex>& lock,
                                         const std::string& txn_id);
  // Writes the outcome (and deletes any prepared record) of a txn, unsynced.
  Status WriteAbortRecord(const std::string& txn_id, int64_t at_ms);
  // Records "aborted" for a txn this resource has no entry for; returns the
  // state the txn ended up in (another thread may have raced us).
  Result<Known> RecordAbortOfUnknown(const std::string& txn_id);

  leveldb::DB* db_;
  const leveldb::FilterPolicy* filter_;
  LevelDbResourceOptions options_;
  Clock* clock_;

  std::mutex mu_;
  // Signalled when a key lock is released or a txn stops being busy.
  std::condition_variable cv_;
  std::unordered_map<std::string, Txn> txns_;
  // key -> owning txn id; kInsertOwner while an Insert holds it.
  std::unordered_map<std::string, std::string> lock_owner_;
  std::unordered_map<std::string, Finished> finished_;
  std::deque<std::pair<int64_t, std::string>> finished_order_;  // (at_ms, txn), oldest first
};

}  // namespace verdict::participant
