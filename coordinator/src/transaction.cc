#include "verdict/coordinator/transaction.h"

#include "verdict/common/clock.h"

namespace verdict::coordinator {

using nlohmann::json;

ParticipantEntry* Transaction::FindParticipant(const std::string& name) {
  for (auto& p : participants) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool Transaction::AllAcked() const {
  for (const auto& p : participants) {
    if (!p.acked) return false;
  }
  return true;
}

json ToJson(const Transaction& txn) {
  json parts = json::array();
  for (const auto& p : txn.participants) {
    parts.push_back({{"name", p.name},
                     {"url", p.url},
                     {"vote", p.vote ? json(std::string(VoteName(*p.vote))) : json(nullptr)},
                     {"acked", p.acked}});
  }
  json out = {{"id", txn.id},
              {"protocol", std::string(ProtocolName(txn.protocol))},
              {"state", std::string(TxnStateName(txn.state))},
              {"timeout_ms", txn.timeout_ms},
              {"created_at", FormatRfc3339(txn.created_at_ms)},
              {"completed", txn.completed},
              {"participants", std::move(parts)}};
  if (!txn.reason.empty()) out["reason"] = txn.reason;
  if (txn.decided_at_ms != 0) out["decided_at"] = FormatRfc3339(txn.decided_at_ms);
  return out;
}

std::string EncodeRecord(const Transaction& txn) {
  json parts = json::array();
  for (const auto& p : txn.participants) {
    json e = {{"n", p.name}, {"u", p.url}, {"a", p.acked}};
    if (p.vote) e["v"] = std::string(VoteName(*p.vote));
    parts.push_back(std::move(e));
  }
  json body = {{"id", txn.id},
               {"p", std::string(ProtocolName(txn.protocol))},
               {"s", std::string(TxnStateName(txn.state))},
               {"to", txn.timeout_ms},
               {"ca", txn.created_at_ms},
               {"da", txn.decided_at_ms},
               {"fa", txn.completed_at_ms},
               {"c", txn.completed},
               {"ps", std::move(parts)}};
  if (!txn.reason.empty()) body["r"] = txn.reason;
  std::string out;
  out.push_back(static_cast<char>(kRecordFormatVersion));
  out += body.dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

Result<Transaction> DecodeRecord(std::string_view bytes) {
  if (bytes.empty()) return Status::InvalidArgument("empty log record");
  uint8_t version = static_cast<uint8_t>(bytes[0]);
  if (version != kRecordFormatVersion) {
    return Status::InvalidArgument("log record format version " + std::to_string(version) +
                                   " is not supported (expected " +
                                   std::to_string(kRecordFormatVersion) + ")");
  }
  json body = json::parse(bytes.substr(1), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return Status::InvalidArgument("log record body is not a JSON object");
  }
  try {
    Transaction txn;
    txn.id = body.at("id").get<std::string>();
    auto protocol = ParseProtocol(body.at("p").get<std::string>());
    auto state = ParseTxnState(body.at("s").get<std::string>());
    if (!protocol || !state) return Status::InvalidArgument("log record has a bad protocol/state");
    txn.protocol = *protocol;
    txn.state = *state;
    txn.timeout_ms = body.at("to").get<int64_t>();
    txn.created_at_ms = body.at("ca").get<int64_t>();
    txn.decided_at_ms = body.value("da", int64_t{0});
    txn.completed_at_ms = body.value("fa", int64_t{0});
    txn.completed = body.at("c").get<bool>();
    txn.reason = body.value("r", std::string());
    for (const auto& e : body.at("ps")) {
      ParticipantEntry p;
      p.name = e.at("n").get<std::string>();
      p.url = e.at("u").get<std::string>();
      p.acked = e.at("a").get<bool>();
      if (e.contains("v")) {
        auto v = ParseVote(e.at("v").get<std::string>());
        if (!v) return Status::InvalidArgument("log record has a bad vote");
        p.vote = *v;
      }
      txn.participants.push_back(std::move(p));
    }
    return txn;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("log record is malformed: ") + e.what());
  }
}

}  // namespace verdict::coordinator
