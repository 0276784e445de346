#include "leveldb_codec.h"

#include <cstdio>
#include <cstring>

namespace verdict::participant::leveldb_codec {
namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutI64(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Bounds-checked reader over an encoded value; every Get* fails (returns false)
// once the input is exhausted.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool GetU8(uint8_t* v) {
    if (data_.size() < 1) return false;
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool GetU32(uint32_t* v) {
    if (data_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(static_cast<uint8_t>(data_[i])) << (8 * i);
    data_.remove_prefix(4);
    return true;
  }
  bool GetI64(int64_t* v) {
    if (data_.size() < 8) return false;
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u |= static_cast<uint64_t>(static_cast<uint8_t>(data_[i])) << (8 * i);
    *v = static_cast<int64_t>(u);
    data_.remove_prefix(8);
    return true;
  }
  bool GetStr(std::string* s) {
    uint32_t n;
    if (!GetU32(&n) || data_.size() < n) return false;
    s->assign(data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  bool done() const { return data_.empty(); }

 private:
  std::string_view data_;
};

bool ValidState(uint8_t s) { return s <= static_cast<uint8_t>(LocalState::kAborted); }

}  // namespace

std::string DataKey(std::string_view key) { return std::string(kDataPrefix) + std::string(key); }
std::string PreparedKey(std::string_view txn_id) {
  return std::string(kPreparedPrefix) + std::string(txn_id);
}
std::string OutcomeKey(std::string_view txn_id) {
  return std::string(kOutcomePrefix) + std::string(txn_id);
}

std::string OutcomeIndexKey(int64_t at_ms, std::string_view txn_id) {
  char digits[24];
  snprintf(digits, sizeof(digits), "%020lld", static_cast<long long>(at_ms < 0 ? 0 : at_ms));
  return std::string(kOutcomeIndexPrefix) + digits + "/" + std::string(txn_id);
}

bool ParseOutcomeIndexKey(std::string_view key, int64_t* at_ms, std::string* txn_id) {
  if (key.substr(0, kOutcomeIndexPrefix.size()) != kOutcomeIndexPrefix) return false;
  key.remove_prefix(kOutcomeIndexPrefix.size());
  if (key.size() < 22 || key[20] != '/') return false;
  int64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (key[i] < '0' || key[i] > '9') return false;
    v = v * 10 + (key[i] - '0');
  }
  *at_ms = v;
  txn_id->assign(key.substr(21));
  return true;
}

std::string EncodePrepared(const TxnRecord& record, const Writes& writes) {
  std::string out;
  out.push_back(static_cast<char>(kFormatVersion));
  PutStr(&out, record.txn_id);
  PutStr(&out, record.protocol);
  PutStr(&out, record.coordinator);
  PutU32(&out, static_cast<uint32_t>(record.peers.size()));
  for (const std::string& p : record.peers) PutStr(&out, p);
  out.push_back(static_cast<char>(record.state));
  PutI64(&out, record.prepared_at_ms);
  PutU32(&out, static_cast<uint32_t>(writes.size()));
  for (const auto& [key, value] : writes) {
    PutStr(&out, key);
    out.push_back(value.has_value() ? 1 : 0);
    if (value.has_value()) PutStr(&out, *value);
  }
  return out;
}

Status DecodePrepared(std::string_view data, TxnRecord* record, Writes* writes) {
  Reader r(data);
  uint8_t version = 0;
  if (!r.GetU8(&version)) return Status::Internal("prepared record is empty");
  if (version != kFormatVersion) {
    return Status::Internal("prepared record has unsupported format version " +
                            std::to_string(version));
  }
  TxnRecord rec;
  uint32_t n_peers = 0;
  if (!r.GetStr(&rec.txn_id) || !r.GetStr(&rec.protocol) || !r.GetStr(&rec.coordinator) ||
      !r.GetU32(&n_peers)) {
    return Status::Internal("prepared record is truncated");
  }
  for (uint32_t i = 0; i < n_peers; ++i) {
    std::string peer;
    if (!r.GetStr(&peer)) return Status::Internal("prepared record is truncated (peers)");
    rec.peers.push_back(std::move(peer));
  }
  uint8_t state = 0;
  uint32_t n_writes = 0;
  if (!r.GetU8(&state) || !ValidState(state) || !r.GetI64(&rec.prepared_at_ms) ||
      !r.GetU32(&n_writes)) {
    return Status::Internal("prepared record is truncated or has a bad state");
  }
  rec.state = static_cast<LocalState>(state);
  Writes ws;
  for (uint32_t i = 0; i < n_writes; ++i) {
    std::string key;
    uint8_t has_value = 0;
    if (!r.GetStr(&key) || !r.GetU8(&has_value) || has_value > 1) {
      return Status::Internal("prepared record is truncated (writes)");
    }
    std::optional<std::string> value;
    if (has_value == 1) {
      std::string v;
      if (!r.GetStr(&v)) return Status::Internal("prepared record is truncated (value)");
      value = std::move(v);
    }
    ws[std::move(key)] = std::move(value);
  }
  if (!r.done()) return Status::Internal("prepared record has trailing bytes");
  *record = std::move(rec);
  *writes = std::move(ws);
  return Status::Ok();
}

std::string EncodeOutcome(const Outcome& outcome) {
  std::string out;
  out.push_back(static_cast<char>(kFormatVersion));
  out.push_back(static_cast<char>(outcome.state));
  PutI64(&out, outcome.at_ms);
  return out;
}

Result<Outcome> DecodeOutcome(std::string_view data) {
  Reader r(data);
  uint8_t version = 0, state = 0;
  Outcome o;
  if (!r.GetU8(&version) || version != kFormatVersion) {
    return Status::Internal("outcome record has an unsupported format version");
  }
  if (!r.GetU8(&state) || !r.GetI64(&o.at_ms) || !r.done()) {
    return Status::Internal("outcome record is malformed");
  }
  o.state = static_cast<LocalState>(state);
  if (o.state != LocalState::kCommitted && o.state != LocalState::kAborted) {
    return Status::Internal("outcome record has state " + std::string(LocalStateName(o.state)));
  }
  return o;
}

}  // namespace verdict::participant::leveldb_codec
