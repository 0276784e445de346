// EmbeddedBankStore: verdict-bank accounts in an embedded LevelDbResource.
//
// Account <id> is the resource key "account/<id>"; its value is the balance as
// a decimal int64 string. Apply stages the new balance under the txn's lock on
// the account, so concurrent transfers on one account serialize (rule 6).
//
// Thread-safety: thread-safe (the resource is).
#pragma once

#include <memory>
#include <string>

#include "bank_store.h"
#include "verdict/participant/leveldb_resource.h"

namespace verdict::bank {

class EmbeddedBankStore final : public BankStore {
 public:
  // Opens (creating if needed) the store in `dir`. IoError naming the dir when
  // it is unusable.
  static Result<std::unique_ptr<EmbeddedBankStore>> Open(
      const std::string& dir, participant::LevelDbResourceOptions options = {});

  Status CreateAccount(const std::string& id, int64_t balance) override;
  Result<int64_t> GetBalance(const std::string& id) override;
  Status Apply(const std::string& txn_id, const std::string& id, int64_t delta) override;
  participant::Resource* resource() override { return resource_.get(); }
  participant::LevelDbResource* leveldb() { return resource_.get(); }

 private:
  explicit EmbeddedBankStore(std::unique_ptr<participant::LevelDbResource> resource)
      : resource_(std::move(resource)) {}

  std::unique_ptr<participant::LevelDbResource> resource_;
};

}  // namespace verdict::bank
