// The DecisionLog contract against a real PostgreSQL (one fresh database per test).
#include <gtest/gtest.h>

#include "support/decision_log_contract.h"
#include "support/harness.h"
#include "support/postgres_cluster.h"

namespace verdict::coordinator {
namespace {

LogBackend PostgresBackend() {
  return {"Postgres", [] { return testing::NewTestDatabase("decision_log"); },
          [](const std::string& uri) { return OpenPostgresDecisionLog(uri); }};
}

INSTANTIATE_TEST_SUITE_P(Backends, DecisionLogContractTest, ::testing::Values(PostgresBackend()),
                         BackendName);

TEST(PostgresDecisionLogTest, UnreachableServerIsAOneLineError) {
  int port = testing::FreePort();
  auto opened = OpenPostgresDecisionLog("postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/x");
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().message().find('\n'), std::string::npos) << opened.status().message();
  EXPECT_NE(opened.status().message().find("cannot connect"), std::string::npos);
}

TEST(PostgresDecisionLogTest, TwoCoordinatorsShareOneLog) {
  std::string uri = testing::NewTestDatabase("decision_log_shared");
  auto a = OpenPostgresDecisionLog(uri);
  auto b = OpenPostgresDecisionLog(uri);
  ASSERT_TRUE(a.ok() && b.ok());
  Transaction t;
  t.id = "shared-1";
  t.state = TxnState::kCommitting;
  ASSERT_TRUE((*a)->Write(t, true).ok());
  auto seen = (*b)->Read("shared-1");
  ASSERT_TRUE(seen.ok() && seen->has_value());
  EXPECT_EQ((*seen)->state, TxnState::kCommitting);
}

}  // namespace
}  // namespace verdict::coordinator
