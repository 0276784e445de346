#include "verdict/api/api_server.h"

#include <sstream>

#include "verdict/common/http_server.h"
#include "verdict/common/ids.h"

namespace verdict::api {

using coordinator::Transaction;
using nlohmann::json;

namespace {

constexpr char kIdPattern[] = "([^/]+)";

void ReplyTxn(httplib::Response& res, int status, const Result<Transaction>& txn) {
  if (!txn.ok()) return ReplyStatus(res, txn.status());
  ReplyJson(res, status, coordinator::ToJson(*txn));
}

// The txn id path segment; ids outside the id alphabet cannot exist (404).
bool TxnId(const httplib::Request& req, httplib::Response& res, std::string* id) {
  *id = req.matches[1];
  if (!IsValidId(*id)) {
    ReplyError(res, 404, "not_found", "no transaction " + *id);
    return false;
  }
  return true;
}

Result<coordinator::NewParticipant> ParseParticipant(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("a participant must be an object {name, url}");
  if (!j.contains("name") || !j["name"].is_string()) {
    return Status::InvalidArgument("participant.name must be a string");
  }
  if (!j.contains("url") || !j["url"].is_string()) {
    return Status::InvalidArgument("participant.url must be a string");
  }
  return coordinator::NewParticipant{j["name"].get<std::string>(), j["url"].get<std::string>()};
}

bool TokenMatches(const httplib::Request& req, const std::string& token) {
  std::string header = req.get_header_value("Authorization");
  std::string expected = "Bearer " + token;
  if (header.size() != expected.size()) return false;
  unsigned char diff = 0;  // constant time
  for (size_t i = 0; i < header.size(); ++i) diff |= header[i] ^ expected[i];
  return diff == 0;
}

}  // namespace

ApiServer::ApiServer(coordinator::Coordinator* coordinator, recovery::RecoveryManager* recovery,
                     ApiOptions options)
    : coordinator_(coordinator), recovery_(recovery), options_(std::move(options)) {}

bool ApiServer::Authorized(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  const std::string* token = nullptr;
  if (path.rfind("/v1/", 0) == 0 && !options_.api_token.empty()) token = &options_.api_token;
  if (path.rfind("/admin/", 0) == 0 && !options_.admin_token.empty()) token = &options_.admin_token;
  if (token == nullptr || TokenMatches(req, *token)) return true;
  res.set_header("WWW-Authenticate", "Bearer");
  ReplyError(res, 401, "unauthorized", "missing or bad bearer token");
  return false;
}

void ApiServer::Mount(httplib::Server& server) {
  InstallPreRouting(server, [this](const httplib::Request& req, httplib::Response& res) {
    return !Authorized(req, res);
  });
  const std::string txn = std::string("/v1/transactions/") + kIdPattern;

  server.Post("/v1/transactions", [this](const auto& req, auto& res) { HandleCreate(req, res); });
  server.Post(txn + "/participants", [this](const auto& req, auto& res) { HandleEnlist(req, res); });
  server.Post(txn + "/commit", [this](const httplib::Request& req, httplib::Response& res) {
    std::string id;
    if (TxnId(req, res, &id)) ReplyTxn(res, 200, coordinator_->Commit(id));
  });
  server.Post(txn + "/abort", [this](const httplib::Request& req, httplib::Response& res) {
    std::string id;
    if (TxnId(req, res, &id)) ReplyTxn(res, 200, coordinator_->Abort(id));
  });
  server.Get(txn, [this](const httplib::Request& req, httplib::Response& res) {
    std::string id;
    if (TxnId(req, res, &id)) ReplyTxn(res, 200, coordinator_->Get(id));
  });
  server.Get(txn + "/decision", [this](const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    if (!IsValidId(id)) return ReplyJson(res, 200, {{"decision", "abort"}});
    Result<std::string> d = coordinator_->DecisionFor(id);
    if (!d.ok()) return ReplyStatus(res, d.status());
    ReplyJson(res, 200, {{"decision", *d}});
  });

  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    ReplyJson(res, 200, {{"status", "ok"}});
  });
  server.Get("/metrics", [this](const auto& req, auto& res) { HandleMetrics(req, res); });
  server.Get("/admin/transactions", [this](const auto& req, auto& res) { HandleList(req, res); });
  server.Post(std::string("/admin/transactions/") + kIdPattern + "/resolve",
              [this](const auto& req, auto& res) { HandleResolve(req, res); });
  server.Post("/admin/recovery/run", [this](const httplib::Request&, httplib::Response& res) {
    ReplyJson(res, 200, {{"resumed", recovery_->RunNow()}});
  });
}

void ApiServer::HandleCreate(const httplib::Request& req, httplib::Response& res) {
  Result<json> body = ParseJsonObject(req.body, /*allow_empty=*/true);
  if (!body.ok()) return ReplyStatus(res, body.status());
  coordinator::CreateRequest create;
  const json& j = *body;
  if (j.contains("protocol") && !j["protocol"].is_null()) {
    if (!j["protocol"].is_string()) return ReplyError(res, 400, "invalid_argument", "protocol must be \"2pc\" or \"3pc\"");
    auto p = coordinator::ParseProtocol(j["protocol"].get<std::string>());
    if (!p) return ReplyError(res, 400, "invalid_argument", "protocol must be \"2pc\" or \"3pc\"");
    create.protocol = *p;
  }
  if (j.contains("timeout_ms") && !j["timeout_ms"].is_null()) {
    if (!j["timeout_ms"].is_number_integer()) {
      return ReplyError(res, 400, "invalid_argument", "timeout_ms must be a positive integer");
    }
    create.timeout_ms = j["timeout_ms"].get<int64_t>();
  }
  if (j.contains("participants") && !j["participants"].is_null()) {
    if (!j["participants"].is_array()) {
      return ReplyError(res, 400, "invalid_argument", "participants must be an array");
    }
    for (const auto& p : j["participants"]) {
      Result<coordinator::NewParticipant> np = ParseParticipant(p);
      if (!np.ok()) return ReplyStatus(res, np.status());
      create.participants.push_back(*np);
    }
  }
  create.idempotency_key = req.get_header_value("Idempotency-Key");
  ReplyTxn(res, 201, coordinator_->Create(create));
}

void ApiServer::HandleEnlist(const httplib::Request& req, httplib::Response& res) {
  std::string id;
  if (!TxnId(req, res, &id)) return;
  Result<json> body = ParseJsonObject(req.body, /*allow_empty=*/false);
  if (!body.ok()) return ReplyStatus(res, body.status());
  Result<coordinator::NewParticipant> np = ParseParticipant(*body);
  if (!np.ok()) return ReplyStatus(res, np.status());
  ReplyTxn(res, 200, coordinator_->Enlist(id, *np));
}

void ApiServer::HandleList(const httplib::Request& req, httplib::Response& res) {
  std::optional<coordinator::TxnState> state;
  bool in_doubt = false;
  if (req.has_param("state")) {
    std::string s = req.get_param_value("state");
    if (s == "in_doubt") {
      in_doubt = true;
    } else {
      state = coordinator::ParseTxnState(s);
      if (!state) {
        return ReplyError(res, 400, "invalid_argument",
                          "state must be a transaction state or in_doubt");
      }
    }
  }
  size_t limit = 100;
  if (req.has_param("limit")) {
    std::string l = req.get_param_value("limit");
    char* end = nullptr;
    long n = strtol(l.c_str(), &end, 10);
    if (l.empty() || *end != '\0' || n < 1 || n > 10000) {
      return ReplyError(res, 400, "invalid_argument", "limit must be between 1 and 10000");
    }
    limit = static_cast<size_t>(n);
  }
  Result<std::vector<Transaction>> list = coordinator_->List(state, in_doubt, limit);
  if (!list.ok()) return ReplyStatus(res, list.status());
  json arr = json::array();
  for (const auto& t : *list) arr.push_back(coordinator::ToJson(t));
  ReplyJson(res, 200, {{"transactions", std::move(arr)}});
}

void ApiServer::HandleResolve(const httplib::Request& req, httplib::Response& res) {
  std::string id = req.matches[1];
  if (!IsValidId(id)) return ReplyError(res, 404, "not_found", "no transaction " + id);
  Result<json> body = ParseJsonObject(req.body, /*allow_empty=*/false);
  if (!body.ok()) return ReplyStatus(res, body.status());
  const json& j = *body;
  if (!j.contains("decision") || !j["decision"].is_string()) {
    return ReplyError(res, 400, "invalid_argument", "decision must be \"commit\" or \"abort\"");
  }
  std::string d = j["decision"].get<std::string>();
  coordinator::Decision decision;
  if (d == "commit") {
    decision = coordinator::Decision::kCommit;
  } else if (d == "abort") {
    decision = coordinator::Decision::kAbort;
  } else {
    return ReplyError(res, 400, "invalid_argument", "decision must be \"commit\" or \"abort\"");
  }
  ReplyTxn(res, 200, coordinator_->Resolve(id, decision));
}

void ApiServer::HandleMetrics(const httplib::Request&, httplib::Response& res) {
  coordinator::CoordinatorMetrics m = coordinator_->Metrics();
  std::ostringstream os;
  auto counter = [&os](const char* name, const char* help, int64_t v) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
       << name << ' ' << v << '\n';
  };
  auto gauge = [&os](const char* name, const char* help, int64_t v) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n"
       << name << ' ' << v << '\n';
  };
  counter("verdict_transactions_created_total", "Transactions created.", m.created);
  counter("verdict_transactions_committed_total", "Transactions decided commit.", m.committed);
  counter("verdict_transactions_aborted_total", "Transactions decided abort.", m.aborted);
  counter("verdict_transactions_timed_out_total", "Active transactions aborted by timeout.", m.timeouts);
  counter("verdict_in_doubt_replies_total", "Commit calls answered 503 in_doubt.", m.in_doubt_replies);
  counter("verdict_prepare_failures_total", "Prepare calls that failed or timed out.", m.prepare_failures);
  counter("verdict_phase2_retries_total", "Phase-two messages re-sent.", m.phase2_retries);
  counter("verdict_log_sync_writes_total", "Forced (fsync) decision-log writes.", m.log_sync_writes);
  counter("verdict_log_write_errors_total", "Failed decision-log writes.", m.log_write_errors);
  gauge("verdict_transactions_live", "Transactions held in memory.", m.live);
  gauge("verdict_transactions_incomplete", "Transactions not yet completed.", m.incomplete);
  res.status = 200;
  res.set_content(os.str(), "text/plain; version=0.0.4");
}

}  // namespace verdict::api
