// The coordinator's record of one transaction: what the decision log stores,
// what recovery reloads, and what the API renders as the contract's
// `Transaction` JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "verdict/common/status.h"
#include "verdict/coordinator/txn_state.h"

namespace verdict::coordinator {

struct ParticipantEntry {
  std::string name;
  std::string url;
  std::optional<Vote> vote;
  bool acked = false;  // acknowledged the outcome (or needs no outcome message)
};

struct Transaction {
  std::string id;
  Protocol protocol = Protocol::k2pc;
  TxnState state = TxnState::kActive;
  std::string reason;  // why it aborted; empty otherwise
  int64_t timeout_ms = 0;
  int64_t created_at_ms = 0;
  int64_t decided_at_ms = 0;    // 0 until a commit/abort decision
  int64_t completed_at_ms = 0;  // 0 until every participant acknowledged
  bool completed = false;
  std::vector<ParticipantEntry> participants;

  Decision decision() const { return DecisionOf(state); }
  ParticipantEntry* FindParticipant(const std::string& name);
  bool AllAcked() const;
};

// The contract's `Transaction` JSON.
nlohmann::json ToJson(const Transaction& txn);

// Decision-log record: one format-version byte, then the record body as
// compact JSON (see docs/log-format.md). Decoding rejects unknown versions.
inline constexpr uint8_t kRecordFormatVersion = 1;
std::string EncodeRecord(const Transaction& txn);
Result<Transaction> DecodeRecord(std::string_view bytes);

}  // namespace verdict::coordinator
