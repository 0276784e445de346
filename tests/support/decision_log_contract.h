// The DecisionLog contract (decision_log.h), as tests every backend must
// pass. A test file instantiates DecisionLogContractTest with a backend:
//   INSTANTIATE_TEST_SUITE_P(LevelDb, DecisionLogContractTest,
//                            ::testing::Values(LevelDbBackend()), BackendName);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "verdict/coordinator/decision_log.h"

namespace verdict::coordinator {

// Opens the backend's log at `where` (a directory or a database URI), the same
// place every time Reopen() is called within one test.
struct LogBackend {
  std::string name;
  std::function<std::string()> new_place;  // a fresh, empty place per test
  std::function<Result<std::unique_ptr<DecisionLog>>(const std::string& where)> open;
  std::function<void(const std::string& where)> cleanup = [](const std::string&) {};
};

inline std::string BackendName(const ::testing::TestParamInfo<LogBackend>& info) {
  return info.param.name;
}

class DecisionLogContractTest : public ::testing::TestWithParam<LogBackend> {
 protected:
  void SetUp() override {
    place_ = GetParam().new_place();
    Reopen();
  }
  void TearDown() override {
    log_.reset();
    GetParam().cleanup(place_);
  }
  void Reopen() {
    log_.reset();
    auto opened = GetParam().open(place_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    log_ = std::move(opened).value();
  }
  static Transaction Txn(const std::string& id, TxnState state) {
    Transaction t;
    t.id = id;
    t.state = state;
    t.timeout_ms = 1000;
    t.created_at_ms = 1'700'000'000'000;
    t.participants.push_back({"a", "http://127.0.0.1:1", Vote::kYes, false});
    t.participants.push_back({"b", "http://127.0.0.1:2", std::nullopt, true});
    return t;
  }

  std::string place_;
  std::unique_ptr<DecisionLog> log_;
};

TEST_P(DecisionLogContractTest, RecordEncodingRoundTrips) {
  Transaction t = Txn("x1", TxnState::kCommitting);
  t.protocol = Protocol::k3pc;
  t.reason = "why \"quoted\"";
  t.decided_at_ms = 5;
  std::string bytes = EncodeRecord(t);
  ASSERT_EQ(static_cast<uint8_t>(bytes[0]), kRecordFormatVersion);
  Result<Transaction> back = DecodeRecord(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, "x1");
  EXPECT_EQ(back->protocol, Protocol::k3pc);
  EXPECT_EQ(back->state, TxnState::kCommitting);
  EXPECT_EQ(back->reason, t.reason);
  EXPECT_EQ(back->decided_at_ms, 5);
  ASSERT_EQ(back->participants.size(), 2u);
  EXPECT_EQ(back->participants[0].vote, Vote::kYes);
  EXPECT_FALSE(back->participants[1].vote.has_value());
  EXPECT_TRUE(back->participants[1].acked);
}

TEST_P(DecisionLogContractTest, RejectsUnknownVersionAndGarbage) {
  std::string bytes = EncodeRecord(Txn("x", TxnState::kActive));
  bytes[0] = 2;
  EXPECT_EQ(DecodeRecord(bytes).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeRecord("").ok());
  EXPECT_FALSE(DecodeRecord(std::string(1, '\x01') + "{not json").ok());
  EXPECT_FALSE(DecodeRecord(std::string(1, '\x01') + "{\"id\":\"x\"}").ok());
}

TEST_P(DecisionLogContractTest, WritesSurviveReopenAndLatestWins) {
  ASSERT_TRUE(log_->Write(Txn("t1", TxnState::kActive), false).ok());
  ASSERT_TRUE(log_->Write(Txn("t1", TxnState::kCommitting), true, "key-1").ok());
  Reopen();
  auto rec = log_->Read("t1");
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE(rec->has_value());
  EXPECT_EQ((*rec)->state, TxnState::kCommitting);
  auto key = log_->LookupIdempotencyKey("key-1");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->value_or(""), "t1");
  auto missing = log_->Read("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_P(DecisionLogContractTest, IncompleteIndexFollowsCompletion) {
  ASSERT_TRUE(log_->Write(Txn("a", TxnState::kCommitting), true).ok());
  ASSERT_TRUE(log_->Write(Txn("b", TxnState::kAborting), false).ok());
  Transaction done = Txn("c", TxnState::kCommitted);
  done.completed = true;
  done.completed_at_ms = 1000;
  ASSERT_TRUE(log_->Write(done, false).ok());
  std::vector<std::string> ids;
  ASSERT_TRUE(log_->ScanIncomplete([&](Transaction t) {
                ids.push_back(t.id);
                return true;
              }).ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b"}));
  // Completing "a" removes it from the recovery set.
  Transaction a = Txn("a", TxnState::kCommitted);
  a.completed = true;
  a.completed_at_ms = 2000;
  ASSERT_TRUE(log_->Write(a, false).ok());
  ids.clear();
  ASSERT_TRUE(log_->ScanIncomplete([&](Transaction t) {
                ids.push_back(t.id);
                return true;
              }).ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"b"}));
}

TEST_P(DecisionLogContractTest, RetentionDeletesOnlyOldCompletedRecords) {
  for (int i = 0; i < 5; ++i) {
    Transaction t = Txn("old" + std::to_string(i), TxnState::kCommitted);
    t.completed = true;
    t.completed_at_ms = 1000 + i;
    ASSERT_TRUE(log_->Write(t, false, "idem-" + std::to_string(i)).ok());
  }
  Transaction fresh = Txn("fresh", TxnState::kAborted);
  fresh.completed = true;
  fresh.completed_at_ms = 50'000;
  ASSERT_TRUE(log_->Write(fresh, false).ok());
  ASSERT_TRUE(log_->Write(Txn("open", TxnState::kCommitting), true).ok());

  auto deleted = log_->DeleteCompletedBefore(1003);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 3);
  EXPECT_FALSE(log_->Read("old0")->has_value());
  EXPECT_FALSE(log_->LookupIdempotencyKey("idem-0")->has_value());
  EXPECT_TRUE(log_->Read("old3")->has_value());
  EXPECT_TRUE(log_->LookupIdempotencyKey("idem-3")->has_value());
  deleted = log_->DeleteCompletedBefore(100'000);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 3);
  EXPECT_FALSE(log_->Read("fresh")->has_value());
  EXPECT_TRUE(log_->Read("open")->has_value()) << "incomplete records are never deleted";
}

TEST_P(DecisionLogContractTest, ScanAllPagesInIdOrderAfterACursor) {
  for (int i = 0; i < 1200; ++i) {
    char id[16];
    snprintf(id, sizeof(id), "id%05d", i);
    ASSERT_TRUE(log_->Write(Txn(id, TxnState::kActive), false).ok());
  }
  std::vector<std::string> ids;
  ASSERT_TRUE(log_->ScanAll("id00099", [&](Transaction t) {
                ids.push_back(t.id);
                return ids.size() < 1050;
              }).ok());
  ASSERT_EQ(ids.size(), 1050u);
  EXPECT_EQ(ids.front(), "id00100");
  EXPECT_EQ(ids.back(), "id01149");
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
}

}  // namespace verdict::coordinator
