// The coordinator's protocol state machine, for 2PC and 3PC, in one place.
//
//                       enlist (active only)
//                        +----+
//                        v    |
//   create --------> [ACTIVE] +---- abort() / timeout ----------------+
//                        |                                            |
//                     commit()                                        |
//                        v                                            v
//                   [PREPARING] -- any vote no / prepare failed --> [ABORTING]
//                        |                                            |
//                   all yes|read_only                                 | first abort round sent
//            2PC: log COMMIT (fsync)         3PC: log PRECOMMIT (fsync)|
//                        |                        v                   v
//                        |                 [PRECOMMITTED]          [ABORTED]
//                        |                        | precommit round done
//                        |                        | log COMMIT (no fsync needed)
//                        v                        v
//                   [COMMITTING] <----------------+
//                        | first commit round sent
//                        v
//                   [COMMITTED]
//
//   `completed` turns true (and is logged, no fsync) when every participant
//   that must hear the outcome has acknowledged it; until then phase two is
//   retried with capped exponential backoff, across restarts.
//
// What is durable in each state (see docs/log-format.md for the bytes):
//   ACTIVE        record written without fsync (may be lost: presumed abort).
//   PREPARING     nothing new: a crash here recovers as abort (no decision).
//   PRECOMMITTED  decision=precommit, fsynced before any precommit is sent.
//                 Recovery finishes it as commit.
//   COMMITTING/   decision=commit, fsynced before any commit is sent (2PC).
//   COMMITTED
//   ABORTING/     decision=abort, written without fsync: losing it is
//   ABORTED       harmless because no record means abort (presumed abort).
//
// Thread-safety: these are pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace verdict::coordinator {

enum class Protocol { k2pc, k3pc };

enum class TxnState {
  kActive,
  kPreparing,
  kPrecommitted,
  kCommitting,
  kCommitted,
  kAborting,
  kAborted,
};

// The durable decision, which is what recovery acts on.
enum class Decision { kNone, kPrecommit, kCommit, kAbort };

enum class Vote { kYes, kNo, kReadOnly };

std::string_view ProtocolName(Protocol p);
std::optional<Protocol> ParseProtocol(std::string_view s);
std::string_view TxnStateName(TxnState s);
std::optional<TxnState> ParseTxnState(std::string_view s);
std::string_view DecisionName(Decision d);
std::optional<Decision> ParseDecision(std::string_view s);
std::string_view VoteName(Vote v);
std::optional<Vote> ParseVote(std::string_view s);

// True when `from -> to` is an edge of the diagram above.
bool IsLegalTransition(Protocol protocol, TxnState from, TxnState to);

// The decision a state implies (kNone for active/preparing).
Decision DecisionOf(TxnState s);

// True once the outcome is fixed as commit (a logged precommit counts).
inline bool IsCommitBound(TxnState s) {
  return s == TxnState::kPrecommitted || s == TxnState::kCommitting || s == TxnState::kCommitted;
}
inline bool IsAbortBound(TxnState s) {
  return s == TxnState::kAborting || s == TxnState::kAborted;
}

// What GET /v1/transactions/{id}/decision answers: "commit", "abort" or "pending".
std::string_view PublicDecision(TxnState s);

}  // namespace verdict::coordinator
