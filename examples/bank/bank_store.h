// BankStore: where verdict-bank keeps accounts. Two implementations:
//   EmbeddedBankStore  (embedded_bank_store.h)  on participant::LevelDbResource;
//   the PostgreSQL store (pg_bank_store.h)      on participant::PostgresResource.
//
// Balances are int64 whole units. Every balance change happens inside a verdict
// transaction (Apply); only account creation is outside one.
//
// Error convention shared by every implementation: a Conflict whose message
// begins with "<reason>: " carries a machine-readable reason, one of the
// kReason* constants below; the service turns it into the error code of its 409
// reply (ConflictReason() extracts it).
//
// Thread-safety: implementations are safe for concurrent use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "verdict/common/status.h"
#include "verdict/participant/resource.h"

namespace verdict::bank {

// The balance would go negative. The transaction is doomed (votes no).
inline constexpr char kReasonInsufficientFunds[] = "insufficient_funds";
// Another transaction held the account longer than the lock wait.
inline constexpr char kReasonLockTimeout[] = "lock_timeout";
// The transaction is no longer accepting work here (prepared, committed or aborted).
inline constexpr char kReasonTxnNotActive[] = "txn_not_active";
// CreateAccount of an id that exists.
inline constexpr char kReasonAccountExists[] = "account_exists";

// The "<reason>" of a Conflict message "<reason>: ...", or "" when the message
// does not start with a snake_case token followed by ": ".
std::string_view ConflictReason(const Status& status);

class BankStore {
 public:
  virtual ~BankStore() = default;

  // Creates `id` with `balance` (>= 0), durably, outside any transaction.
  // Conflict (account_exists) when it exists or is being created/changed;
  // InvalidArgument for a bad id or a negative balance.
  virtual Status CreateAccount(const std::string& id, int64_t balance) = 0;

  // The committed balance. NotFound for an unknown account.
  virtual Result<int64_t> GetBalance(const std::string& id) = 0;

  // Stages balance += delta under `txn_id`, locking the account for the txn
  // until it finishes (a conflicting txn waits, then gets lock_timeout).
  // OK when staged; Conflict with insufficient_funds / lock_timeout /
  // txn_not_active; NotFound for an unknown account; InvalidArgument when the
  // result overflows int64.
  virtual Status Apply(const std::string& txn_id, const std::string& id, int64_t delta) = 0;

  // The participant-side Resource the Participant drives. Owned by the store.
  virtual participant::Resource* resource() = 0;
};

}  // namespace verdict::bank
