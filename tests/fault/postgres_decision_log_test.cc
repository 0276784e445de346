// verdictd with its decision log in PostgreSQL (--log-backend postgres):
// crashes around the decision write, restart, and the same checks as the
// LevelDB crash tests. Banks on both stores.
#include <gtest/gtest.h>

#include "support/cluster_fixture.h"

namespace verdict::testing {
namespace {

struct LogCrashCase {
  std::string failpoint;
  std::string expect;  // "committed" | "aborted"
};

void PrintTo(const LogCrashCase& c, std::ostream* os) { *os << c.failpoint << " -> " << c.expect; }

class PostgresLogCrashTest : public ClusterFixture,
                             public ::testing::WithParamInterface<std::tuple<Store, LogCrashCase>> {
 protected:
  Store store() const override { return std::get<0>(GetParam()); }
  bool postgres_decision_log() const override { return true; }
};

TEST_P(PostgresLogCrashTest, CoordinatorCrashAndRestart) {
  const LogCrashCase& c = std::get<1>(GetParam());
  coord_->options().env = {{"VERDICT_FAILPOINTS", c.failpoint + "=crash"}};
  StartAll();
  ASSERT_EQ(bank_a_->CreateAccount("alice", 100).status, 201);
  ASSERT_EQ(bank_b_->CreateAccount("bob", 100).status, 201);
  std::string id = StageTransfer("2pc", "alice", "bob", 30);
  EXPECT_EQ(Commit(coord_->url(), id).status, 0) << "the coordinator died during the call";
  ASSERT_EQ(coord_->WaitExit(10s), 137) << coord_->LogTail();
  ASSERT_TRUE(coord_->Restart(EnvMap{}));
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), c.expect) << DumpState(id);
  ExpectNothingInDoubt();
  // The record lives in PostgreSQL, not in the (empty) data dir.
  HttpResult t = GetTxn(coord_->url(), id);
  EXPECT_EQ(t.json["completed"], true) << t.body;
}

INSTANTIATE_TEST_SUITE_P(
    Crashes, PostgresLogCrashTest,
    ::testing::Combine(::testing::Values(Store::kEmbedded, Store::kPostgres),
                       ::testing::Values(LogCrashCase{"coordinator.before_decision_log", "aborted"},
                                         LogCrashCase{"coordinator.after_decision_log", "committed"},
                                         LogCrashCase{"coordinator.after_first_phase2_send",
                                                      "committed"})),
    [](const ::testing::TestParamInfo<std::tuple<Store, LogCrashCase>>& info) {
      return TestNameOf(StoreName(std::get<0>(info.param)) + "_" +
                        std::get<1>(info.param).failpoint);
    });

class PostgresLogTest : public ClusterFixture, public ::testing::WithParamInterface<Store> {
 protected:
  Store store() const override { return GetParam(); }
  bool postgres_decision_log() const override { return true; }
};

TEST_P(PostgresLogTest, IdempotencyKeySurvivesRestart) {
  StartAll();
  Headers key = {{"Idempotency-Key", "pg-log-key"}};
  HttpResult a = CreateTxn(coord_->url(), nlohmann::json::object(), key);
  ASSERT_EQ(a.status, 201) << a.Describe();
  coord_->Kill9();
  ASSERT_TRUE(coord_->Restart());
  HttpResult b = CreateTxn(coord_->url(), nlohmann::json::object(), key);
  EXPECT_EQ(b.json["id"], a.json["id"]);
  EXPECT_EQ(b.json["state"], "aborted") << "undecided before the crash: presumed abort";
}

INSTANTIATE_TEST_SUITE_P(Stores, PostgresLogTest,
                         ::testing::Values(Store::kEmbedded, Store::kPostgres),
                         [](const ::testing::TestParamInfo<Store>& info) {
                           return StoreName(info.param);
                         });

}  // namespace
}  // namespace verdict::testing
