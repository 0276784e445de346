#include "verdict/coordinator/txn_state.h"

#include <gtest/gtest.h>

namespace verdict::coordinator {
namespace {

constexpr TxnState kAll[] = {TxnState::kActive,     TxnState::kPreparing, TxnState::kPrecommitted,
                             TxnState::kCommitting, TxnState::kCommitted, TxnState::kAborting,
                             TxnState::kAborted};

TEST(TxnStateTest, NamesRoundTrip) {
  for (TxnState s : kAll) {
    auto parsed = ParseTxnState(TxnStateName(s));
    ASSERT_TRUE(parsed.has_value()) << TxnStateName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_FALSE(ParseTxnState("in_doubt").has_value());
  EXPECT_EQ(ParseProtocol("3pc"), Protocol::k3pc);
  EXPECT_FALSE(ParseProtocol("4pc").has_value());
  EXPECT_EQ(ParseVote("read_only"), Vote::kReadOnly);
  EXPECT_FALSE(ParseVote("maybe").has_value());
}

TEST(TxnStateTest, TwoPhaseCommitEdges) {
  auto p = Protocol::k2pc;
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kActive, TxnState::kPreparing));
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kActive, TxnState::kAborting));
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kPreparing, TxnState::kCommitting));
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kPreparing, TxnState::kAborting));
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kCommitting, TxnState::kCommitted));
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kAborting, TxnState::kAborted));
  // 2PC never precommits, and nothing leaves a final state.
  EXPECT_FALSE(IsLegalTransition(p, TxnState::kPreparing, TxnState::kPrecommitted));
  EXPECT_FALSE(IsLegalTransition(p, TxnState::kActive, TxnState::kCommitting));
  for (TxnState to : kAll) {
    EXPECT_FALSE(IsLegalTransition(p, TxnState::kCommitted, to));
    EXPECT_FALSE(IsLegalTransition(p, TxnState::kAborted, to));
  }
  // A decided commit can never turn into an abort.
  EXPECT_FALSE(IsLegalTransition(p, TxnState::kCommitting, TxnState::kAborting));
}

TEST(TxnStateTest, ThreePhaseCommitEdges) {
  auto p = Protocol::k3pc;
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kPreparing, TxnState::kPrecommitted));
  EXPECT_TRUE(IsLegalTransition(p, TxnState::kPrecommitted, TxnState::kCommitting));
  EXPECT_FALSE(IsLegalTransition(p, TxnState::kPreparing, TxnState::kCommitting));
  EXPECT_FALSE(IsLegalTransition(p, TxnState::kPrecommitted, TxnState::kAborting));
}

TEST(TxnStateTest, DecisionsAndPublicAnswers) {
  EXPECT_EQ(DecisionOf(TxnState::kActive), Decision::kNone);
  EXPECT_EQ(DecisionOf(TxnState::kPreparing), Decision::kNone);
  EXPECT_EQ(DecisionOf(TxnState::kPrecommitted), Decision::kPrecommit);
  EXPECT_EQ(DecisionOf(TxnState::kCommitting), Decision::kCommit);
  EXPECT_EQ(DecisionOf(TxnState::kAborted), Decision::kAbort);
  EXPECT_EQ(PublicDecision(TxnState::kPreparing), "pending");
  EXPECT_EQ(PublicDecision(TxnState::kPrecommitted), "commit");
  EXPECT_EQ(PublicDecision(TxnState::kCommitted), "commit");
  EXPECT_EQ(PublicDecision(TxnState::kAborting), "abort");
}

}  // namespace
}  // namespace verdict::coordinator
