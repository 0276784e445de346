// ParticipantClient: the coordinator's side of the participant protocol
// (CONTRACT.md "Participant protocol"), over the HttpTransport seam.
// Thread-safe (stateless apart from the transport).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "verdict/common/status.h"
#include "verdict/common/transport.h"
#include "verdict/coordinator/txn_state.h"

namespace verdict::coordinator {

struct PrepareOutcome {
  Vote vote = Vote::kNo;
  // True when the participant answered with a vote; false when the exchange
  // failed (it may still have prepared, so it must hear the abort).
  bool answered = false;
  std::string detail;  // why it is no (failure, timeout, explicit vote)
};

class ParticipantClient {
 public:
  ParticipantClient(HttpTransport* transport, std::chrono::milliseconds prepare_timeout,
                    std::chrono::milliseconds phase2_timeout)
      : transport_(transport), prepare_timeout_(prepare_timeout), phase2_timeout_(phase2_timeout) {}

  // Asks `url` to prepare. A failed, timed-out or malformed exchange is a no.
  // `peers` lists every participant URL of the txn (3PC termination).
  PrepareOutcome Prepare(const std::string& url, const std::string& txn_id, Protocol protocol,
                         const std::string& coordinator_url, const std::vector<std::string>& peers);
  // OK only on HTTP 200; otherwise the caller retries.
  Status Precommit(const std::string& url, const std::string& txn_id);
  Status Commit(const std::string& url, const std::string& txn_id);
  Status Abort(const std::string& url, const std::string& txn_id);
  // The participant's local state name ("prepared", "aborted", ...), from GET {url}/txn-state.
  Result<std::string> QueryState(const std::string& url, const std::string& txn_id);

 private:
  Status SendPhaseMessage(const std::string& url, const char* verb, const std::string& txn_id,
                          std::chrono::milliseconds timeout);

  HttpTransport* transport_;
  std::chrono::milliseconds prepare_timeout_;
  std::chrono::milliseconds phase2_timeout_;
};

}  // namespace verdict::coordinator
