// Participant::Impl, shared by participant.cc (construction, enlistment),
// participant_handlers.cc (protocol endpoints) and participant_recovery.cc
// (in-doubt resolution, sweeper thread). Private to the participant library.
//
// Locking:
//   txn_locks_    one mutex per txn id; held around every protocol step that
//                 changes a txn's fate (prepare, precommit, commit, abort,
//                 AbortUnprepared, recovery applying a decision). Never held
//                 across a call to the coordinator or a peer.
//   enlist_mu_    guards enlisted_.
//   recovery_mu_  one recovery pass at a time; guards in_doubt_.
//   stop_mu_      guards stopping_ and the sweeper's wake-up.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "keyed_mutex.h"
#include "verdict/common/backoff.h"
#include "verdict/common/clock.h"
#include "verdict/common/status.h"
#include "verdict/common/thread_pool.h"
#include "verdict/common/transport.h"
#include "verdict/participant/participant.h"
#include "verdict/participant/resource.h"

namespace verdict::participant {

// What recovery learned about one in-doubt txn.
enum class Decision { kCommit, kAbort, kPending, kUnreachable, kUndecided };

class Participant::Impl {
 public:
  Impl(ParticipantOptions options, Resource* resource, HttpTransport* transport, Clock* clock);
  ~Impl();

  // participant.cc
  Status Enlist(const std::string& txn_id);
  Status AbortUnprepared(const std::string& txn_id);
  void ForgetEnlisted(const std::string& txn_id);
  std::vector<std::pair<std::string, std::string>> AuthHeaders() const;

  // participant_handlers.cc
  void Mount(httplib::Server& server);
  void HandlePrepare(const httplib::Request& req, httplib::Response& res);
  void HandlePrecommit(const httplib::Request& req, httplib::Response& res);
  void HandleCommit(const httplib::Request& req, httplib::Response& res);
  void HandleAbort(const httplib::Request& req, httplib::Response& res);
  void HandleTxnState(const httplib::Request& req, httplib::Response& res);
  // Applies a decided outcome with its failpoints; the caller holds the txn's lock.
  Status ApplyCommitLocked(const std::string& txn_id);
  Status ApplyAbortLocked(const std::string& txn_id);

  // participant_recovery.cc
  Status Start();
  void Stop();
  int RecoverOnce();
  // One pass over the in-doubt set. `force`: ask about every txn now, ignoring
  // age and backoff. Returns how many txns were finished.
  int RecoveryPass(bool force);
  // Asks the coordinator and, when it cannot be reached, the peers; applies a
  // commit/abort. True when the txn is finished here.
  bool Resolve(const TxnRecord& record);
  Decision AskCoordinator(const TxnRecord& record);
  // 3PC termination when the coordinator is unreachable (see the .cc for the
  // rule). 2PC: always kUndecided (a prepared 2PC participant never decides alone).
  Decision ResolveByPeers(const TxnRecord& record);
  void SweeperLoop();
  void SweepOnce();

  const ParticipantOptions options_;
  Resource* const resource_;
  HttpTransport* const transport_;
  Clock* const clock_;

  KeyedMutex txn_locks_;

  std::mutex enlist_mu_;
  std::unordered_set<std::string> enlisted_;

  struct InDoubt {
    Backoff backoff;
    Clock::SteadyTime next_attempt;
  };
  std::mutex recovery_mu_;
  std::unordered_map<std::string, InDoubt> in_doubt_;
  ThreadPool recovery_pool_{8};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread sweeper_;
  int64_t last_forget_ms_ = 0;
};

}  // namespace verdict::participant
