// Resource: the data side of a participant. The participant SDK drives the
// protocol (HTTP endpoints, enlistment, recovery, termination); a Resource
// keeps the data and makes each protocol step durable.
//
// Durability contract (what every implementation must guarantee):
//   Prepare   returning kYes: the staged work AND the TxnRecord are durable, so
//             that after a crash ListInDoubt() returns the record and Commit()
//             can still apply the work. A repeated Prepare returns the same vote.
//   Precommit (3PC) the record's state kPrecommitted is durable before return.
//   Commit    the work is applied durably before return; idempotent; an
//             unknown txn id is OK (already finished or never prepared here).
//   Abort     the work is discarded; idempotent; unknown id is OK. Need not be
//             forced to disk: a prepared txn that reappears after a crash is
//             aborted again by recovery.
//   The outcome of a finished txn is remembered (GetState) for a while so that
//   3PC peers and duplicate messages get a precise answer.
//
// Thread-safety: every method may be called concurrently for different txns;
// the SDK serializes protocol calls for the same txn.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "verdict/common/status.h"

namespace verdict::participant {

enum class Vote { kYes, kNo, kReadOnly };
std::string_view VoteName(Vote vote);  // "yes" | "no" | "read_only"

// What the participant knows of one transaction.
enum class LocalState {
  kUnknown,       // never seen, or finished and forgotten
  kActive,        // work staged, not prepared: may be aborted unilaterally
  kPrepared,      // voted yes; in 2PC only the coordinator decides now
  kPrecommitted,  // 3PC: the coordinator's precommit was received and is durable
  kCommitted,
  kAborted,
};
std::string_view LocalStateName(LocalState state);  // "unknown", "active", ...
Result<LocalState> ParseLocalState(std::string_view name);

// Durable participant-side record of a prepared transaction.
struct TxnRecord {
  std::string txn_id;
  std::string protocol = "2pc";     // "2pc" | "3pc"
  std::string coordinator;          // coordinator base URL, from the prepare request
  std::vector<std::string> peers;   // 3PC: the other participants' URLs
  LocalState state = LocalState::kPrepared;
  int64_t prepared_at_ms = 0;       // wall clock, for the operator's eyes
};

class Resource {
 public:
  virtual ~Resource() = default;

  // Votes on `record.txn_id`: kYes after making work + record durable; kReadOnly
  // when the txn staged nothing here (nothing to keep, nothing left locked);
  // kNo when there is no staged work (e.g. lost in a crash before prepare), the
  // work was aborted, or it cannot be made durable.
  virtual Result<Vote> Prepare(const TxnRecord& record) = 0;
  virtual Status Precommit(const std::string& txn_id) = 0;
  virtual Status Commit(const std::string& txn_id) = 0;
  virtual Status Abort(const std::string& txn_id) = 0;

  // Every durable record in kPrepared or kPrecommitted: the in-doubt set that
  // participant recovery must finish.
  virtual Result<std::vector<TxnRecord>> ListInDoubt() = 0;

  virtual Result<LocalState> GetState(const std::string& txn_id) = 0;

  // Aborts work staged but never prepared whose txn began before
  // `cutoff_unix_ms`; returns the ids aborted (rule 4 of CONTRACT.md).
  virtual std::vector<std::string> AbortStaleActive(int64_t cutoff_unix_ms) = 0;

  // Forgets outcomes older than `cutoff_unix_ms` (bounded memory and disk).
  virtual void ForgetOutcomesBefore(int64_t cutoff_unix_ms) {}
};

}  // namespace verdict::participant
