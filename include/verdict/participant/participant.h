// Participant SDK: turns a service into a verdict participant.
//
//   LevelDbResource (or PostgresResource) holds the data;
//   Participant mounts the participant protocol on the service's httplib
//   server, enlists with the coordinator on first work under a txn id, and
//   finishes in-doubt transactions after a crash.
//
// Business handler pattern (rule 1 of CONTRACT.md):
//   std::string txn = req.get_header_value(kTxnIdHeader);
//   ... stage work in the resource under txn ...
//   Status s = participant.Enlist(txn);
//   if (!s.ok()) { participant.AbortUnprepared(txn).IgnoreError(); reply 409 (or 503); }
//
// Endpoints mounted at the service root (CONTRACT.md "Participant protocol"):
//   POST /prepare, /precommit, /commit, /abort; GET /txn-state?txn_id=ID (3PC
//   termination: peers ask each other's local state).
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "verdict/common/clock.h"
#include "verdict/common/status.h"
#include "verdict/common/transport.h"
#include "verdict/participant/resource.h"

namespace verdict::participant {

inline constexpr char kTxnIdHeader[] = "Verdict-Txn-Id";

struct ParticipantOptions {
  std::string name;             // unique among a transaction's participants
  std::string self_url;         // where the coordinator reaches this participant
  std::string coordinator_url;  // default coordinator for enlistment and queries
  std::string api_token;        // bearer token for the coordinator's /v1 API ("" = none)
  // Work staged but never prepared is aborted after this long (rule 4).
  std::chrono::milliseconds active_timeout{60'000};
  // A prepared txn with no decision after this long asks the coordinator.
  std::chrono::milliseconds in_doubt_query_after{5'000};
  // Backoff bounds for decision queries while the coordinator is unreachable.
  std::chrono::milliseconds query_backoff_initial{100};
  std::chrono::milliseconds query_backoff_max{5'000};
  std::chrono::milliseconds request_timeout{3'000};
  // Outcomes of finished txns are remembered this long (Resource::ForgetOutcomesBefore).
  std::chrono::milliseconds outcome_retention{24 * 3600 * 1000};
};

class Participant {
 public:
  // `resource`, `transport` and `clock` must outlive the Participant.
  Participant(ParticipantOptions options, Resource* resource, HttpTransport* transport,
              Clock* clock);
  ~Participant();
  Participant(const Participant&) = delete;
  Participant& operator=(const Participant&) = delete;

  void Mount(httplib::Server& server);

  // Enlists this participant in `txn_id` with the coordinator, once per txn
  // (later calls return at once). Conflict when the coordinator refuses (the
  // txn is no longer active or unknown); Unavailable when it cannot be reached.
  Status Enlist(const std::string& txn_id);

  // Undoes the work of `txn_id` here unless it is already prepared (then the
  // coordinator owns its fate and this returns Conflict). Serialized with the
  // protocol calls for the txn, so it never aborts behind a yes vote. Business
  // handlers call it when they give up on a txn (enlistment failed, or the
  // work hit a conflict that dooms the txn). Unknown ids are remembered as
  // aborted by the resource, so the txn then votes no.
  Status AbortUnprepared(const std::string& txn_id);

  // Starts recovery of in-doubt transactions and the background sweeper
  // (stale active work, in-doubt queries). Call after Mount, before serving.
  Status Start();
  // Stops background work. Idempotent; the destructor calls it.
  void Stop();

  // Runs one recovery pass now: asks the coordinator for every in-doubt txn
  // and applies decided outcomes. Returns how many were finished.
  int RecoverOnce();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace verdict::participant
