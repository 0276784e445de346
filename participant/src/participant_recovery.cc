// Participant recovery: finishing in-doubt (prepared / precommitted) txns, and
// the background sweeper that also aborts stale unprepared work (rule 4) and
// forgets old outcomes.
//
// A prepared txn is finished only on a decision: the coordinator's
// (GET /v1/transactions/{id}/decision), or in 3PC, when the coordinator cannot
// be reached, the termination rule over the peers' local states
// (ResolveByPeers). A pending or missing answer is asked again after a capped
// exponential backoff kept per txn.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "participant_impl.h"
#include "verdict/common/logging.h"

namespace verdict::participant {
namespace {

constexpr char kComponent[] = "participant";
constexpr std::chrono::minutes kForgetEvery{1};

std::string_view DecisionName(Decision d) {
  switch (d) {
    case Decision::kCommit: return "commit";
    case Decision::kAbort: return "abort";
    case Decision::kPending: return "pending";
    case Decision::kUnreachable: return "unreachable";
    case Decision::kUndecided: return "undecided";
  }
  return "?";
}

}  // namespace

Status Participant::Impl::Start() {
  {
    std::lock_guard lock(stop_mu_);
    if (started_) return Status::Conflict("participant already started");
    started_ = true;
    stopping_ = false;
  }
  // Fail fast when the resource cannot list its in-doubt set.
  Result<std::vector<TxnRecord>> in_doubt = resource_->ListInDoubt();
  if (!in_doubt.ok()) return in_doubt.status();
  if (!in_doubt->empty()) {
    VLOG_INFO(kComponent, "recovering " << in_doubt->size() << " in-doubt transaction(s)");
  }
  int finished = RecoveryPass(/*force=*/true);
  if (finished > 0) VLOG_INFO(kComponent, "recovery finished " << finished << " transaction(s)");
  sweeper_ = std::thread([this] { SweeperLoop(); });
  return Status::Ok();
}

void Participant::Impl::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

int Participant::Impl::RecoverOnce() { return RecoveryPass(/*force=*/true); }

void Participant::Impl::SweeperLoop() {
  // Tick often enough for both deadlines, but not busily.
  auto tick = std::min(options_.active_timeout, options_.in_doubt_query_after) / 4;
  tick = std::clamp(tick, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  for (;;) {
    {
      std::unique_lock lock(stop_mu_);
      if (stop_cv_.wait_for(lock, tick, [this] { return stopping_; })) return;
    }
    SweepOnce();
  }
}

void Participant::Impl::SweepOnce() {
  int64_t now_ms = clock_->NowUnixMs();
  for (const std::string& id : resource_->AbortStaleActive(now_ms - options_.active_timeout.count())) {
    VLOG_INFO(kComponent, "aborted " << id << ": active longer than "
                                     << options_.active_timeout.count() << "ms without prepare");
    ForgetEnlisted(id);
  }
  if (now_ms - last_forget_ms_ >= std::chrono::milliseconds(kForgetEvery).count()) {
    last_forget_ms_ = now_ms;
    resource_->ForgetOutcomesBefore(now_ms - options_.outcome_retention.count());
  }
  RecoveryPass(/*force=*/false);
}

int Participant::Impl::RecoveryPass(bool force) {
  std::lock_guard pass_lock(recovery_mu_);
  Result<std::vector<TxnRecord>> listed = resource_->ListInDoubt();
  if (!listed.ok()) {
    VLOG_WARN(kComponent, "listing in-doubt transactions: " << listed.status().ToString());
    return 0;
  }
  const int64_t now_ms = clock_->NowUnixMs();
  const Clock::SteadyTime now = clock_->SteadyNow();

  // Drop trackers of txns finished by a phase-two message meanwhile.
  std::unordered_set<std::string> present;
  for (const TxnRecord& r : *listed) present.insert(r.txn_id);
  for (auto it = in_doubt_.begin(); it != in_doubt_.end();) {
    it = present.count(it->first) ? std::next(it) : in_doubt_.erase(it);
  }

  std::vector<const TxnRecord*> due;
  for (const TxnRecord& r : *listed) {
    auto [it, inserted] = in_doubt_.try_emplace(
        r.txn_id, InDoubt{Backoff(options_.query_backoff_initial, options_.query_backoff_max), now});
    if (force) {
      due.push_back(&r);
      continue;
    }
    if (now_ms - r.prepared_at_ms < options_.in_doubt_query_after.count()) continue;
    if (it->second.next_attempt > now) continue;
    due.push_back(&r);
  }
  if (due.empty()) return 0;

  std::vector<char> finished(due.size(), 0);
  recovery_pool_.ParallelFor(due.size(), [&](size_t i) { finished[i] = Resolve(*due[i]) ? 1 : 0; });

  int count = 0;
  const Clock::SteadyTime after = clock_->SteadyNow();
  for (size_t i = 0; i < due.size(); ++i) {
    if (finished[i]) {
      in_doubt_.erase(due[i]->txn_id);
      ++count;
    } else {
      InDoubt& d = in_doubt_.at(due[i]->txn_id);
      d.next_attempt = after + d.backoff.Next();
    }
  }
  return count;
}

bool Participant::Impl::Resolve(const TxnRecord& record) {
  Decision decision = AskCoordinator(record);
  // Termination only once the coordinator has had in_doubt_query_after to
  // finish on its own (a restarting coordinator is not a dead one).
  if (decision == Decision::kUnreachable &&
      clock_->NowUnixMs() - record.prepared_at_ms >= options_.in_doubt_query_after.count()) {
    decision = ResolveByPeers(record);
  }
  if (decision != Decision::kCommit && decision != Decision::kAbort) {
    VLOG_DEBUG(kComponent, "in-doubt " << record.txn_id << ": " << DecisionName(decision));
    return false;
  }
  KeyedMutex::Guard guard = txn_locks_.Lock(record.txn_id);
  Status s = decision == Decision::kCommit ? ApplyCommitLocked(record.txn_id)
                                           : ApplyAbortLocked(record.txn_id);
  if (!s.ok()) {
    VLOG_WARN(kComponent, "recovery could not " << DecisionName(decision) << " " << record.txn_id
                                                << ": " << s.ToString());
    return false;
  }
  VLOG_INFO(kComponent, "recovery: " << DecisionName(decision) << " " << record.txn_id);
  return true;
}

Decision Participant::Impl::AskCoordinator(const TxnRecord& record) {
  const std::string& base = record.coordinator.empty() ? options_.coordinator_url : record.coordinator;
  if (base.empty()) return Decision::kUnreachable;
  std::string url = JoinUrl(base, "/v1/transactions/" + record.txn_id + "/decision");
  Result<HttpResponse> res = transport_->Get(url, options_.request_timeout, AuthHeaders());
  if (!res.ok()) {
    VLOG_DEBUG(kComponent, "decision query for " << record.txn_id << ": " << res.status().ToString());
    return Decision::kUnreachable;
  }
  if (res->status != 200) {
    // Reachable but unable to answer (log down, auth): ask again later.
    VLOG_WARN(kComponent, "decision query for " << record.txn_id << " answered HTTP " << res->status);
    return Decision::kPending;
  }
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("decision") || !j["decision"].is_string()) {
    VLOG_WARN(kComponent, "decision query for " << record.txn_id << ": malformed reply");
    return Decision::kPending;
  }
  const std::string d = j["decision"].get<std::string>();
  if (d == "commit") return Decision::kCommit;
  if (d == "abort") return Decision::kAbort;
  return Decision::kPending;
}

// 3PC termination, used only while the coordinator cannot be reached:
//   - self precommitted                       -> commit (the coordinator
//     decided commit before sending precommit, and no participant aborts
//     once anyone is precommitted);
//   - any peer committed or precommitted      -> commit;
//   - any peer aborted                        -> abort;
//   - every peer answered, none of the above  -> abort (self is only prepared
//     and nobody is precommitted, so the coordinator has not sent a precommit);
//   - otherwise (a peer unreachable, or the peer list unknown) -> undecided.
// 2PC never decides here: a prepared 2PC participant waits for the coordinator.
Decision Participant::Impl::ResolveByPeers(const TxnRecord& record) {
  if (record.protocol != "3pc") return Decision::kUndecided;
  if (record.state == LocalState::kPrecommitted) return Decision::kCommit;
  if (record.peers.empty()) return Decision::kUndecided;

  std::vector<std::optional<LocalState>> states(record.peers.size());
  for (size_t i = 0; i < record.peers.size(); ++i) {
    std::string url = JoinUrl(record.peers[i], "/txn-state?txn_id=" + record.txn_id);
    Result<HttpResponse> res = transport_->Get(url, options_.request_timeout);
    if (!res.ok() || res->status != 200) continue;
    nlohmann::json j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("state") || !j["state"].is_string()) continue;
    Result<LocalState> st = ParseLocalState(j["state"].get<std::string>());
    if (st.ok()) states[i] = *st;
  }
  bool all_answered = true;
  bool any_aborted = false;
  for (const std::optional<LocalState>& st : states) {
    if (!st) {
      all_answered = false;
      continue;
    }
    if (*st == LocalState::kCommitted || *st == LocalState::kPrecommitted) return Decision::kCommit;
    if (*st == LocalState::kAborted) any_aborted = true;
  }
  if (any_aborted || all_answered) {
    VLOG_INFO(kComponent, "3pc termination for " << record.txn_id << ": abort ("
                                                 << (any_aborted ? "a peer aborted"
                                                                 : "no peer precommitted")
                                                 << ")");
    return Decision::kAbort;
  }
  return Decision::kUndecided;
}

}  // namespace verdict::participant
