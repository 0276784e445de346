#include "verdict/recovery/recovery_manager.h"

#include <vector>

#include "verdict/common/logging.h"

namespace verdict::recovery {

using coordinator::Decision;
using coordinator::Transaction;
using coordinator::TxnState;

namespace {
constexpr char kComponent[] = "recovery";
}

RecoveryManager::RecoveryManager(coordinator::Coordinator* coordinator, RecoveryOptions options)
    : coordinator_(coordinator), options_(options) {}

RecoveryManager::~RecoveryManager() { Stop(); }

TxnState RecoveryManager::DecidePrecommitted(const Transaction& txn) {
  bool any_aborted = false;
  for (const auto& p : txn.participants) {
    if (p.vote != coordinator::Vote::kYes) continue;
    Result<std::string> state = coordinator_->participant_client().QueryState(p.url, txn.id);
    if (!state.ok()) continue;
    if (*state == "committed") return TxnState::kCommitting;
    if (*state == "aborted") any_aborted = true;
  }
  return any_aborted ? TxnState::kAborting : TxnState::kCommitting;
}

Status RecoveryManager::FinishRecord(Transaction txn, RecoveryReport* report) {
  Decision d = txn.decision();
  auto* log = coordinator_->log();
  if (d == Decision::kNone) {
    txn.state = TxnState::kAborting;
    txn.reason = "coordinator restarted before a decision";
    txn.decided_at_ms = coordinator_->clock()->NowUnixMs();
    for (auto& p : txn.participants) {
      if (p.vote == coordinator::Vote::kNo || p.vote == coordinator::Vote::kReadOnly) p.acked = true;
    }
    // Not forced: presumed abort makes a lost abort record harmless.
    VERDICT_RETURN_IF_ERROR(log->Write(txn, /*sync=*/false));
    report->presumed_aborts++;
  } else if (d == Decision::kPrecommit) {
    txn.state = DecidePrecommitted(txn);
    if (txn.state == TxnState::kAborting) {
      txn.reason = "a participant aborted by 3PC termination while the coordinator was down";
    }
    // Forced: it replaces a durable precommit and must not be replayed differently.
    VERDICT_RETURN_IF_ERROR(log->Write(txn, /*sync=*/true));
    report->precommits_finished++;
  } else {
    report->adopted++;
  }
  VLOG_INFO(kComponent, "txn " << txn.id << ": resuming " << coordinator::TxnStateName(txn.state));
  return coordinator_->Adopt(std::move(txn));
}

Result<RecoveryReport> RecoveryManager::RecoverOnStartup() {
  std::vector<Transaction> incomplete;
  Status s = coordinator_->log()->ScanIncomplete([&](Transaction t) {
    incomplete.push_back(std::move(t));
    return true;
  });
  if (!s.ok()) return s;
  RecoveryReport report;
  for (auto& txn : incomplete) {
    std::string id = txn.id;
    Status st = FinishRecord(std::move(txn), &report);
    if (!st.ok()) return Status(st.code(), "recovering " + id + ": " + st.message());
  }
  if (!incomplete.empty()) {
    VLOG_INFO(kComponent, "recovered " << incomplete.size() << " incomplete transactions ("
                                       << report.adopted << " decided, " << report.presumed_aborts
                                       << " presumed abort, " << report.precommits_finished
                                       << " 3PC precommitted)");
  }
  return report;
}

int RecoveryManager::RunNow() { return Pass(/*resume_backoff=*/true); }

int RecoveryManager::Pass(bool resume_backoff) {
  int resumed = resume_backoff ? coordinator_->ResumePending() : 0;
  // Decided records the engine no longer holds (e.g. its completion write
  // failed after eviction) are adopted again. Undecided ones belong to live
  // transactions and are left alone.
  std::vector<Transaction> missing;
  Status s = coordinator_->log()->ScanIncomplete([&](Transaction t) {
    Decision d = t.decision();
    if ((d == Decision::kCommit || d == Decision::kAbort) && !coordinator_->IsLive(t.id)) {
      missing.push_back(std::move(t));
    }
    return true;
  });
  if (!s.ok()) VLOG_WARN(kComponent, "recovery pass: " << s.ToString());
  for (auto& t : missing) {
    if (coordinator_->Adopt(std::move(t)).ok()) ++resumed;
  }
  return resumed;
}

Result<int64_t> RecoveryManager::CollectGarbage() {
  int64_t cutoff = coordinator_->clock()->NowUnixMs() - options_.retention_ms;
  return coordinator_->log()->DeleteCompletedBefore(cutoff);
}

void RecoveryManager::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void RecoveryManager::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RecoveryManager::Loop() {
  auto next_gc = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.pass_interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    // Scheduled retries keep their own backoff; this pass only picks up strays.
    Pass(/*resume_backoff=*/false);
    if (std::chrono::steady_clock::now() >= next_gc) {
      Result<int64_t> deleted = CollectGarbage();
      if (!deleted.ok()) {
        VLOG_WARN(kComponent, "retention: " << deleted.status().ToString());
      } else if (*deleted > 0) {
        VLOG_INFO(kComponent, "retention: deleted " << *deleted << " completed records");
      }
      next_gc = std::chrono::steady_clock::now() + options_.gc_interval;
    }
    lock.lock();
  }
}

}  // namespace verdict::recovery
