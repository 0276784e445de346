#include "embedded_bank_store.h"

#include <cerrno>
#include <cstdlib>

#include "verdict/common/ids.h"

namespace verdict::bank {
namespace {

std::string AccountKey(const std::string& id) { return "account/" + id; }

Result<int64_t> ParseBalance(const std::string& id, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) {
    return Status::Internal("account '" + id + "' has a corrupt balance '" + text + "'");
  }
  return static_cast<int64_t>(v);
}

}  // namespace

Result<std::unique_ptr<EmbeddedBankStore>> EmbeddedBankStore::Open(
    const std::string& dir, participant::LevelDbResourceOptions options) {
  Result<std::unique_ptr<participant::LevelDbResource>> r =
      participant::LevelDbResource::Open(dir, options);
  if (!r.ok()) return r.status();
  return std::unique_ptr<EmbeddedBankStore>(new EmbeddedBankStore(std::move(r).value()));
}

Status EmbeddedBankStore::CreateAccount(const std::string& id, int64_t balance) {
  if (!IsValidId(id)) return Status::InvalidArgument("invalid account id '" + id + "'");
  if (balance < 0) return Status::InvalidArgument("balance must not be negative");
  Status s = resource_->Insert(AccountKey(id), std::to_string(balance));
  if (s.code() == StatusCode::kConflict) {
    return Status::Conflict(std::string(kReasonAccountExists) + ": account '" + id + "' exists");
  }
  return s;
}

Result<int64_t> EmbeddedBankStore::GetBalance(const std::string& id) {
  if (!IsValidId(id)) return Status::NotFound("no account '" + id + "'");
  Result<std::optional<std::string>> v = resource_->ReadCommitted(AccountKey(id));
  if (!v.ok()) return v.status();
  if (!v->has_value()) return Status::NotFound("no account '" + id + "'");
  return ParseBalance(id, **v);
}

Status EmbeddedBankStore::Apply(const std::string& txn_id, const std::string& id, int64_t delta) {
  if (!IsValidId(id)) return Status::NotFound("no account '" + id + "'");
  Status s = resource_->Update(
      txn_id, AccountKey(id),
      [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
        if (!current.has_value()) return Status::NotFound("no account '" + id + "'");
        Result<int64_t> balance = ParseBalance(id, *current);
        if (!balance.ok()) return balance.status();
        int64_t next;
        if (__builtin_add_overflow(*balance, delta, &next)) {
          return Status::InvalidArgument("balance of '" + id + "' would overflow");
        }
        if (next < 0) {
          return Status::Conflict(std::string(kReasonInsufficientFunds) + ": account '" + id +
                                  "' has " + std::to_string(*balance) + ", cannot apply " +
                                  std::to_string(delta));
        }
        return std::optional<std::string>(std::to_string(next));
      });
  return s;
}

}  // namespace verdict::bank
