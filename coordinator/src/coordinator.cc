#include "verdict/coordinator/coordinator.h"

#include <algorithm>

#include "verdict/common/backoff.h"
#include "verdict/common/failpoint.h"
#include "verdict/common/ids.h"
#include "verdict/common/logging.h"

namespace verdict::coordinator {

// Per-participant phase-two delivery state; runtime only, never logged.
struct SendState {
  explicit SendState(const CoordinatorOptions& o) : backoff(o.retry_initial, o.retry_max) {}
  Backoff backoff;       // delay before the next retry; reset by ResumePending
  uint64_t gen = 0;      // bumped to cancel scheduled retries
  bool in_flight = false;
};

struct Coordinator::Entry {
  std::mutex mu;
  std::condition_variable cv;
  Transaction txn;
  std::string idempotency_key;
  Driver driver = Driver::kNone;  // which call owns the protocol right now
  bool outcome_ready = false;     // decided and first phase-two round done
  bool log_in_doubt = false;      // a decision write failed and could not be replaced
  bool evict_scheduled = false;
  std::vector<SendState> sends;   // aligned with txn.participants once decided
};

namespace {

constexpr char kComponent[] = "coordinator";

Decision OutcomeOf(TxnState s) {
  if (IsCommitBound(s)) return Decision::kCommit;
  if (IsAbortBound(s)) return Decision::kAbort;
  return Decision::kNone;
}

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, DecisionLog* log, HttpTransport* transport,
                         Clock* clock)
    : options_(std::move(options)),
      log_(log),
      clock_(clock),
      client_(transport, options_.prepare_timeout, options_.phase2_timeout),
      fanout_(options_.fanout_threads),
      drivers_(options_.driver_threads) {}

Coordinator::~Coordinator() { Stop(); }

void Coordinator::Stop() {
  if (stopped_.exchange(true)) return;
  timers_.Stop();
}

std::shared_ptr<Coordinator::Entry> Coordinator::Find(const std::string& id) {
  std::lock_guard lock(map_mu_);
  auto it = txns_.find(id);
  return it == txns_.end() ? nullptr : it->second;
}

bool Coordinator::IsLive(const std::string& id) { return Find(id) != nullptr; }

void Coordinator::Insert(const std::shared_ptr<Entry>& e) {
  std::lock_guard lock(map_mu_);
  txns_[e->txn.id] = e;
  if (!e->idempotency_key.empty()) idempotency_[e->idempotency_key] = e->txn.id;
}

Result<Transaction> Coordinator::FromLog(const std::string& id) {
  Result<std::optional<Transaction>> rec = log_->Read(id);
  if (!rec.ok()) return Status::Unavailable("decision log unavailable: " + rec.status().message());
  if (!rec->has_value()) return Status::NotFound("no transaction " + id);
  return std::move(**rec);
}

Status Coordinator::WriteLog(Entry& e, bool sync) {
  Status s = log_->Write(e.txn, sync, e.idempotency_key);
  if (sync) counters_.log_sync_writes.fetch_add(1, std::memory_order_relaxed);
  if (!s.ok()) {
    counters_.log_write_errors.fetch_add(1, std::memory_order_relaxed);
    VLOG_ERROR(kComponent, "txn " << e.txn.id << ": decision log write failed: " << s.ToString());
  }
  return s;
}

// ---------------------------------------------------------------------------
// Create / enlist / read

Result<Transaction> Coordinator::Create(const CreateRequest& request) {
  if (stopped_) return Status::Unavailable("coordinator is shutting down");
  int64_t timeout = request.timeout_ms.value_or(options_.default_timeout_ms);
  if (timeout <= 0 || timeout > options_.max_timeout_ms) {
    return Status::InvalidArgument("timeout_ms must be between 1 and " +
                                   std::to_string(options_.max_timeout_ms));
  }
  if (request.participants.size() > options_.max_participants) {
    return Status::InvalidArgument("at most " + std::to_string(options_.max_participants) +
                                   " participants");
  }
  auto e = std::make_shared<Entry>();
  Transaction& txn = e->txn;
  txn.protocol = request.protocol.value_or(Protocol::k2pc);
  txn.timeout_ms = timeout;
  for (const auto& p : request.participants) {
    if (p.name.empty() || p.name.size() > 256) {
      return Status::InvalidArgument("participant name must be 1 to 256 bytes");
    }
    VERDICT_RETURN_IF_ERROR(ValidateHttpUrl(p.url));
    if (ParticipantEntry* existing = txn.FindParticipant(p.name)) {
      if (existing->url != p.url) {
        return Status::InvalidArgument("participant '" + p.name + "' listed twice with different urls");
      }
      continue;
    }
    txn.participants.push_back({p.name, p.url, std::nullopt, false});
  }

  std::unique_lock create_lock(create_mu_, std::defer_lock);
  if (!request.idempotency_key.empty()) {
    if (request.idempotency_key.size() > 256) {
      return Status::InvalidArgument("Idempotency-Key is longer than 256 bytes");
    }
    create_lock.lock();
    std::string existing_id;
    {
      std::lock_guard lock(map_mu_);
      auto it = idempotency_.find(request.idempotency_key);
      if (it != idempotency_.end()) existing_id = it->second;
    }
    if (existing_id.empty()) {
      Result<std::optional<std::string>> logged = log_->LookupIdempotencyKey(request.idempotency_key);
      if (!logged.ok()) return Status::Unavailable("decision log unavailable: " + logged.status().message());
      if (logged->has_value()) existing_id = **logged;
    }
    if (!existing_id.empty()) return Get(existing_id);
    e->idempotency_key = request.idempotency_key;
  }

  txn.id = NewRandomId();
  txn.created_at_ms = clock_->NowUnixMs();
  txn.state = TxnState::kActive;
  {
    std::lock_guard lock(e->mu);
    // Not forced: a lost active record means presumed abort, which is correct.
    Status s = WriteLog(*e, /*sync=*/false);
    if (!s.ok()) return Status::Unavailable("decision log unavailable: " + s.message());
  }
  Insert(e);
  counters_.created.fetch_add(1, std::memory_order_relaxed);
  std::string id = txn.id;
  timers_.ScheduleAfter(std::chrono::milliseconds(timeout), [this, id] {
    drivers_.Submit([this, id] { OnTimeout(id); });
  });
  std::lock_guard lock(e->mu);
  return e->txn;
}

Result<Transaction> Coordinator::Enlist(const std::string& id, const NewParticipant& p) {
  if (p.name.empty() || p.name.size() > 256) {
    return Status::InvalidArgument("participant name must be 1 to 256 bytes");
  }
  VERDICT_RETURN_IF_ERROR(ValidateHttpUrl(p.url));
  std::shared_ptr<Entry> e = Find(id);
  if (!e) {
    Result<Transaction> logged = FromLog(id);
    if (!logged.ok()) return logged.status();
    return Status::Conflict("transaction " + id + " is " +
                            std::string(TxnStateName(logged->state)) + ", not active");
  }
  std::lock_guard lock(e->mu);
  Transaction& txn = e->txn;
  if (ParticipantEntry* existing = txn.FindParticipant(p.name)) {
    if (existing->url != p.url) {
      return Status::Conflict("participant '" + p.name + "' is already enlisted with url " +
                              existing->url);
    }
    if (txn.state != TxnState::kActive) {
      // Same participant again after the txn moved on: the work it wants to
      // enlist would not be part of the transaction.
      return Status::Conflict("transaction " + id + " is " + std::string(TxnStateName(txn.state)) +
                              ", not active");
    }
    return txn;
  }
  if (txn.state != TxnState::kActive || e->driver != Driver::kNone) {
    return Status::Conflict("transaction " + id + " is " + std::string(TxnStateName(txn.state)) +
                            ", not active");
  }
  if (txn.participants.size() >= options_.max_participants) {
    return Status::Conflict("transaction " + id + " already has " +
                            std::to_string(options_.max_participants) + " participants");
  }
  txn.participants.push_back({p.name, p.url, std::nullopt, false});
  Status s = WriteLog(*e, /*sync=*/false);
  if (!s.ok()) {
    txn.participants.pop_back();
    return Status::Unavailable("decision log unavailable: " + s.message());
  }
  return txn;
}

Result<Transaction> Coordinator::Get(const std::string& id) {
  std::shared_ptr<Entry> e = Find(id);
  if (!e) return FromLog(id);
  std::lock_guard lock(e->mu);
  return e->txn;
}

Result<std::string> Coordinator::DecisionFor(const std::string& id) {
  std::shared_ptr<Entry> e = Find(id);
  if (e) {
    std::lock_guard lock(e->mu);
    return std::string(PublicDecision(e->txn.state));
  }
  Result<Transaction> logged = FromLog(id);
  if (logged.ok()) return std::string(PublicDecision(logged->state));
  if (logged.status().code() == StatusCode::kNotFound) return std::string("abort");
  return logged.status();
}

Result<std::vector<Transaction>> Coordinator::List(std::optional<TxnState> state, bool in_doubt,
                                                   size_t limit) {
  std::vector<Transaction> out;
  auto wanted = [&](const Transaction& t) {
    if (in_doubt) return !t.completed;
    return !state || t.state == *state;
  };
  std::vector<std::shared_ptr<Entry>> live;
  {
    std::lock_guard lock(map_mu_);
    live.reserve(txns_.size());
    for (const auto& [id, e] : txns_) live.push_back(e);
  }
  std::unordered_map<std::string, bool> seen;
  for (const auto& e : live) {
    std::lock_guard lock(e->mu);
    seen[e->txn.id] = true;
    if (wanted(e->txn) && out.size() < limit) out.push_back(e->txn);
  }
  // Every incomplete transaction is in memory; other states may be only in the log.
  if (!in_doubt && out.size() < limit) {
    Status s = log_->ScanAll("", [&](Transaction t) {
      if (!seen.count(t.id) && wanted(t)) out.push_back(std::move(t));
      return out.size() < limit;
    });
    if (!s.ok()) return Status::Unavailable("decision log unavailable: " + s.message());
  }
  std::sort(out.begin(), out.end(), [](const Transaction& a, const Transaction& b) {
    return a.created_at_ms != b.created_at_ms ? a.created_at_ms < b.created_at_ms : a.id < b.id;
  });
  return out;
}

// ---------------------------------------------------------------------------
// Commit and abort

Result<Transaction> Coordinator::AwaitOutcome(const std::shared_ptr<Entry>& e,
                                              std::unique_lock<std::mutex>& lock, Decision want) {
  e->cv.wait(lock, [&] { return e->outcome_ready || e->log_in_doubt; });
  if (!e->outcome_ready) {
    counters_.in_doubt_replies.fetch_add(1, std::memory_order_relaxed);
    return Status::InDoubt("the outcome of " + e->txn.id + " is not known yet; ask GET /v1/transactions/" + e->txn.id);
  }
  Decision outcome = OutcomeOf(e->txn.state);
  if (want == Decision::kAbort && outcome == Decision::kCommit) {
    return Status::Conflict("transaction " + e->txn.id + " is committed");
  }
  return e->txn;
}

Result<Transaction> Coordinator::Commit(const std::string& id) {
  std::shared_ptr<Entry> e = Find(id);
  if (!e) {
    Result<Transaction> logged = FromLog(id);
    if (!logged.ok()) return logged.status();
    if (IsAbortBound(logged->state)) return Status::Conflict("transaction " + id + " is aborted");
    return logged;
  }
  std::unique_lock lock(e->mu);
  if (e->txn.state == TxnState::kActive && e->driver == Driver::kNone) {
    e->driver = Driver::kCommit;
    e->txn.state = TxnState::kPreparing;
    lock.unlock();
    return RunCommit(e);
  }
  if (e->driver == Driver::kAbort || (e->outcome_ready && IsAbortBound(e->txn.state))) {
    return Status::Conflict("transaction " + id + " is aborted");
  }
  // A commit already under way (or finished): same answer as the first caller.
  return AwaitOutcome(e, lock, Decision::kCommit);
}

Result<Transaction> Coordinator::Abort(const std::string& id) {
  std::shared_ptr<Entry> e = Find(id);
  if (!e) {
    Result<Transaction> logged = FromLog(id);
    if (!logged.ok()) return logged.status();
    if (IsCommitBound(logged->state)) return Status::Conflict("transaction " + id + " is committed");
    return logged;
  }
  std::unique_lock lock(e->mu);
  if (e->txn.state == TxnState::kActive && e->driver == Driver::kNone) {
    e->driver = Driver::kAbort;
    lock.unlock();
    return RunAbort(e, "aborted by client");
  }
  return AwaitOutcome(e, lock, Decision::kAbort);
}

void Coordinator::OnTimeout(const std::string& id) {
  std::shared_ptr<Entry> e = Find(id);
  if (!e) return;
  {
    std::lock_guard lock(e->mu);
    if (e->txn.state != TxnState::kActive || e->driver != Driver::kNone) return;
    e->driver = Driver::kAbort;
  }
  counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
  VLOG_INFO(kComponent, "txn " << id << ": active past its timeout; aborting");
  RunAbort(e, "timeout").status().IgnoreError();
}

Result<Transaction> Coordinator::RunAbort(const std::shared_ptr<Entry>& e, const std::string& reason) {
  {
    std::lock_guard lock(e->mu);
    e->txn.state = TxnState::kAborting;
    e->txn.reason = reason;
    e->txn.decided_at_ms = clock_->NowUnixMs();
    e->sends.assign(e->txn.participants.size(), SendState(options_));
    // Not forced: with no record, recovery and participants presume abort.
    WriteLog(*e, /*sync=*/false).IgnoreError();
  }
  Phase2Round(e, Decision::kAbort);
  std::lock_guard lock(e->mu);
  FinishDrive(e, TxnState::kAborted);
  return e->txn;
}

Status Coordinator::LogCommitDecision(Entry& e) {
  Status s = failpoint::Hit("coordinator.before_decision_log");
  if (s.ok()) s = WriteLog(e, /*sync=*/true);
  if (s.ok()) return s;
  // The commit record may or may not have reached the disk. A durable abort
  // written now supersedes it; until one is durable the outcome is unknown.
  std::string cause = s.message();
  if (TryDurableAbort(e, "decision log write failed: " + cause)) return Status::Unavailable(cause);
  e.log_in_doubt = true;
  return Status::InDoubt("decision log write failed and the outcome of " + e.txn.id +
                         " is unknown: " + cause);
}

bool Coordinator::TryDurableAbort(Entry& e, const std::string& reason) {
  e.txn.state = TxnState::kAborting;
  e.txn.reason = reason;
  if (WriteLog(e, /*sync=*/true).ok()) return true;
  e.txn.state = TxnState::kPreparing;
  e.txn.reason.clear();
  return false;
}

void Coordinator::RetryAbortDecision(const std::string& id) {
  std::shared_ptr<Entry> e = Find(id);
  if (!e || stopped_) return;
  {
    std::lock_guard lock(e->mu);
    if (!TryDurableAbort(*e, "decision log write failed")) {
      timers_.ScheduleAfter(options_.retry_max, [this, id] {
        drivers_.Submit([this, id] { RetryAbortDecision(id); });
      });
      return;
    }
    e->log_in_doubt = false;
  }
  Phase2Round(e, Decision::kAbort);
  std::lock_guard lock(e->mu);
  FinishDrive(e, TxnState::kAborted);
}

Result<Transaction> Coordinator::RunCommit(const std::shared_ptr<Entry>& e) {
  // Phase one: every participant prepares, in parallel.
  std::vector<ParticipantEntry> parts;
  Protocol protocol;
  std::string id;
  {
    std::lock_guard lock(e->mu);
    parts = e->txn.participants;
    protocol = e->txn.protocol;
    id = e->txn.id;
  }
  std::vector<std::string> urls;
  for (const auto& p : parts) urls.push_back(p.url);
  std::vector<PrepareOutcome> outcomes(parts.size());
  fanout_.ParallelFor(parts.size(), [&](size_t i) {
    outcomes[i] = client_.Prepare(parts[i].url, id, protocol, options_.self_url, urls);
  });

  std::unique_lock lock(e->mu);
  Transaction& txn = e->txn;
  std::string no_reason;
  for (size_t i = 0; i < parts.size(); ++i) {
    txn.participants[i].vote = outcomes[i].vote;
    if (outcomes[i].vote == Vote::kNo) {
      // A participant that voted no holds no prepared work, but one whose
      // prepare failed in flight might: it still gets the abort.
      if (outcomes[i].answered) {
        txn.participants[i].acked = true;
      } else {
        counters_.prepare_failures.fetch_add(1);
      }
      if (no_reason.empty()) no_reason = "participant " + parts[i].name + " " + outcomes[i].detail;
    } else if (outcomes[i].vote == Vote::kReadOnly) {
      txn.participants[i].acked = true;  // nothing to tell a read-only participant
    }
  }
  txn.decided_at_ms = clock_->NowUnixMs();
  e->sends.assign(txn.participants.size(), SendState(options_));

  if (!no_reason.empty()) {
    txn.state = TxnState::kAborting;
    txn.reason = no_reason;
    WriteLog(*e, /*sync=*/false).IgnoreError();
    lock.unlock();
    Phase2Round(e, Decision::kAbort);
    lock.lock();
    FinishDrive(e, TxnState::kAborted);
    return txn;
  }

  // Decision: all voted yes (or read-only).
  txn.state = protocol == Protocol::k2pc ? TxnState::kCommitting : TxnState::kPrecommitted;
  Status logged = LogCommitDecision(*e);
  if (!logged.ok()) {
    if (logged.code() == StatusCode::kInDoubt) {
      e->cv.notify_all();
      counters_.in_doubt_replies.fetch_add(1);
      // Keep trying to make an abort durable in the background.
      std::string id = txn.id;
      timers_.ScheduleAfter(options_.retry_initial, [this, id] {
        drivers_.Submit([this, id] { RetryAbortDecision(id); });
      });
      return logged;
    }
    // The abort replaced the commit record durably: abort everywhere.
    lock.unlock();
    Phase2Round(e, Decision::kAbort);
    lock.lock();
    FinishDrive(e, TxnState::kAborted);
    return txn;
  }
  // The decision is durable and visible to readers; nothing is sent yet.
  std::vector<size_t> yes;
  for (size_t i = 0; i < txn.participants.size(); ++i) {
    if (txn.participants[i].vote == Vote::kYes) yes.push_back(i);
  }
  lock.unlock();
  failpoint::Hit("coordinator.after_decision_log").IgnoreError();

  if (protocol == Protocol::k3pc) {
    // Precommit round: every yes voter records precommitted durably. Whatever
    // the acks, the logged precommit means the outcome is commit.
    std::vector<Status> acks(yes.size());
    fanout_.ParallelFor(yes.size(), [&](size_t k) {
      acks[k] = client_.Precommit(parts[yes[k]].url, id);
    });
    bool all_acked = std::all_of(acks.begin(), acks.end(), [](const Status& s) { return s.ok(); });
    if (all_acked) failpoint::Hit("coordinator.after_precommit_acked").IgnoreError();
    lock.lock();
    txn.state = TxnState::kCommitting;
    WriteLog(*e, /*sync=*/false).IgnoreError();
    lock.unlock();
  }
  Phase2Round(e, Decision::kCommit);
  lock.lock();
  FinishDrive(e, TxnState::kCommitted);
  return txn;
}

void Coordinator::Phase2Round(const std::shared_ptr<Entry>& e, Decision decision) {
  std::vector<size_t> pending;
  std::vector<std::string> urls;
  std::string id;
  {
    std::lock_guard lock(e->mu);
    id = e->txn.id;
    for (size_t i = 0; i < e->txn.participants.size(); ++i) {
      if (!e->txn.participants[i].acked) {
        pending.push_back(i);
        urls.push_back(e->txn.participants[i].url);
        e->sends[i].in_flight = true;
      }
    }
  }
  std::atomic<bool> first_sent{false};
  std::vector<Status> results(pending.size());
  fanout_.ParallelFor(pending.size(), [&](size_t k) {
    results[k] = decision == Decision::kCommit ? client_.Commit(urls[k], id) : client_.Abort(urls[k], id);
    if (!first_sent.exchange(true)) failpoint::Hit("coordinator.after_first_phase2_send").IgnoreError();
  });
  std::lock_guard lock(e->mu);
  for (size_t k = 0; k < pending.size(); ++k) {
    SendState& st = e->sends[pending[k]];
    st.in_flight = false;
    if (results[k].ok()) {
      e->txn.participants[pending[k]].acked = true;
    } else {
      VLOG_DEBUG(kComponent, "txn " << id << ": " << DecisionName(decision) << " to "
                                    << urls[k] << " failed: " << results[k].ToString());
    }
  }
}

void Coordinator::FinishDrive(const std::shared_ptr<Entry>& e, TxnState final_state) {
  e->txn.state = final_state;
  e->outcome_ready = true;
  e->driver = Driver::kNone;
  if (final_state == TxnState::kCommitted) counters_.committed.fetch_add(1);
  if (final_state == TxnState::kAborted) counters_.aborted.fetch_add(1);
  e->cv.notify_all();
  MaybeComplete(e);
  if (!e->txn.completed) {
    for (size_t i = 0; i < e->txn.participants.size(); ++i) {
      if (!e->txn.participants[i].acked && !e->sends[i].in_flight) ScheduleRetry(e, i);
    }
  }
}

void Coordinator::MaybeComplete(const std::shared_ptr<Entry>& e) {
  if (e->txn.completed || !e->outcome_ready || !e->txn.AllAcked()) return;
  e->txn.completed = true;
  e->txn.completed_at_ms = clock_->NowUnixMs();
  // Not forced: if lost, recovery re-sends the (idempotent) outcome.
  WriteLog(*e, /*sync=*/false).IgnoreError();
  ScheduleEviction(e);
}

void Coordinator::ScheduleEviction(const std::shared_ptr<Entry>& e) {
  if (e->evict_scheduled) return;
  e->evict_scheduled = true;
  std::string id = e->txn.id;
  std::string key = e->idempotency_key;
  timers_.ScheduleAfter(options_.keep_completed, [this, id, key] {
    std::lock_guard lock(map_mu_);
    txns_.erase(id);
    if (!key.empty()) idempotency_.erase(key);
  });
}

void Coordinator::ScheduleRetry(const std::shared_ptr<Entry>& e, size_t index) {
  SendState& st = e->sends[index];
  std::chrono::milliseconds delay = st.backoff.Next();
  uint64_t gen = st.gen;
  std::weak_ptr<Entry> weak = e;
  timers_.ScheduleAfter(delay, [this, weak, index, gen] {
    std::shared_ptr<Entry> en = weak.lock();
    if (!en) return;
    fanout_.Submit([this, en, index, gen] { SendOne(en, index, gen); });
  });
}

void Coordinator::SendOne(const std::shared_ptr<Entry>& e, size_t index, uint64_t gen) {
  std::string url, id;
  Decision decision;
  {
    std::lock_guard lock(e->mu);
    SendState& st = e->sends[index];
    if (st.gen != gen || st.in_flight || e->txn.participants[index].acked) return;
    st.in_flight = true;
    url = e->txn.participants[index].url;
    id = e->txn.id;
    decision = OutcomeOf(e->txn.state);
  }
  counters_.phase2_retries.fetch_add(1, std::memory_order_relaxed);
  Status s = decision == Decision::kCommit ? client_.Commit(url, id) : client_.Abort(url, id);
  std::lock_guard lock(e->mu);
  SendState& st = e->sends[index];
  st.in_flight = false;
  if (s.ok()) {
    e->txn.participants[index].acked = true;
    MaybeComplete(e);
    return;
  }
  if (st.gen == gen && !stopped_) ScheduleRetry(e, index);
}

// ---------------------------------------------------------------------------
// Recovery and operator hooks

Status Coordinator::Adopt(Transaction txn) {
  Decision d = txn.decision();
  if (d != Decision::kCommit && d != Decision::kAbort) {
    return Status::InvalidArgument("Adopt needs a commit or abort decision, got " +
                                   std::string(DecisionName(d)));
  }
  auto e = std::make_shared<Entry>();
  e->txn = std::move(txn);
  e->txn.state = d == Decision::kCommit ? TxnState::kCommitted : TxnState::kAborted;
  e->outcome_ready = true;
  e->sends.assign(e->txn.participants.size(), SendState(options_));
  Insert(e);
  std::lock_guard lock(e->mu);
  MaybeComplete(e);
  if (!e->txn.completed) {
    for (size_t i = 0; i < e->txn.participants.size(); ++i) {
      if (e->txn.participants[i].acked) continue;
      e->sends[i].in_flight = false;
      uint64_t gen = e->sends[i].gen;
      fanout_.Submit([this, e, i, gen] { SendOne(e, i, gen); });
    }
  }
  return Status::Ok();
}

int Coordinator::ResumePending() {
  std::vector<std::shared_ptr<Entry>> live;
  {
    std::lock_guard lock(map_mu_);
    for (const auto& [id, e] : txns_) live.push_back(e);
  }
  int resumed = 0;
  for (const auto& e : live) {
    std::lock_guard lock(e->mu);
    if (!e->outcome_ready || e->txn.completed) continue;
    bool any = false;
    for (size_t i = 0; i < e->txn.participants.size(); ++i) {
      if (e->txn.participants[i].acked || e->sends[i].in_flight) continue;
      SendState& st = e->sends[i];
      st.gen++;  // cancels the scheduled retry
      st.backoff.Reset();
      uint64_t gen = st.gen;
      fanout_.Submit([this, e, i, gen] { SendOne(e, i, gen); });
      any = true;
    }
    if (any) ++resumed;
  }
  return resumed;
}

Result<Transaction> Coordinator::Resolve(const std::string& id, Decision decision) {
  if (decision != Decision::kCommit && decision != Decision::kAbort) {
    return Status::InvalidArgument("decision must be commit or abort");
  }
  std::shared_ptr<Entry> e = Find(id);
  if (!e) {
    Result<Transaction> logged = FromLog(id);
    if (!logged.ok()) return logged.status();
    Decision have = OutcomeOf(logged->state);
    if (have != decision) {
      return Status::Conflict("transaction " + id + " has a logged decision: " +
                              std::string(DecisionName(have)));
    }
    return logged;
  }
  std::unique_lock lock(e->mu);
  if (e->outcome_ready || e->driver != Driver::kNone) {
    if (!e->outcome_ready) {
      Result<Transaction> r = AwaitOutcome(e, lock, decision);
      if (!r.ok()) return r;
    }
    Decision have = OutcomeOf(e->txn.state);
    if (have != decision) {
      return Status::Conflict("transaction " + id + " has a logged decision: " +
                              std::string(DecisionName(have)));
    }
    lock.unlock();
    ResumePending();
    lock.lock();
    return e->txn;
  }
  // Undecided and idle (active).
  if (decision == Decision::kAbort) {
    e->driver = Driver::kAbort;
    lock.unlock();
    return RunAbort(e, "aborted by operator");
  }
  e->driver = Driver::kCommit;
  e->txn.state = TxnState::kPreparing;
  lock.unlock();
  return RunCommit(e);
}

CoordinatorMetrics Coordinator::Metrics() const {
  CoordinatorMetrics m;
  m.created = counters_.created.load();
  m.committed = counters_.committed.load();
  m.aborted = counters_.aborted.load();
  m.in_doubt_replies = counters_.in_doubt_replies.load();
  m.timeouts = counters_.timeouts.load();
  m.prepare_failures = counters_.prepare_failures.load();
  m.phase2_retries = counters_.phase2_retries.load();
  m.log_sync_writes = counters_.log_sync_writes.load();
  m.log_write_errors = counters_.log_write_errors.load();
  std::vector<std::shared_ptr<Entry>> live;
  {
    std::lock_guard lock(map_mu_);
    for (const auto& [id, e] : txns_) live.push_back(e);
  }
  m.live = static_cast<int64_t>(live.size());
  for (const auto& e : live) {
    std::lock_guard lock(e->mu);
    if (!e->txn.completed) m.incomplete++;
  }
  return m;
}

}  // namespace verdict::coordinator
