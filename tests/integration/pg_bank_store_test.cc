// PgBankStore (verdict-bank's PostgreSQL store) against a real PostgreSQL.
#include "pg_bank_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/postgres_cluster.h"

namespace verdict::bank {
namespace {

using participant::LocalState;
using participant::TxnRecord;
using participant::Vote;

TxnRecord Record(const std::string& txn_id) {
  TxnRecord r;
  r.txn_id = txn_id;
  r.coordinator = "http://127.0.0.1:7070";
  return r;
}

class PgBankStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { uri_ = testing::NewTestDatabase("pg_bank"); }

  std::unique_ptr<PgBankStore> Open(const std::string& name, int lock_timeout_ms = 2000) {
    participant::PostgresResourceOptions opts;
    opts.participant_name = name;
    opts.lock_timeout_ms = lock_timeout_ms;
    Result<std::unique_ptr<PgBankStore>> s = PgBankStore::Open(uri_, opts);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  static void CommitTxn(BankStore& store, const std::string& txn) {
    Result<Vote> v = store.resource()->Prepare(Record(txn));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_EQ(*v, Vote::kYes);
    ASSERT_TRUE(store.resource()->Commit(txn).ok());
  }

  std::string uri_;
};

TEST_F(PgBankStoreTest, CreateApplyCommitChangesTheCommittedBalance) {
  auto bank = Open("bank-a");
  ASSERT_NE(bank, nullptr);
  ASSERT_TRUE(bank->CreateAccount("alice", 100).ok());
  Status dup = bank->CreateAccount("alice", 5);
  EXPECT_EQ(dup.code(), StatusCode::kConflict);
  EXPECT_EQ(ConflictReason(dup), kReasonAccountExists) << dup.message();
  EXPECT_EQ(bank->GetBalance("alice").value(), 100);
  EXPECT_EQ(bank->GetBalance("nobody").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(bank->CreateAccount("neg", -1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bank->CreateAccount("bad id", 1).code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(bank->Apply("t1", "alice", -30).ok());
  ASSERT_TRUE(bank->Apply("t1", "alice", -20).ok());
  EXPECT_EQ(bank->GetBalance("alice").value(), 100);  // staged, not committed; no blocking
  CommitTxn(*bank, "t1");
  EXPECT_EQ(bank->GetBalance("alice").value(), 50);

  ASSERT_TRUE(bank->Apply("t2", "alice", 7).ok());
  ASSERT_EQ(bank->resource()->Prepare(Record("t2")).value(), Vote::kYes);
  ASSERT_TRUE(bank->resource()->Abort("t2").ok());
  EXPECT_EQ(bank->GetBalance("alice").value(), 50);
}

TEST_F(PgBankStoreTest, OverdraftIsInsufficientFundsAndVotesNo) {
  auto bank = Open("bank-a");
  ASSERT_NE(bank, nullptr);
  ASSERT_TRUE(bank->CreateAccount("bob", 10).ok());
  ASSERT_TRUE(bank->Apply("t1", "bob", -4).ok());
  Status s = bank->Apply("t1", "bob", -7);  // 6 left in the txn's view
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(ConflictReason(s), kReasonInsufficientFunds) << s.message();
  EXPECT_NE(s.message().find("has 6"), std::string::npos) << s.message();
  // The txn is doomed: refused afterwards, votes no, nothing applied.
  Status later = bank->Apply("t1", "bob", 1);
  EXPECT_EQ(ConflictReason(later), kReasonTxnNotActive) << later.message();
  EXPECT_EQ(bank->resource()->Prepare(Record("t1")).value(), Vote::kNo);
  EXPECT_EQ(bank->GetBalance("bob").value(), 10);
  // The whole balance can go; zero is allowed.
  ASSERT_TRUE(bank->Apply("t2", "bob", -10).ok());
  CommitTxn(*bank, "t2");
  EXPECT_EQ(bank->GetBalance("bob").value(), 0);
}

TEST_F(PgBankStoreTest, UnknownAccountAndOverflow) {
  auto bank = Open("bank-a");
  ASSERT_NE(bank, nullptr);
  EXPECT_EQ(bank->Apply("t1", "ghost", 5).code(), StatusCode::kNotFound);
  ASSERT_TRUE(bank->CreateAccount("rich", std::numeric_limits<int64_t>::max() - 1).ok());
  EXPECT_EQ(bank->Apply("t2", "rich", 10).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bank->GetBalance("rich").value(), std::numeric_limits<int64_t>::max() - 1);
}

TEST_F(PgBankStoreTest, ConflictingTransactionWaitsThenGetsLockTimeout) {
  auto bank = Open("bank-a", /*lock_timeout_ms=*/300);
  ASSERT_NE(bank, nullptr);
  ASSERT_TRUE(bank->CreateAccount("carol", 50).ok());
  ASSERT_TRUE(bank->Apply("holder", "carol", -10).ok());
  Status s = bank->Apply("waiter", "carol", -10);
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(ConflictReason(s), kReasonLockTimeout) << s.message();
  CommitTxn(*bank, "holder");
  EXPECT_EQ(bank->GetBalance("carol").value(), 40);
}

TEST_F(PgBankStoreTest, TwoBanksShareOneDatabaseIndependently) {
  auto a = Open("bank-a");
  auto b = Open("bank-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->CreateAccount("alice", 100).ok());
  ASSERT_TRUE(b->CreateAccount("alice", 5).ok());  // same id, other bank
  EXPECT_EQ(b->GetBalance("alice").value(), 5);

  // A transfer across the two banks under one txn id.
  ASSERT_TRUE(a->Apply("xfer", "alice", -60).ok());
  ASSERT_TRUE(b->Apply("xfer", "alice", 60).ok());
  ASSERT_EQ(a->resource()->Prepare(Record("xfer")).value(), Vote::kYes);
  ASSERT_EQ(b->resource()->Prepare(Record("xfer")).value(), Vote::kYes);
  EXPECT_EQ(a->resource()->ListInDoubt()->size(), 1u);
  EXPECT_EQ(b->resource()->ListInDoubt()->size(), 1u);
  ASSERT_TRUE(a->resource()->Commit("xfer").ok());
  EXPECT_EQ(b->resource()->GetState("xfer").value(), LocalState::kPrepared);
  ASSERT_TRUE(b->resource()->Commit("xfer").ok());
  EXPECT_EQ(a->GetBalance("alice").value(), 40);
  EXPECT_EQ(b->GetBalance("alice").value(), 65);
}

TEST_F(PgBankStoreTest, PreparedTransferSurvivesReopen) {
  {
    auto bank = Open("bank-a");
    ASSERT_NE(bank, nullptr);
    ASSERT_TRUE(bank->CreateAccount("dave", 30).ok());
    ASSERT_TRUE(bank->Apply("t1", "dave", -25).ok());
    ASSERT_EQ(bank->resource()->Prepare(Record("t1")).value(), Vote::kYes);
  }
  auto bank = Open("bank-a");
  ASSERT_NE(bank, nullptr);
  Result<std::vector<TxnRecord>> in_doubt = bank->resource()->ListInDoubt();
  ASSERT_TRUE(in_doubt.ok());
  ASSERT_EQ(in_doubt->size(), 1u);
  EXPECT_EQ((*in_doubt)[0].txn_id, "t1");
  EXPECT_EQ(bank->GetBalance("dave").value(), 30);
  ASSERT_TRUE(bank->resource()->Commit("t1").ok());
  EXPECT_EQ(bank->GetBalance("dave").value(), 5);
}

// Random transfers from several threads; every txn either commits on both
// accounts or on none. Money is conserved and no balance goes negative.
TEST_F(PgBankStoreTest, ConcurrentTransfersConserveMoney) {
  auto bank = Open("bank-a", /*lock_timeout_ms=*/200);
  ASSERT_NE(bank, nullptr);
  const std::vector<std::string> accounts = {"a0", "a1", "a2", "a3"};
  for (const auto& id : accounts) ASSERT_TRUE(bank->CreateAccount(id, 100).ok());

  std::atomic<int> committed{0};
  std::atomic<int> aborted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 25; ++i) {
        const std::string txn = "x-" + std::to_string(t) + "-" + std::to_string(i);
        const std::string& from = accounts[rng() % accounts.size()];
        const std::string& to = accounts[rng() % accounts.size()];
        const int64_t amount = 1 + rng() % 60;
        bool ok = bank->Apply(txn, from, -amount).ok() && bank->Apply(txn, to, amount).ok();
        Result<Vote> v = ok ? bank->resource()->Prepare(Record(txn)) : Result<Vote>(Vote::kNo);
        if (ok && v.ok() && *v == Vote::kYes && bank->resource()->Commit(txn).ok()) {
          ++committed;
        } else {
          EXPECT_TRUE(bank->resource()->Abort(txn).ok());
          ++aborted;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  int64_t total = 0;
  for (const auto& id : accounts) {
    int64_t b = bank->GetBalance(id).value();
    EXPECT_GE(b, 0) << id;
    total += b;
  }
  EXPECT_EQ(total, 400);
  EXPECT_GT(committed.load(), 0);
  EXPECT_EQ(committed.load() + aborted.load(), 150);
  EXPECT_EQ(bank->postgres()->pool_stats().open_transactions, 0);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, ""), 0);
}

TEST(PgBankStoreOpenTest, UnreachableDatabaseIsAOneLineError) {
  Result<std::unique_ptr<BankStore>> s =
      OpenPostgresBankStore("postgresql://postgres@127.0.0.1:1/postgres", "bank-a");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.status().message().find('\n'), std::string::npos) << s.status().message();
}

TEST(PgBankStoreOpenTest, OpenPostgresBankStoreUsesTheParticipantName) {
  const std::string uri = testing::NewTestDatabase("pg_bank_open");
  Result<std::unique_ptr<BankStore>> s = OpenPostgresBankStore(uri, "bank-x");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  BankStore& bank = **s;
  ASSERT_TRUE(bank.CreateAccount("erin", 3).ok());
  ASSERT_TRUE(bank.Apply("t1", "erin", 1).ok());
  ASSERT_EQ(bank.resource()->Prepare(Record("t1")).value(), Vote::kYes);
  EXPECT_EQ(testing::CountPreparedXacts(uri, "verdict:bank-x:t1"), 1);
  ASSERT_TRUE(bank.resource()->Commit("t1").ok());
  EXPECT_EQ(bank.GetBalance("erin").value(), 4);
}

}  // namespace
}  // namespace verdict::bank
