#include "pg_bank_store.h"

#include <optional>
#include <utility>
#include <vector>

#include "verdict/common/ids.h"

namespace verdict::bank {
namespace {

constexpr char kStmtCreate[] = "bank_create";
constexpr char kStmtGet[] = "bank_get";
constexpr char kStmtApply[] = "bank_apply";

std::vector<std::pair<std::string, std::string>> BankStatements() {
  return {
      {kStmtCreate,
       "INSERT INTO verdict_bank_accounts (participant, id, balance) VALUES ($1, $2, $3)"
       " ON CONFLICT (participant, id) DO NOTHING RETURNING id"},
      {kStmtGet, "SELECT balance FROM verdict_bank_accounts WHERE participant = $1 AND id = $2"},
      // The guard keeps the balance non-negative; a row that fails it is not
      // updated (and not locked by this statement).
      {kStmtApply,
       "UPDATE verdict_bank_accounts SET balance = balance + $3"
       " WHERE participant = $1 AND id = $2 AND balance + $3 >= 0 RETURNING balance"},
  };
}

Status NoAccount(const std::string& id) { return Status::NotFound("no account '" + id + "'"); }

}  // namespace

Result<std::unique_ptr<PgBankStore>> PgBankStore::Open(
    const std::string& uri, participant::PostgresResourceOptions options) {
  for (auto& statement : BankStatements()) options.prepared_statements.push_back(statement);
  Result<std::unique_ptr<participant::PostgresResource>> opened =
      participant::PostgresResource::Open(uri, std::move(options));
  if (!opened.ok()) return opened.status();
  std::unique_ptr<PgBankStore> store(new PgBankStore(std::move(opened).value()));

  // Several banks may open one fresh database at once: serialize the CREATEs.
  Status s = store->resource_->WithSchemaLock(
      "create accounts table", "verdict_bank_accounts", [](pqxx::nontransaction& tx) {
        tx.exec0(
            "CREATE TABLE IF NOT EXISTS verdict_bank_accounts (participant text NOT NULL,"
            " id text NOT NULL, balance bigint NOT NULL CHECK (balance >= 0),"
            " PRIMARY KEY (participant, id))");
      });
  if (!s.ok()) return Status(s.code(), "creating the accounts table: " + s.message());
  return store;
}

Status PgBankStore::CreateAccount(const std::string& id, int64_t balance) {
  if (!IsValidId(id)) return Status::InvalidArgument("invalid account id '" + id + "'");
  if (balance < 0) return Status::InvalidArgument("balance must not be negative");
  bool created = false;
  Status s = resource_->WithAutocommit([&](pqxx::nontransaction& tx) -> Status {
    created = !tx.exec_prepared(kStmtCreate, resource_->participant_name(), id, balance).empty();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!created) {
    return Status::Conflict(std::string(kReasonAccountExists) + ": account '" + id + "' exists");
  }
  return Status::Ok();
}

Result<int64_t> PgBankStore::GetBalance(const std::string& id) {
  if (!IsValidId(id)) return NoAccount(id);
  std::optional<int64_t> balance;
  Status s = resource_->WithAutocommit([&](pqxx::nontransaction& tx) -> Status {
    pqxx::result r = tx.exec_prepared(kStmtGet, resource_->participant_name(), id);
    if (!r.empty()) balance = r[0][0].as<int64_t>();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!balance) return NoAccount(id);
  return *balance;
}

Status PgBankStore::Apply(const std::string& txn_id, const std::string& id, int64_t delta) {
  if (!IsValidId(id)) return NoAccount(id);
  Status s = resource_->WithTransaction(txn_id, [&](pqxx::work& tx) -> Status {
    const std::string& bank = resource_->participant_name();
    if (!tx.exec_prepared(kStmtApply, bank, id, delta).empty()) return Status::Ok();
    // Not updated: either no such account or the guard refused. The read sees
    // this txn's own staged balance (the row is locked by it, or unlocked).
    pqxx::result r = tx.exec_prepared(kStmtGet, bank, id);
    if (r.empty()) return NoAccount(id);
    return Status::Conflict(std::string(kReasonInsufficientFunds) + ": account '" + id +
                            "' has " + r[0][0].as<std::string>() + ", cannot apply " +
                            std::to_string(delta));
  });
  // The CHECK constraint is the backstop for the guard.
  if (s.code() == StatusCode::kConflict && ConflictReason(s) == "check_violation") {
    return Status::Conflict(std::string(kReasonInsufficientFunds) + ": " + s.message());
  }
  // bigint overflow (SQLSTATE 22003) arrives as InvalidArgument "invalid data: ...".
  if (s.code() == StatusCode::kInvalidArgument) {
    return Status::InvalidArgument("balance of '" + id + "' would overflow: " + s.message());
  }
  return s;
}

Result<std::unique_ptr<BankStore>> OpenPostgresBankStore(const std::string& uri,
                                                         const std::string& participant_name) {
  participant::PostgresResourceOptions options;
  options.participant_name = participant_name;
  Result<std::unique_ptr<PgBankStore>> store = PgBankStore::Open(uri, std::move(options));
  if (!store.ok()) return store.status();
  return std::unique_ptr<BankStore>(std::move(store).value());
}

}  // namespace verdict::bank
