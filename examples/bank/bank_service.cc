#include "bank_service.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "verdict/common/http_server.h"
#include "verdict/common/ids.h"
#include "verdict/common/logging.h"

namespace verdict::bank {
namespace {

constexpr char kComponent[] = "bank";
using nlohmann::json;

// Reads body[field] as an int64. nullopt (and a 400 reply) when it is missing
// (unless `fallback` is given), not an integer, or out of range.
std::optional<int64_t> IntField(const json& body, const char* field,
                                std::optional<int64_t> fallback, httplib::Response& res) {
  auto it = body.find(field);
  if (it == body.end()) {
    if (!fallback) {
      ReplyError(res, 400, "invalid_request", std::string("\"") + field + "\" is required");
    }
    return fallback;
  }
  if (!it->is_number_integer()) {
    ReplyError(res, 400, "invalid_request", std::string("\"") + field + "\" must be an integer");
    return std::nullopt;
  }
  if (it->is_number_unsigned() &&
      it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    ReplyError(res, 400, "invalid_request", std::string("\"") + field + "\" is out of range");
    return std::nullopt;
  }
  return it->get<int64_t>();
}

void ReplyAccountNotFound(httplib::Response& res, const std::string& id) {
  ReplyError(res, 404, "account_not_found", "no account '" + id + "'");
}

}  // namespace

void BankService::Mount(httplib::Server& server) {
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    ReplyJson(res, 200, {{"status", "ok"}});
  });
  server.Post("/accounts", [this](const httplib::Request& req, httplib::Response& res) {
    HandleCreate(req, res);
  });
  server.Get(R"(/accounts/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGet(req, res);
  });
  server.Post(R"(/accounts/([^/]+)/apply)",
              [this](const httplib::Request& req, httplib::Response& res) { HandleApply(req, res); });
}

void BankService::HandleCreate(const httplib::Request& req, httplib::Response& res) {
  Result<json> body = ParseJsonObject(req.body, /*allow_empty=*/false);
  if (!body.ok()) {
    ReplyError(res, 400, "invalid_request", body.status().message());
    return;
  }
  auto id_it = body->find("id");
  if (id_it == body->end() || !id_it->is_string() || !IsValidId(id_it->get<std::string>())) {
    ReplyError(res, 400, "invalid_request",
               "\"id\" is required: 1-128 characters of [A-Za-z0-9._:-]");
    return;
  }
  std::string id = id_it->get<std::string>();
  std::optional<int64_t> balance = IntField(*body, "balance", int64_t{0}, res);
  if (!balance) return;
  if (*balance < 0) {
    ReplyError(res, 400, "invalid_request", "\"balance\" must not be negative");
    return;
  }
  Status s = store_->CreateAccount(id, *balance);
  if (s.ok()) {
    ReplyJson(res, 201, {{"id", id}, {"balance", *balance}});
  } else if (s.code() == StatusCode::kConflict) {
    ReplyError(res, 409, kReasonAccountExists, s.message());
  } else if (s.code() == StatusCode::kInvalidArgument) {
    ReplyError(res, 400, "invalid_request", s.message());
  } else {
    ReplyStatus(res, s);
  }
}

void BankService::HandleGet(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.matches[1];
  Result<int64_t> balance = store_->GetBalance(id);
  if (!balance.ok()) {
    if (balance.status().code() == StatusCode::kNotFound) {
      ReplyAccountNotFound(res, id);
    } else {
      ReplyStatus(res, balance.status());
    }
    return;
  }
  ReplyJson(res, 200, {{"id", id}, {"balance", *balance}});
}

void BankService::HandleApply(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.matches[1];
  if (!req.has_header(participant::kTxnIdHeader)) {
    ReplyError(res, 400, "missing_txn_id",
               std::string("header ") + participant::kTxnIdHeader + " is required");
    return;
  }
  std::string txn_id = req.get_header_value(participant::kTxnIdHeader);
  if (!IsValidId(txn_id)) {
    ReplyError(res, 400, "invalid_txn_id",
               std::string("header ") + participant::kTxnIdHeader + " is not a valid id");
    return;
  }
  Result<json> body = ParseJsonObject(req.body, /*allow_empty=*/false);
  if (!body.ok()) {
    ReplyError(res, 400, "invalid_request", body.status().message());
    return;
  }
  std::optional<int64_t> delta = IntField(*body, "delta", std::nullopt, res);
  if (!delta) return;

  Status s = store_->Apply(txn_id, id, *delta);
  if (!s.ok()) {
    switch (s.code()) {
      case StatusCode::kNotFound:
        ReplyAccountNotFound(res, id);
        return;
      case StatusCode::kInvalidArgument:
        ReplyError(res, 400, "invalid_request", s.message());
        return;
      case StatusCode::kConflict: {
        std::string reason(ConflictReason(s));
        if (reason.empty()) reason = kReasonTxnNotActive;
        if (reason != kReasonTxnNotActive) {
          // The txn cannot do what the application asked here: doom it so it
          // votes no, and enlist so the coordinator does ask us to prepare.
          Status undo = participant_->AbortUnprepared(txn_id);
          if (!undo.ok()) VLOG_WARN(kComponent, "abort " << txn_id << ": " << undo.ToString());
          Status enlisted = participant_->Enlist(txn_id);
          if (!enlisted.ok()) {
            VLOG_DEBUG(kComponent, "enlist doomed " << txn_id << ": " << enlisted.ToString());
          }
        }
        ReplyError(res, 409, reason, s.message());
        return;
      }
      default:
        ReplyStatus(res, s);
        return;
    }
  }

  // Rule 1: enlisted before we answer; if not, the work must not survive.
  Status enlisted = participant_->Enlist(txn_id);
  if (!enlisted.ok()) {
    Status undo = participant_->AbortUnprepared(txn_id);
    if (undo.code() == StatusCode::kConflict) {
      // Already prepared (or committed) here: the enlistment reached the
      // coordinator after all, which asked us to prepare this work.
      VLOG_INFO(kComponent, "enlist " << txn_id << " failed (" << enlisted.ToString()
                                      << ") but the txn is already past prepare here");
      ReplyJson(res, 200, {{"id", id}, {"txn_id", txn_id}, {"delta", *delta}, {"staged", true}});
      return;
    }
    if (!undo.ok()) VLOG_WARN(kComponent, "undo of " << txn_id << ": " << undo.ToString());
    if (enlisted.code() == StatusCode::kConflict) {
      ReplyError(res, 409, kReasonTxnNotActive, enlisted.message());
    } else {
      ReplyError(res, 503, "coordinator_unavailable", enlisted.message());
    }
    return;
  }
  ReplyJson(res, 200, {{"id", id}, {"txn_id", txn_id}, {"delta", *delta}, {"staged", true}});
}

}  // namespace verdict::bank
