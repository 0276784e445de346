// RecoveryManager: finishes every transaction a coordinator crash left
// incomplete, keeps re-driving phase two while participants are down, and
// enforces log retention.
//
// On start (before the API serves), every record that is not `completed` is
// loaded from the decision log:
//   decision commit / abort -> adopted; phase two re-sent to every participant
//                              that has not acknowledged, with backoff.
//   3PC decision precommit  -> finished as commit, unless a participant reports
//                              that it already aborted (3PC termination ran while
//                              the coordinator was down): then abort, so every
//                              participant ends the same way. Logged (fsync)
//                              before any message.
//   no decision             -> aborted (presumed abort) and the abort sent to
//                              every enlisted participant.
// Afterwards a background pass runs every `pass_interval`: it resumes pending
// phase-two messages, adopts decided-but-incomplete records not in memory,
// and deletes completed records older than `retention`.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "verdict/common/status.h"
#include "verdict/coordinator/coordinator.h"

namespace verdict::recovery {

struct RecoveryOptions {
  std::chrono::milliseconds pass_interval{2'000};
  int64_t retention_ms = 86'400'000;  // completed records kept this long (default 24h)
  std::chrono::milliseconds gc_interval{60'000};
};

struct RecoveryReport {
  int adopted = 0;          // decided records re-driven
  int presumed_aborts = 0;  // undecided records aborted
  int precommits_finished = 0;
};

class RecoveryManager {
 public:
  RecoveryManager(coordinator::Coordinator* coordinator, RecoveryOptions options);
  ~RecoveryManager();
  RecoveryManager(const RecoveryManager&) = delete;
  RecoveryManager& operator=(const RecoveryManager&) = delete;

  // Loads and finishes every incomplete record. Call once, before serving.
  Result<RecoveryReport> RecoverOnStartup();

  // One pass now (POST /admin/recovery/run): re-sends every pending phase-two
  // message and adopts decided records missing from memory. Returns the number
  // of transactions resumed.
  int RunNow();

  // Deletes completed records older than the retention. Returns how many.
  Result<int64_t> CollectGarbage();

  void Start();  // background passes
  void Stop();   // idempotent

 private:
  Status FinishRecord(coordinator::Transaction txn, RecoveryReport* report);
  coordinator::TxnState DecidePrecommitted(const coordinator::Transaction& txn);
  int Pass(bool resume_backoff);
  void Loop();

  coordinator::Coordinator* coordinator_;
  RecoveryOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace verdict::recovery
