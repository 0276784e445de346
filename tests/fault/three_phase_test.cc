// 3PC under crashes: the coordinator dies and stays dead, and the
// participants finish on their own by the termination protocol; participants
// crash and restart in each 3PC state. Real processes, real kill -9.
#include <gtest/gtest.h>

#include <thread>

#include "support/cluster_fixture.h"

namespace verdict::testing {
namespace {

class ThreePhaseTest : public ClusterFixture, public ::testing::WithParamInterface<Store> {
 protected:
  Store store() const override { return GetParam(); }

  // The local state a bank reports for `id` (GET /txn-state), "" if unreachable.
  static std::string LocalState(BankProcess& bank, const std::string& id) {
    HttpResult r = HttpGet(bank.url() + "/txn-state?txn_id=" + id);
    return r.status == 200 ? r.json.value("state", "") : "";
  }

  // Waits for both banks to apply the same outcome with the coordinator gone.
  // Returns "committed", "aborted" or "" (timeout).
  std::string AwaitParticipantsAgree(const std::string& id, int64_t committed_a,
                                     int64_t committed_b) {
    std::string outcome;
    WaitFor([&] {
      auto a = bank_a_->Balance("alice");
      auto b = bank_b_->Balance("bob");
      std::string sa = LocalState(*bank_a_, id);
      std::string sb = LocalState(*bank_b_, id);
      if (sa != sb || (sa != "committed" && sa != "aborted")) return false;
      if (sa == "committed" && a == committed_a && b == committed_b) outcome = sa;
      if (sa == "aborted" && a == 100 && b == 100) outcome = sa;
      return !outcome.empty();
    }, 30s, 100ms);
    return outcome;
  }

  void Setup(const std::string& coordinator_failpoint) {
    coord_->options().env = {{"VERDICT_FAILPOINTS", coordinator_failpoint}};
    StartAll();
    ASSERT_EQ(bank_a_->CreateAccount("alice", 100).status, 201);
    ASSERT_EQ(bank_b_->CreateAccount("bob", 100).status, 201);
  }

  std::string Dump(const std::string& id) {
    return "bank-a: " + LocalState(*bank_a_, id) + ", bank-b: " + LocalState(*bank_b_, id) +
           "\n--- bank-a ---\n" + bank_a_->LogTail(25) + "--- bank-b ---\n" + bank_b_->LogTail(25);
  }
};

// Every participant acknowledged precommit, then the coordinator died for
// good: the participants time out, cannot reach it, and commit on their own.
TEST_P(ThreePhaseTest, CoordinatorKilledAfterPrecommitParticipantsCommit) {
  Setup("coordinator.after_precommit_acked=crash");
  std::string id = StageTransfer("3pc", "alice", "bob", 30);
  EXPECT_EQ(Commit(coord_->url(), id).status, 0);
  ASSERT_EQ(coord_->WaitExit(10s), 137);
  EXPECT_EQ(AwaitParticipantsAgree(id, 70, 130), "committed") << Dump(id);
}

// The coordinator died before logging the precommit decision: nobody can be
// precommitted, so the participants abort on their own.
TEST_P(ThreePhaseTest, CoordinatorKilledBeforePrecommitParticipantsAbort) {
  Setup("coordinator.before_decision_log=crash");
  std::string id = StageTransfer("3pc", "alice", "bob", 30);
  EXPECT_EQ(Commit(coord_->url(), id).status, 0);
  ASSERT_EQ(coord_->WaitExit(10s), 137);
  EXPECT_EQ(AwaitParticipantsAgree(id, 70, 130), "aborted") << Dump(id);
  if (!pg_uri_.empty()) {
    EXPECT_EQ(CountPreparedXacts(pg_uri_, "verdict:"), 0);
  }
}

// The precommit decision is logged but never sent, and the coordinator stays
// dead: every participant is only prepared, so termination aborts. When the
// coordinator does come back, recovery learns of the abort and agrees.
TEST_P(ThreePhaseTest, PrecommitLoggedButNotSentThenCoordinatorReturns) {
  Setup("coordinator.after_decision_log=crash");
  std::string id = StageTransfer("3pc", "alice", "bob", 30);
  EXPECT_EQ(Commit(coord_->url(), id).status, 0);
  ASSERT_EQ(coord_->WaitExit(10s), 137);
  ASSERT_EQ(AwaitParticipantsAgree(id, 70, 130), "aborted") << Dump(id);
  ASSERT_TRUE(coord_->Restart(EnvMap{}));
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), "aborted") << DumpState(id);
  EXPECT_EQ(bank_a_->Balance("alice"), 100);
  ExpectNothingInDoubt();
}

// A participant crashes while precommitted and restarts while the coordinator
// is dead: it finds its durable precommit and commits with its peer.
TEST_P(ThreePhaseTest, PrecommittedParticipantRestartsWithCoordinatorDead) {
  Setup("coordinator.after_precommit_acked=crash");
  std::string id = StageTransfer("3pc", "alice", "bob", 30);
  Commit(coord_->url(), id);
  ASSERT_EQ(coord_->WaitExit(10s), 137);
  bank_a_->Kill9();
  ASSERT_TRUE(bank_a_->Restart());
  EXPECT_EQ(AwaitParticipantsAgree(id, 70, 130), "committed") << Dump(id);
}

// A participant crashes right after making its precommit durable (before
// acknowledging it) and restarts: the coordinator, alive, commits everyone.
TEST_P(ThreePhaseTest, ParticipantCrashesAfterPrecommitDurable) {
  Setup("");
  bank_a_->options().env = {{"VERDICT_FAILPOINTS", "participant.after_precommit_durable=crash"}};
  ASSERT_TRUE(bank_a_->Restart());
  std::string id = StageTransfer("3pc", "alice", "bob", 30);
  HttpResult commit = Commit(coord_->url(), id);
  ASSERT_EQ(commit.status, 200) << commit.Describe();
  EXPECT_EQ(commit.json["state"], "committed") << "a logged precommit means commit";
  ASSERT_EQ(bank_a_->WaitExit(10s), 137);
  ASSERT_TRUE(bank_a_->Restart(EnvMap{}));
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), "committed") << DumpState(id);
  EXPECT_EQ(bank_a_->Balance("alice"), 70);
  ExpectNothingInDoubt();
}

// A participant crashes with its work staged but unprepared (state active):
// the work is gone, so it votes no and the transaction aborts everywhere.
TEST_P(ThreePhaseTest, ParticipantCrashesWhileActive) {
  Setup("");
  std::string id = StageTransfer("3pc", "alice", "bob", 30);
  bank_a_->Kill9();
  ASSERT_TRUE(bank_a_->Restart());
  HttpResult commit = Commit(coord_->url(), id);
  ASSERT_EQ(commit.status, 200) << commit.Describe();
  EXPECT_EQ(commit.json["state"], "aborted");
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), "aborted") << DumpState(id);
  EXPECT_EQ(bank_a_->Balance("alice"), 100);
  EXPECT_EQ(bank_b_->Balance("bob"), 100);
  ExpectNothingInDoubt();
}

// A participant crashes after applying the commit but before acknowledging it:
// after restart the re-sent commit is a no-op and the transaction completes.
TEST_P(ThreePhaseTest, ParticipantCrashesAfterCommitApplied) {
  Setup("");
  bank_a_->options().env = {{"VERDICT_FAILPOINTS", "participant.after_commit_apply=crash"}};
  ASSERT_TRUE(bank_a_->Restart());
  std::string id = StageTransfer("3pc", "alice", "bob", 30);
  HttpResult commit = Commit(coord_->url(), id);
  ASSERT_EQ(commit.status, 200) << commit.Describe();
  EXPECT_EQ(commit.json["state"], "committed");
  ASSERT_EQ(bank_a_->WaitExit(10s), 137);
  ASSERT_TRUE(bank_a_->Restart(EnvMap{}));
  EXPECT_EQ(AwaitSettled(id, {{"alice", "bob"}}, 200), "committed") << DumpState(id);
  EXPECT_EQ(bank_a_->Balance("alice"), 70) << "the commit must be applied exactly once";
  EXPECT_EQ(bank_b_->Balance("bob"), 130);
  ExpectNothingInDoubt();
}

INSTANTIATE_TEST_SUITE_P(Stores, ThreePhaseTest,
                         ::testing::Values(Store::kEmbedded, Store::kPostgres),
                         [](const ::testing::TestParamInfo<Store>& info) {
                           return StoreName(info.param);
                         });

}  // namespace
}  // namespace verdict::testing
