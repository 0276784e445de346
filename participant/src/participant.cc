// Participant: construction, the public forwarding methods, and enlistment.
#include "verdict/participant/participant.h"

#include <nlohmann/json.hpp>

#include "participant_impl.h"
#include "verdict/common/failpoint.h"
#include "verdict/common/ids.h"
#include "verdict/common/logging.h"

namespace verdict::participant {
namespace {
constexpr char kComponent[] = "participant";
constexpr size_t kMaxEnlistCache = 100'000;

// The error message of a contract error envelope, or the raw body.
std::string ErrorMessage(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].contains("message") && j["error"]["message"].is_string()) {
    return j["error"]["message"].get<std::string>();
  }
  return body.substr(0, 200);
}
}  // namespace

Participant::Participant(ParticipantOptions options, Resource* resource, HttpTransport* transport,
                         Clock* clock)
    : impl_(std::make_unique<Impl>(std::move(options), resource, transport, clock)) {}

Participant::~Participant() { impl_->Stop(); }

void Participant::Mount(httplib::Server& server) { impl_->Mount(server); }
Status Participant::Enlist(const std::string& txn_id) { return impl_->Enlist(txn_id); }
Status Participant::AbortUnprepared(const std::string& txn_id) {
  return impl_->AbortUnprepared(txn_id);
}
Status Participant::Start() { return impl_->Start(); }
void Participant::Stop() { impl_->Stop(); }
int Participant::RecoverOnce() { return impl_->RecoverOnce(); }

Participant::Impl::Impl(ParticipantOptions options, Resource* resource, HttpTransport* transport,
                        Clock* clock)
    : options_(std::move(options)), resource_(resource), transport_(transport), clock_(clock) {}

Participant::Impl::~Impl() { Stop(); }

std::vector<std::pair<std::string, std::string>> Participant::Impl::AuthHeaders() const {
  if (options_.api_token.empty()) return {};
  return {{"Authorization", "Bearer " + options_.api_token}};
}

Status Participant::Impl::Enlist(const std::string& txn_id) {
  if (!IsValidId(txn_id)) return Status::InvalidArgument("invalid transaction id '" + txn_id + "'");
  {
    std::lock_guard lock(enlist_mu_);
    if (enlisted_.count(txn_id) != 0) return Status::Ok();
  }
  if (Status fp = failpoint::Hit("participant.before_enlist"); !fp.ok()) {
    return Status::Unavailable("enlistment failed: " + fp.message());
  }
  if (options_.coordinator_url.empty()) return Status::Unavailable("no coordinator configured");
  nlohmann::json body = {{"name", options_.name}, {"url", options_.self_url}};
  std::string url = JoinUrl(options_.coordinator_url, "/v1/transactions/" + txn_id + "/participants");
  Result<HttpResponse> res =
      transport_->Post(url, body.dump(), options_.request_timeout, AuthHeaders());
  if (!res.ok()) {
    return Status::Unavailable("coordinator unreachable for enlistment: " + res.status().message());
  }
  switch (res->status) {
    case 200:
    case 201: {
      std::lock_guard lock(enlist_mu_);
      // Entries leave when their txn finishes here; the cap only bounds memory
      // if a coordinator vanishes for good (re-enlisting is a harmless no-op).
      if (enlisted_.size() >= kMaxEnlistCache) enlisted_.clear();
      enlisted_.insert(txn_id);
      return Status::Ok();
    }
    case 404:
    case 409:
      return Status::Conflict("txn_not_active: coordinator refused enlistment in '" + txn_id +
                              "': " + ErrorMessage(res->body));
    case 400:
      return Status::InvalidArgument("coordinator rejected enlistment: " + ErrorMessage(res->body));
    default:
      VLOG_WARN(kComponent, "enlist " << txn_id << ": coordinator answered HTTP " << res->status);
      return Status::Unavailable("coordinator answered HTTP " + std::to_string(res->status) +
                                 " to enlistment: " + ErrorMessage(res->body));
  }
}

void Participant::Impl::ForgetEnlisted(const std::string& txn_id) {
  std::lock_guard lock(enlist_mu_);
  enlisted_.erase(txn_id);
}

Status Participant::Impl::AbortUnprepared(const std::string& txn_id) {
  KeyedMutex::Guard guard = txn_locks_.Lock(txn_id);
  Result<LocalState> state = resource_->GetState(txn_id);
  if (!state.ok()) return state.status();
  if (*state == LocalState::kPrepared || *state == LocalState::kPrecommitted ||
      *state == LocalState::kCommitted) {
    return Status::Conflict("txn_not_active: transaction '" + txn_id + "' is already " +
                            std::string(LocalStateName(*state)) + " here");
  }
  Status s = resource_->Abort(txn_id);
  if (s.ok()) ForgetEnlisted(txn_id);
  return s;
}

}  // namespace verdict::participant
