// verdict-bank as a process: flags and start-up errors, and a PostgreSQL
// participant whose database goes away in the middle of a transaction.
#include <gtest/gtest.h>

#include <thread>

#include "support/cluster_fixture.h"

namespace verdict::testing {
namespace {

std::optional<int> RunBank(const TempDir& dir, std::vector<std::string> args) {
  Process p({BinPath("verdict-bank"), std::move(args), {}, dir.Sub("out.log")});
  EXPECT_TRUE(p.Start());
  return p.WaitExit(15s);
}

TEST(BankFlagsTest, HelpBadFlagsAndUnusableStores) {
  TempDir dir;
  EXPECT_EQ(RunBank(dir, {"--help"}), 0);
  EXPECT_NE(RunBank(dir, {"--bogus"}).value_or(0), 0);
  EXPECT_NE(RunBank(dir, {"--listen", "127.0.0.1:0", "--data-dir", "/proc/nope/x",
                          "--coordinator", "http://127.0.0.1:1"})
                .value_or(0),
            0);
  // A database that is not there is a one-line error at start-up, not a hang.
  int dead_port = FreePort();
  EXPECT_NE(RunBank(dir, {"--listen", "127.0.0.1:0", "--coordinator", "http://127.0.0.1:1",
                          "--pg-uri",
                          "postgresql://postgres@127.0.0.1:" + std::to_string(dead_port) + "/x"})
                .value_or(0),
            0);
  std::string log = ReadFile(dir.Sub("out.log"));
  EXPECT_NE(log.find("error: "), std::string::npos) << log;
}

TEST(BankFlagsTest, SigtermExitsZero) {
  VerdictdProcess coord;
  ASSERT_TRUE(coord.Start());
  BankProcess bank({.coordinator_url = coord.url()});
  ASSERT_TRUE(bank.Start());
  EXPECT_EQ(bank.Stop(), 0);
  EXPECT_EQ(coord.Stop(), 0);
}

// bank-a keeps its accounts in a PostgreSQL server the test can stop.
class DatabaseOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = LocalPostgres::Create();
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = std::move(pg).value();
    auto db = CreateDatabase(pg_->Uri(), "outage");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_uri_ = *db;
    ServiceOptions c;
    c.port = FreePort();
    c.extra_args = {"--retry-max", "300ms", "--prepare-timeout", "3s", "--phase2-timeout", "2s"};
    coord_ = std::make_unique<VerdictdProcess>(c);
    ASSERT_TRUE(coord_->Start());
    bank_a_ = std::make_unique<BankProcess>(BankOptions{
        .coordinator_url = coord_->url(),
        .name = "bank-a",
        .pg_uri = db_uri_,
        .service = {.extra_args = {"--in-doubt-query-after", "1s"}}});
    bank_b_ = std::make_unique<BankProcess>(
        BankOptions{.coordinator_url = coord_->url(), .name = "bank-b"});
    ASSERT_TRUE(bank_a_->Start());
    ASSERT_TRUE(bank_b_->Start());
    ASSERT_EQ(bank_a_->CreateAccount("alice", 100).status, 201);
    ASSERT_EQ(bank_b_->CreateAccount("bob", 100).status, 201);
  }

  std::string Stage(int64_t amount) {
    HttpResult t = CreateTxn(coord_->url(), {{"timeout_ms", 60000}});
    std::string id = t.json.value("id", "");
    EXPECT_EQ(bank_a_->Apply(id, "alice", -amount).status, 200);
    EXPECT_EQ(bank_b_->Apply(id, "bob", amount).status, 200);
    return id;
  }

  std::unique_ptr<LocalPostgres> pg_;
  std::string db_uri_;
  std::unique_ptr<VerdictdProcess> coord_;
  std::unique_ptr<BankProcess> bank_a_;
  std::unique_ptr<BankProcess> bank_b_;
};

// The database dies before prepare: the open transaction is gone, the
// participant votes no, and nothing moves anywhere.
TEST_F(DatabaseOutageTest, DownBeforePrepareVotesNo) {
  std::string id = Stage(30);
  ASSERT_TRUE(pg_->Stop(/*immediate=*/true).ok());
  HttpResult c = Commit(coord_->url(), id);
  ASSERT_EQ(c.status, 200) << c.Describe();
  EXPECT_EQ(c.json["state"], "aborted");
  ASSERT_TRUE(pg_->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return GetTxn(coord_->url(), id).json.value("completed", false); }, 30s))
      << GetTxn(coord_->url(), id).body << bank_a_->LogTail();
  EXPECT_EQ(bank_b_->Balance("bob"), 100);
  EXPECT_TRUE(WaitFor([&] { return bank_a_->Balance("alice") == 100; }, 30s));
  EXPECT_EQ(CountPreparedXacts(db_uri_, "verdict:"), 0);
}

// The database dies after the participant prepared: the commit decision stands,
// phase two is retried until the database is back, and then it is applied.
TEST_F(DatabaseOutageTest, DownDuringPhaseTwoIsRetriedNeverLost) {
  coord_->options().env = {{"VERDICT_FAILPOINTS", "coordinator.after_decision_log=sleep(1500)"}};
  ASSERT_TRUE(coord_->Restart());
  std::string id = Stage(30);
  HttpResult commit;
  std::thread committer([&] { commit = Commit(coord_->url(), id); });
  ASSERT_TRUE(WaitFor([&] { return GetTxn(coord_->url(), id).json.value("state", "") == "committing"; },
                      10s));
  ASSERT_TRUE(pg_->Stop(/*immediate=*/true).ok());
  committer.join();
  ASSERT_EQ(commit.status, 200) << commit.Describe();
  EXPECT_EQ(commit.json["state"], "committed");
  EXPECT_EQ(commit.json["completed"], false);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(GetTxn(coord_->url(), id).json["completed"], false);
  ASSERT_TRUE(pg_->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return GetTxn(coord_->url(), id).json.value("completed", false); }, 30s))
      << GetTxn(coord_->url(), id).body << bank_a_->LogTail();
  EXPECT_EQ(bank_a_->Balance("alice"), 70);
  EXPECT_EQ(bank_b_->Balance("bob"), 130);
  EXPECT_EQ(CountPreparedXacts(db_uri_, "verdict:"), 0);
}

}  // namespace
}  // namespace verdict::testing
