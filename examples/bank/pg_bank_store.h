// PgBankStore: verdict-bank accounts in PostgreSQL, on participant::PostgresResource.
//
// Schema (created if missing): verdict_bank_accounts(participant text, id text,
// balance bigint NOT NULL CHECK (balance >= 0), PRIMARY KEY (participant, id)).
// Rows are keyed by the participant name, so several banks can share one
// database, each seeing only its own accounts (and, through the resource's gid
// prefix, only its own prepared transactions). A bank must keep its participant
// name across restarts: its accounts and its in-doubt transactions are found by
// that name.
//
// Apply is a guarded UPDATE (balance + delta >= 0) inside the txn's PostgreSQL
// transaction: the row stays locked until the txn is prepared and finished, so
// concurrent transfers on one account serialize (rule 6 of CONTRACT.md); a
// transaction that waits longer than the lock timeout gets lock_timeout. An
// overdraft fails with insufficient_funds (the CHECK constraint is the
// backstop) and dooms the txn: its work here is rolled back and it votes no.
// CreateAccount is its own autocommit INSERT; GetBalance reads the committed
// balance without waiting for locks.
//
// Thread-safety: thread-safe (the resource is).
#pragma once

#include <memory>
#include <string>

#include "bank_store.h"
#include "verdict/participant/postgres_resource.h"

namespace verdict::bank {

class PgBankStore final : public BankStore {
 public:
  // Opens the resource (options.participant_name is required) and creates the
  // accounts table if missing. One-line error when the database is unusable.
  static Result<std::unique_ptr<PgBankStore>> Open(const std::string& uri,
                                                   participant::PostgresResourceOptions options);

  Status CreateAccount(const std::string& id, int64_t balance) override;
  Result<int64_t> GetBalance(const std::string& id) override;
  Status Apply(const std::string& txn_id, const std::string& id, int64_t delta) override;
  participant::Resource* resource() override { return resource_.get(); }
  participant::PostgresResource* postgres() { return resource_.get(); }

 private:
  explicit PgBankStore(std::unique_ptr<participant::PostgresResource> resource)
      : resource_(std::move(resource)) {}

  std::unique_ptr<participant::PostgresResource> resource_;
};

// The BankStore for `verdict-bank --pg-uri URI --name NAME`: a PgBankStore with
// default pool and lock-timeout settings. `participant_name` is the bank's
// participant name (see PostgresResourceOptions::participant_name).
Result<std::unique_ptr<BankStore>> OpenPostgresBankStore(const std::string& uri,
                                                         const std::string& participant_name);

}  // namespace verdict::bank
