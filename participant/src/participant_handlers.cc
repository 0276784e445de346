// The participant protocol endpoints (CONTRACT.md "Participant protocol").
//
// Every handler that changes a txn's fate holds the txn's KeyedMutex entry for
// the whole step, so a repeated or concurrent message for the same txn sees
// the finished result of the previous one.
#include <nlohmann/json.hpp>

#include "participant_impl.h"
#include "verdict/common/failpoint.h"
#include "verdict/common/http_server.h"
#include "verdict/common/ids.h"
#include "verdict/common/logging.h"

namespace verdict::participant {
namespace {

constexpr char kComponent[] = "participant";

using nlohmann::json;

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// Parses the body and its "txn_id"; on failure replies 400 and returns nullopt.
std::optional<json> ParseTxnBody(const httplib::Request& req, httplib::Response& res,
                                 std::string* txn_id) {
  Result<json> body = ParseJsonObject(req.body, /*allow_empty=*/false);
  if (!body.ok()) {
    ReplyError(res, 400, "invalid_request", body.status().message());
    return std::nullopt;
  }
  auto it = body->find("txn_id");
  if (it == body->end() || !it->is_string()) {
    ReplyError(res, 400, "invalid_request", "\"txn_id\" is required and must be a string");
    return std::nullopt;
  }
  *txn_id = it->get<std::string>();
  if (!IsValidId(*txn_id)) {
    ReplyError(res, 400, "invalid_request", "\"txn_id\" is not a valid transaction id");
    return std::nullopt;
  }
  return std::move(body).value();
}

void ReplyState(httplib::Response& res, const std::string& txn_id, LocalState state) {
  ReplyJson(res, 200, {{"txn_id", txn_id}, {"state", LocalStateName(state)}});
}

void ReplyVote(httplib::Response& res, const std::string& txn_id, Vote vote) {
  ReplyJson(res, 200, {{"txn_id", txn_id}, {"vote", VoteName(vote)}});
}

}  // namespace

void Participant::Impl::Mount(httplib::Server& server) {
  server.Post("/prepare", [this](const httplib::Request& req, httplib::Response& res) {
    HandlePrepare(req, res);
  });
  server.Post("/precommit", [this](const httplib::Request& req, httplib::Response& res) {
    HandlePrecommit(req, res);
  });
  server.Post("/commit", [this](const httplib::Request& req, httplib::Response& res) {
    HandleCommit(req, res);
  });
  server.Post("/abort", [this](const httplib::Request& req, httplib::Response& res) {
    HandleAbort(req, res);
  });
  server.Get("/txn-state", [this](const httplib::Request& req, httplib::Response& res) {
    HandleTxnState(req, res);
  });
}

void Participant::Impl::HandlePrepare(const httplib::Request& req, httplib::Response& res) {
  std::string txn_id;
  std::optional<json> body = ParseTxnBody(req, res, &txn_id);
  if (!body) return;

  TxnRecord record;
  record.txn_id = txn_id;
  record.protocol = "2pc";
  if (auto it = body->find("protocol"); it != body->end()) {
    if (!it->is_string() || (*it != "2pc" && *it != "3pc")) {
      ReplyError(res, 400, "invalid_request", "\"protocol\" must be \"2pc\" or \"3pc\"");
      return;
    }
    record.protocol = it->get<std::string>();
  }
  record.coordinator = options_.coordinator_url;
  if (auto it = body->find("coordinator"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || !ValidateHttpUrl(it->get<std::string>()).ok()) {
      ReplyError(res, 400, "invalid_request", "\"coordinator\" must be an http:// URL");
      return;
    }
    record.coordinator = it->get<std::string>();
  }
  if (auto it = body->find("participants"); it != body->end() && !it->is_null()) {
    if (!it->is_array()) {
      ReplyError(res, 400, "invalid_request", "\"participants\" must be an array of URLs");
      return;
    }
    const std::string self = TrimSlash(options_.self_url);
    for (const json& p : *it) {
      // URLs, or {"url":...} objects as the coordinator's Transaction lists them.
      const json* url = &p;
      if (p.is_object() && p.contains("url")) url = &p["url"];
      if (!url->is_string() || !ValidateHttpUrl(url->get<std::string>()).ok()) {
        ReplyError(res, 400, "invalid_request", "\"participants\" must be an array of URLs");
        return;
      }
      std::string peer = url->get<std::string>();
      if (TrimSlash(peer) != self) record.peers.push_back(std::move(peer));
    }
  }

  KeyedMutex::Guard guard = txn_locks_.Lock(txn_id);
  if (Status fp = failpoint::Hit("participant.before_prepare"); !fp.ok()) {
    // Nothing is durable yet: vote no and drop the work.
    VLOG_WARN(kComponent, "prepare " << txn_id << ": " << fp.message() << "; voting no");
    resource_->Abort(txn_id).IgnoreError();
    ForgetEnlisted(txn_id);
    ReplyVote(res, txn_id, Vote::kNo);
    return;
  }
  record.prepared_at_ms = clock_->NowUnixMs();
  Result<Vote> vote = resource_->Prepare(record);
  if (!vote.ok()) {
    VLOG_WARN(kComponent, "prepare " << txn_id << " failed, voting no: " << vote.status().ToString());
    resource_->Abort(txn_id).IgnoreError();
    ForgetEnlisted(txn_id);
    ReplyVote(res, txn_id, Vote::kNo);
    return;
  }
  switch (*vote) {
    case Vote::kYes:
      if (Status fp = failpoint::Hit("participant.after_prepare_durable"); !fp.ok()) {
        // The yes is durable but not sent: the coordinator counts the failed
        // prepare as no and will send abort; recovery asks if it does not.
        ReplyStatus(res, fp);
        return;
      }
      break;
    case Vote::kNo:
      resource_->Abort(txn_id).IgnoreError();  // idempotent; releases anything left
      ForgetEnlisted(txn_id);
      break;
    case Vote::kReadOnly:
      ForgetEnlisted(txn_id);
      break;
  }
  VLOG_DEBUG(kComponent, "prepare " << txn_id << " -> " << VoteName(*vote));
  ReplyVote(res, txn_id, *vote);
}

void Participant::Impl::HandlePrecommit(const httplib::Request& req, httplib::Response& res) {
  std::string txn_id;
  if (!ParseTxnBody(req, res, &txn_id)) return;
  KeyedMutex::Guard guard = txn_locks_.Lock(txn_id);
  Status s = resource_->Precommit(txn_id);
  if (!s.ok()) {
    if (s.code() == StatusCode::kConflict) {
      ReplyError(res, 409, "txn_not_prepared", s.message());
    } else {
      ReplyStatus(res, s);
    }
    return;
  }
  if (Status fp = failpoint::Hit("participant.after_precommit_durable"); !fp.ok()) {
    ReplyStatus(res, fp);  // durable but unacknowledged: the coordinator retries
    return;
  }
  ReplyState(res, txn_id, LocalState::kPrecommitted);
}

void Participant::Impl::HandleCommit(const httplib::Request& req, httplib::Response& res) {
  std::string txn_id;
  if (!ParseTxnBody(req, res, &txn_id)) return;
  KeyedMutex::Guard guard = txn_locks_.Lock(txn_id);
  Status s = ApplyCommitLocked(txn_id);
  if (!s.ok()) {
    ReplyStatus(res, s);  // IoError/failpoint -> 503 (retried); Conflict -> 409
    return;
  }
  ReplyState(res, txn_id, LocalState::kCommitted);
}

void Participant::Impl::HandleAbort(const httplib::Request& req, httplib::Response& res) {
  std::string txn_id;
  if (!ParseTxnBody(req, res, &txn_id)) return;
  KeyedMutex::Guard guard = txn_locks_.Lock(txn_id);
  Status s = ApplyAbortLocked(txn_id);
  if (!s.ok()) {
    ReplyStatus(res, s);
    return;
  }
  ReplyState(res, txn_id, LocalState::kAborted);
}

void Participant::Impl::HandleTxnState(const httplib::Request& req, httplib::Response& res) {
  std::string txn_id = req.get_param_value("txn_id");
  if (!IsValidId(txn_id)) {
    ReplyError(res, 400, "invalid_request", "query parameter txn_id is missing or invalid");
    return;
  }
  Result<LocalState> state = resource_->GetState(txn_id);
  if (!state.ok()) {
    ReplyStatus(res, state.status());
    return;
  }
  ReplyState(res, txn_id, *state);
}

Status Participant::Impl::ApplyCommitLocked(const std::string& txn_id) {
  VERDICT_RETURN_IF_ERROR(failpoint::Hit("participant.before_commit_apply"));
  Status s = resource_->Commit(txn_id);
  if (!s.ok()) {
    VLOG_WARN(kComponent, "commit " << txn_id << ": " << s.ToString());
    return s;
  }
  ForgetEnlisted(txn_id);
  VERDICT_RETURN_IF_ERROR(failpoint::Hit("participant.after_commit_apply"));
  VLOG_DEBUG(kComponent, "committed " << txn_id);
  return Status::Ok();
}

Status Participant::Impl::ApplyAbortLocked(const std::string& txn_id) {
  VERDICT_RETURN_IF_ERROR(failpoint::Hit("participant.before_abort_apply"));
  Status s = resource_->Abort(txn_id);
  if (!s.ok()) {
    VLOG_WARN(kComponent, "abort " << txn_id << ": " << s.ToString());
    return s;
  }
  ForgetEnlisted(txn_id);
  VLOG_DEBUG(kComponent, "aborted " << txn_id);
  return Status::Ok();
}

}  // namespace verdict::participant
