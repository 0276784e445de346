#include "verdict/coordinator/participant_client.h"

#include <nlohmann/json.hpp>

#include "verdict/common/failpoint.h"

namespace verdict::coordinator {

using nlohmann::json;

PrepareOutcome ParticipantClient::Prepare(const std::string& url, const std::string& txn_id,
                                          Protocol protocol, const std::string& coordinator_url,
                                          const std::vector<std::string>& peers) {
  Status fp = failpoint::Hit("coordinator.before_prepare_send");
  if (!fp.ok()) return {Vote::kNo, false, fp.message()};
  json body = {{"txn_id", txn_id},
               {"protocol", std::string(ProtocolName(protocol))},
               {"coordinator", coordinator_url},
               {"participants", peers}};
  Result<HttpResponse> res = transport_->Post(JoinUrl(url, "/prepare"), body.dump(), prepare_timeout_);
  if (!res.ok()) return {Vote::kNo, false, "prepare failed: " + res.status().message()};
  if (res->status != 200) {
    return {Vote::kNo, false, "prepare answered HTTP " + std::to_string(res->status)};
  }
  json reply = json::parse(res->body, nullptr, false);
  if (!reply.is_object() || !reply.contains("vote") || !reply["vote"].is_string()) {
    return {Vote::kNo, false, "prepare reply has no vote"};
  }
  std::optional<Vote> vote = ParseVote(reply["vote"].get<std::string>());
  if (!vote) return {Vote::kNo, false, "prepare reply has an unknown vote"};
  return {*vote, true, *vote == Vote::kNo ? "voted no" : ""};
}

Status ParticipantClient::SendPhaseMessage(const std::string& url, const char* verb,
                                           const std::string& txn_id,
                                           std::chrono::milliseconds timeout) {
  VERDICT_RETURN_IF_ERROR(failpoint::Hit(std::string("coordinator.before_") + verb + "_send"));
  json body = {{"txn_id", txn_id}};
  Result<HttpResponse> res = transport_->Post(JoinUrl(url, std::string("/") + verb), body.dump(), timeout);
  if (!res.ok()) return res.status();
  if (res->status != 200) {
    return Status::Unavailable(std::string(verb) + " to " + url + " answered HTTP " +
                               std::to_string(res->status));
  }
  return Status::Ok();
}

Status ParticipantClient::Precommit(const std::string& url, const std::string& txn_id) {
  return SendPhaseMessage(url, "precommit", txn_id, phase2_timeout_);
}

Status ParticipantClient::Commit(const std::string& url, const std::string& txn_id) {
  return SendPhaseMessage(url, "commit", txn_id, phase2_timeout_);
}

Status ParticipantClient::Abort(const std::string& url, const std::string& txn_id) {
  return SendPhaseMessage(url, "abort", txn_id, phase2_timeout_);
}

Result<std::string> ParticipantClient::QueryState(const std::string& url, const std::string& txn_id) {
  Result<HttpResponse> res =
      transport_->Get(JoinUrl(url, "/txn-state?txn_id=" + txn_id), phase2_timeout_);
  if (!res.ok()) return res.status();
  if (res->status != 200) {
    return Status::Unavailable("txn-state at " + url + " answered HTTP " + std::to_string(res->status));
  }
  json reply = json::parse(res->body, nullptr, false);
  if (!reply.is_object() || !reply.contains("state") || !reply["state"].is_string()) {
    return Status::Unavailable("txn-state reply from " + url + " has no state");
  }
  return reply["state"].get<std::string>();
}

}  // namespace verdict::coordinator
