// Coordinator: the transaction engine behind the REST API. It owns the
// in-memory table of live transactions, drives 2PC/3PC (txn_state.h) over a
// ParticipantClient, and makes decisions durable in a DecisionLog.
//
// Ownership: the DecisionLog, HttpTransport and Clock are borrowed and must
// outlive the Coordinator. Nothing is process-global, so several coordinators
// can live in one process (tests do this).
//
// Thread-safety: every public method is thread-safe. Each transaction has its
// own mutex; log writes for a transaction happen under it so they reach the
// log in order. Blocking network calls never run under a lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "verdict/common/clock.h"
#include "verdict/common/status.h"
#include "verdict/common/thread_pool.h"
#include "verdict/common/timer_queue.h"
#include "verdict/common/transport.h"
#include "verdict/coordinator/decision_log.h"
#include "verdict/coordinator/participant_client.h"
#include "verdict/coordinator/transaction.h"

namespace verdict::coordinator {

struct CoordinatorOptions {
  std::string self_url;  // sent to participants in prepare ("coordinator")
  int64_t default_timeout_ms = 30'000;
  int64_t max_timeout_ms = 86'400'000;
  size_t max_participants = 64;
  std::chrono::milliseconds prepare_timeout{5'000};
  std::chrono::milliseconds phase2_timeout{5'000};
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{10'000};
  int fanout_threads = 64;  // blocking participant calls
  int driver_threads = 8;   // timeouts and other background protocol drivers
  // Finished transactions stay in memory this long for cheap reads; after that
  // reads come from the decision log.
  std::chrono::milliseconds keep_completed{10'000};
};

struct NewParticipant {
  std::string name;
  std::string url;
};

struct CreateRequest {
  std::optional<Protocol> protocol;
  std::optional<int64_t> timeout_ms;
  std::vector<NewParticipant> participants;
  std::string idempotency_key;
};

struct CoordinatorMetrics {
  int64_t created = 0;
  int64_t committed = 0;
  int64_t aborted = 0;
  int64_t in_doubt_replies = 0;
  int64_t timeouts = 0;
  int64_t prepare_failures = 0;
  int64_t phase2_retries = 0;
  int64_t log_sync_writes = 0;
  int64_t log_write_errors = 0;
  int64_t live = 0;         // transactions in memory
  int64_t incomplete = 0;   // decided or undecided, not yet completed
};

class Coordinator {
 public:
  Coordinator(CoordinatorOptions options, DecisionLog* log, HttpTransport* transport, Clock* clock);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Stops timers and background work; in-flight calls finish. Idempotent.
  void Stop();

  // API operations (CONTRACT.md "Coordinator API"). Errors: InvalidArgument,
  // NotFound, Conflict (illegal in the current state), Unavailable (log),
  // InDoubt (the outcome cannot be learned now).
  Result<Transaction> Create(const CreateRequest& request);
  Result<Transaction> Enlist(const std::string& id, const NewParticipant& participant);
  Result<Transaction> Commit(const std::string& id);
  Result<Transaction> Abort(const std::string& id);
  Result<Transaction> Get(const std::string& id);
  // "commit", "abort" or "pending"; an unknown id is "abort" (presumed abort).
  Result<std::string> DecisionFor(const std::string& id);
  // Operator decision. Conflict when it contradicts a logged decision, or when
  // commit is asked of a transaction whose participants have not all voted yes.
  Result<Transaction> Resolve(const std::string& id, Decision decision);
  // In-memory and logged transactions; `in_doubt` lists every one not completed.
  Result<std::vector<Transaction>> List(std::optional<TxnState> state, bool in_doubt, size_t limit);

  // Recovery hooks (recovery/). Adopt takes a decided (commit or abort),
  // not-yet-completed record from the log and drives its phase two until every
  // participant acknowledges.
  Status Adopt(Transaction txn);
  // Sends every unacknowledged phase-two message now, resetting backoff.
  // Returns how many transactions it resumed.
  int ResumePending();
  // True when `id` is held in memory (live or recently finished).
  bool IsLive(const std::string& id);

  CoordinatorMetrics Metrics() const;
  ParticipantClient& participant_client() { return client_; }
  DecisionLog* log() { return log_; }
  Clock* clock() { return clock_; }

 private:
  struct Entry;
  enum class Driver { kNone, kCommit, kAbort };

  std::shared_ptr<Entry> Find(const std::string& id);
  void Insert(const std::shared_ptr<Entry>& e);
  Result<Transaction> FromLog(const std::string& id);

  Result<Transaction> RunCommit(const std::shared_ptr<Entry>& e);
  Result<Transaction> RunAbort(const std::shared_ptr<Entry>& e, const std::string& reason);
  // Waits for another caller's drive to finish; returns the outcome as seen by
  // a `want` (commit or abort) request.
  Result<Transaction> AwaitOutcome(const std::shared_ptr<Entry>& e,
                                   std::unique_lock<std::mutex>& lock, Decision want);
  // Logs the commit (2PC) or precommit (3PC) decision; on failure, tries to
  // replace it with a durable abort. Called and returns with e->mu held.
  Status LogCommitDecision(Entry& e);
  // Makes a durable abort replace whatever decision record is in the log;
  // on failure leaves the txn undecided (preparing). e.mu held.
  bool TryDurableAbort(Entry& e, const std::string& reason);
  // Background: retries TryDurableAbort for a txn whose decision is in doubt
  // (every retry_max) and drives the abort once it is durable.
  void RetryAbortDecision(const std::string& id);
  // Sends the outcome to every unacknowledged participant once, in parallel.
  void Phase2Round(const std::shared_ptr<Entry>& e, Decision decision);
  // Marks the drive finished and schedules retries or completion. e->mu held.
  void FinishDrive(const std::shared_ptr<Entry>& e, TxnState final_state);
  void SendOne(const std::shared_ptr<Entry>& e, size_t index, uint64_t gen);
  void ScheduleRetry(const std::shared_ptr<Entry>& e, size_t index);
  void MaybeComplete(const std::shared_ptr<Entry>& e);  // e->mu held
  void ScheduleEviction(const std::shared_ptr<Entry>& e);
  void OnTimeout(const std::string& id);
  Status WriteLog(Entry& e, bool sync);  // e->mu held

  CoordinatorOptions options_;
  DecisionLog* log_;
  Clock* clock_;
  ParticipantClient client_;

  mutable std::mutex map_mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> txns_;
  std::unordered_map<std::string, std::string> idempotency_;  // key -> id, live txns only
  std::mutex create_mu_;  // serializes idempotency-key check-and-insert

  struct Counters {
    std::atomic<int64_t> created{0}, committed{0}, aborted{0}, in_doubt_replies{0}, timeouts{0},
        prepare_failures{0}, phase2_retries{0}, log_sync_writes{0}, log_write_errors{0};
  };
  mutable Counters counters_;

  // Declared last: destroyed first, so no callback outlives the state above.
  ThreadPool fanout_;
  ThreadPool drivers_;
  TimerQueue timers_;
  std::atomic<bool> stopped_{false};
};

}  // namespace verdict::coordinator
