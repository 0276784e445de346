// On-disk encoding of LevelDbResource (key layout in leveldb_resource.h).
//
// Values are versioned: the first byte is the format version (kFormatVersion).
// Fields are little-endian fixed-width integers and length-prefixed byte
// strings, so keys and values may hold arbitrary bytes.
//
//   prepared record (p/<txn>):
//     u8 version=1 | str txn_id | str protocol | str coordinator |
//     u32 n_peers, str peer... | u8 state (LocalState) | i64 prepared_at_ms |
//     u32 n_writes, (str key | u8 has_value | [str value])...
//   outcome record (o/<txn>):
//     u8 version=1 | u8 state (kCommitted or kAborted) | i64 at_ms
//   str = u32 length | bytes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "verdict/common/status.h"
#include "verdict/participant/resource.h"

namespace verdict::participant::leveldb_codec {

inline constexpr uint8_t kFormatVersion = 1;

// Staged writes of one txn: key -> new value (nullopt = delete).
using Writes = std::map<std::string, std::optional<std::string>>;

// Key prefixes. Everything the resource stores lives under one of these.
inline constexpr std::string_view kDataPrefix = "d/";
inline constexpr std::string_view kPreparedPrefix = "p/";
inline constexpr std::string_view kOutcomePrefix = "o/";
inline constexpr std::string_view kOutcomeIndexPrefix = "t/";
inline constexpr std::string_view kFormatKey = "m/format";

std::string DataKey(std::string_view key);
std::string PreparedKey(std::string_view txn_id);
std::string OutcomeKey(std::string_view txn_id);
// "t/<20-digit zero-padded at_ms>/<txn_id>": outcomes ordered by age.
std::string OutcomeIndexKey(int64_t at_ms, std::string_view txn_id);
// Parses an outcome index key; false when it is malformed.
bool ParseOutcomeIndexKey(std::string_view key, int64_t* at_ms, std::string* txn_id);

std::string EncodePrepared(const TxnRecord& record, const Writes& writes);
Status DecodePrepared(std::string_view data, TxnRecord* record, Writes* writes);

struct Outcome {
  LocalState state = LocalState::kUnknown;
  int64_t at_ms = 0;
};
std::string EncodeOutcome(const Outcome& outcome);
Result<Outcome> DecodeOutcome(std::string_view data);

}  // namespace verdict::participant::leveldb_codec
