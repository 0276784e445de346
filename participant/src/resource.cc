// Names of the participant-side enums (resource.h).
#include "verdict/participant/resource.h"

namespace verdict::participant {

std::string_view VoteName(Vote vote) {
  switch (vote) {
    case Vote::kYes: return "yes";
    case Vote::kNo: return "no";
    case Vote::kReadOnly: return "read_only";
  }
  return "no";
}

std::string_view LocalStateName(LocalState state) {
  switch (state) {
    case LocalState::kUnknown: return "unknown";
    case LocalState::kActive: return "active";
    case LocalState::kPrepared: return "prepared";
    case LocalState::kPrecommitted: return "precommitted";
    case LocalState::kCommitted: return "committed";
    case LocalState::kAborted: return "aborted";
  }
  return "unknown";
}

Result<LocalState> ParseLocalState(std::string_view name) {
  for (LocalState s : {LocalState::kUnknown, LocalState::kActive, LocalState::kPrepared,
                       LocalState::kPrecommitted, LocalState::kCommitted, LocalState::kAborted}) {
    if (LocalStateName(s) == name) return s;
  }
  return Status::InvalidArgument("unknown transaction state '" + std::string(name) + "'");
}

}  // namespace verdict::participant
