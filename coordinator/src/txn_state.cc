#include "verdict/coordinator/txn_state.h"

#include <array>
#include <utility>

namespace verdict::coordinator {
namespace {

template <typename E, size_t N>
std::optional<E> Lookup(const std::array<std::pair<E, std::string_view>, N>& table,
                        std::string_view s) {
  for (const auto& [e, name] : table) {
    if (name == s) return e;
  }
  return std::nullopt;
}

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& table, E e) {
  for (const auto& [v, name] : table) {
    if (v == e) return name;
  }
  return "unknown";
}

constexpr std::array<std::pair<Protocol, std::string_view>, 2> kProtocols{{
    {Protocol::k2pc, "2pc"},
    {Protocol::k3pc, "3pc"},
}};
constexpr std::array<std::pair<TxnState, std::string_view>, 7> kStates{{
    {TxnState::kActive, "active"},
    {TxnState::kPreparing, "preparing"},
    {TxnState::kPrecommitted, "precommitted"},
    {TxnState::kCommitting, "committing"},
    {TxnState::kCommitted, "committed"},
    {TxnState::kAborting, "aborting"},
    {TxnState::kAborted, "aborted"},
}};
constexpr std::array<std::pair<Decision, std::string_view>, 4> kDecisions{{
    {Decision::kNone, "none"},
    {Decision::kPrecommit, "precommit"},
    {Decision::kCommit, "commit"},
    {Decision::kAbort, "abort"},
}};
constexpr std::array<std::pair<Vote, std::string_view>, 3> kVotes{{
    {Vote::kYes, "yes"},
    {Vote::kNo, "no"},
    {Vote::kReadOnly, "read_only"},
}};

}  // namespace

std::string_view ProtocolName(Protocol p) { return NameOf(kProtocols, p); }
std::optional<Protocol> ParseProtocol(std::string_view s) { return Lookup(kProtocols, s); }
std::string_view TxnStateName(TxnState s) { return NameOf(kStates, s); }
std::optional<TxnState> ParseTxnState(std::string_view s) { return Lookup(kStates, s); }
std::string_view DecisionName(Decision d) { return NameOf(kDecisions, d); }
std::optional<Decision> ParseDecision(std::string_view s) { return Lookup(kDecisions, s); }
std::string_view VoteName(Vote v) { return NameOf(kVotes, v); }
std::optional<Vote> ParseVote(std::string_view s) { return Lookup(kVotes, s); }

bool IsLegalTransition(Protocol protocol, TxnState from, TxnState to) {
  using S = TxnState;
  switch (from) {
    case S::kActive:
      return to == S::kPreparing || to == S::kAborting;
    case S::kPreparing:
      if (to == S::kAborting) return true;
      return protocol == Protocol::k2pc ? to == S::kCommitting : to == S::kPrecommitted;
    case S::kPrecommitted:
      return protocol == Protocol::k3pc && to == S::kCommitting;
    case S::kCommitting:
      return to == S::kCommitted;
    case S::kAborting:
      return to == S::kAborted;
    case S::kCommitted:
    case S::kAborted:
      return false;
  }
  return false;
}

Decision DecisionOf(TxnState s) {
  switch (s) {
    case TxnState::kActive:
    case TxnState::kPreparing: return Decision::kNone;
    case TxnState::kPrecommitted: return Decision::kPrecommit;
    case TxnState::kCommitting:
    case TxnState::kCommitted: return Decision::kCommit;
    case TxnState::kAborting:
    case TxnState::kAborted: return Decision::kAbort;
  }
  return Decision::kNone;
}

std::string_view PublicDecision(TxnState s) {
  if (IsCommitBound(s)) return "commit";
  if (IsAbortBound(s)) return "abort";
  return "pending";
}

}  // namespace verdict::coordinator
