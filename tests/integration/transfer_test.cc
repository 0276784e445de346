// End-to-end transfers through real processes: verdictd and two verdict-bank
// participants over HTTP, as an outside client following CONTRACT.md would
// drive them. Runs for 2PC and 3PC, with embedded and PostgreSQL banks.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/cluster_fixture.h"

namespace verdict::testing {
namespace {

using nlohmann::json;

class TransferTest : public ClusterFixture,
                     public ::testing::WithParamInterface<std::tuple<Store, std::string>> {
 protected:
  Store store() const override { return std::get<0>(GetParam()); }
  std::string protocol() const { return std::get<1>(GetParam()); }

  void SetUp() override {
    ClusterFixture::SetUp();
    StartAll();
    ASSERT_EQ(bank_a_->CreateAccount("alice", 100).status, 201);
    ASSERT_EQ(bank_b_->CreateAccount("bob", 100).status, 201);
  }

  std::string NewTxn(int64_t timeout_ms = 30000) {
    HttpResult t = CreateTxn(coord_->url(), {{"protocol", protocol()}, {"timeout_ms", timeout_ms}});
    EXPECT_EQ(t.status, 201) << t.Describe();
    EXPECT_EQ(t.json["protocol"], protocol());
    return t.json.value("id", "");
  }

  void ExpectBalances(int64_t alice, int64_t bob) {
    EXPECT_EQ(bank_a_->Balance("alice"), alice);
    EXPECT_EQ(bank_b_->Balance("bob"), bob);
  }
};

TEST_P(TransferTest, CommitAcrossTwoParticipants) {
  std::string id = NewTxn();
  ASSERT_EQ(bank_a_->Apply(id, "alice", -30).status, 200);
  ASSERT_EQ(bank_b_->Apply(id, "bob", 30).status, 200);
  // Staged work is invisible until commit.
  ExpectBalances(100, 100);
  HttpResult t = GetTxn(coord_->url(), id);
  ASSERT_EQ(t.json["participants"].size(), 2u) << "both banks enlisted themselves: " << t.body;

  HttpResult c = Commit(coord_->url(), id);
  ASSERT_EQ(c.status, 200) << c.Describe();
  EXPECT_EQ(c.json["state"], "committed");
  EXPECT_TRUE(c.json["decided_at"].is_string());
  for (const auto& p : c.json["participants"]) EXPECT_EQ(p["vote"], "yes") << c.body;
  ExpectBalances(70, 130);
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), "committed");
  EXPECT_EQ(Decision(coord_->url(), id).json["decision"], "commit");
  // Duplicate commit: same answer; abort is now illegal.
  HttpResult again = Commit(coord_->url(), id);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json["state"], "committed");
  EXPECT_EQ(Abort(coord_->url(), id).status, 409);
  ExpectBalances(70, 130);
}

TEST_P(TransferTest, OverdraftVotesNoAndNothingMoves) {
  std::string id = NewTxn();
  ASSERT_EQ(bank_b_->Apply(id, "bob", 500).status, 200);
  HttpResult over = bank_a_->Apply(id, "alice", -500);
  EXPECT_EQ(over.status, 409) << over.Describe();
  // The application commits anyway: bank a votes no, so everything aborts.
  HttpResult c = Commit(coord_->url(), id);
  ASSERT_EQ(c.status, 200) << c.Describe();
  EXPECT_EQ(c.json["state"], "aborted");
  EXPECT_TRUE(c.json.contains("reason")) << c.body;
  ExpectBalances(100, 100);
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), "aborted");
  EXPECT_EQ(Commit(coord_->url(), id).status, 409) << "already aborted";
  EXPECT_EQ(Abort(coord_->url(), id).status, 200) << "abort is idempotent";
  ExpectNothingInDoubt();
}

TEST_P(TransferTest, ClientAbortReleasesEverything) {
  std::string id = NewTxn();
  ASSERT_EQ(bank_a_->Apply(id, "alice", -10).status, 200);
  ASSERT_EQ(bank_b_->Apply(id, "bob", 10).status, 200);
  HttpResult a = Abort(coord_->url(), id);
  ASSERT_EQ(a.status, 200) << a.Describe();
  EXPECT_EQ(a.json["state"], "aborted");
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), "aborted");
  ExpectBalances(100, 100);
  // The accounts are free again: a new transaction can use them at once.
  std::string next = NewTxn();
  ASSERT_EQ(bank_a_->Apply(next, "alice", -100).status, 200);
  ASSERT_EQ(bank_b_->Apply(next, "bob", 100).status, 200);
  EXPECT_EQ(Commit(coord_->url(), next).json["state"], "committed");
  ExpectBalances(0, 200);
  // Work under the aborted transaction is refused (it is no longer active).
  EXPECT_EQ(bank_a_->Apply(id, "alice", 5).status, 409);
}

TEST_P(TransferTest, ActiveTransactionTimesOut) {
  std::string id = NewTxn(/*timeout_ms=*/300);
  ASSERT_EQ(bank_a_->Apply(id, "alice", -10).status, 200);
  ASSERT_EQ(bank_b_->Apply(id, "bob", 10).status, 200);
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200, 10s), "aborted");
  HttpResult t = GetTxn(coord_->url(), id);
  EXPECT_EQ(t.json["reason"], "timeout") << t.body;
  EXPECT_EQ(Commit(coord_->url(), id).status, 409);
  ExpectBalances(100, 100);
}

TEST_P(TransferTest, ConcurrentTransfersOnOneAccountLoseNoUpdate) {
  // Rule 6: concurrent transactions on the same account serialize; none is lost.
  constexpr int kTransfers = 20;
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kTransfers; ++i) {
    threads.emplace_back([&] {
      HttpResult t = CreateTxn(coord_->url(), {{"protocol", protocol()}});
      if (t.status != 201) {
        ADD_FAILURE() << "create: " << t.Describe();
        return;
      }
      std::string id = t.json["id"];
      bool ok = bank_a_->Apply(id, "alice", -1).status == 200 &&
                bank_b_->Apply(id, "bob", 1).status == 200;
      HttpResult r = ok ? Commit(coord_->url(), id) : Abort(coord_->url(), id);
      if (r.status == 200 && r.json["state"] == "committed") committed++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(committed.load(), 0);
  ExpectBalances(100 - committed.load(), 100 + committed.load());
}

TEST_P(TransferTest, BusinessApiBadInput) {
  EXPECT_EQ(bank_a_->CreateAccount("alice", 5).status, 409) << "exists";
  EXPECT_EQ(HttpPost(bank_a_->url() + "/accounts", "{bad").status, 400);
  EXPECT_EQ(HttpPost(bank_a_->url() + "/accounts", R"({"id":"neg","balance":-1})").status, 400);
  EXPECT_EQ(HttpGet(bank_a_->url() + "/accounts/nobody").status, 404);
  std::string id = NewTxn();
  EXPECT_EQ(HttpPost(bank_a_->url() + "/accounts/alice/apply", R"({"delta":1})").status, 400)
      << "no Verdict-Txn-Id header";
  EXPECT_EQ(bank_a_->Apply(id, "nobody", 1).status, 404);
  EXPECT_EQ(HttpPost(bank_a_->url() + "/accounts/alice/apply", R"({"delta":"x"})",
                     {{"Verdict-Txn-Id", id}}).status,
            400);
  // Work under an id the coordinator never issued is refused and undone.
  HttpResult stray = bank_a_->Apply("0000000000000000000000000000dead", "alice", -1);
  EXPECT_EQ(stray.status, 409) << stray.Describe();
  EXPECT_EQ(bank_a_->Balance("alice"), 100);
  // Participant protocol: bad bodies get 400, unknown ids are acknowledged.
  EXPECT_EQ(HttpPost(bank_a_->url() + "/prepare", "{}").status, 400);
  EXPECT_EQ(HttpPost(bank_a_->url() + "/commit", R"({"txn_id":"unknown-1"})").status, 200);
  EXPECT_EQ(HttpPost(bank_a_->url() + "/abort", R"({"txn_id":"unknown-2"})").status, 200);
}

INSTANTIATE_TEST_SUITE_P(
    All, TransferTest,
    ::testing::Combine(::testing::Values(Store::kEmbedded, Store::kPostgres),
                       ::testing::Values("2pc", "3pc")),
    StoreProtocolName);

}  // namespace
}  // namespace verdict::testing
