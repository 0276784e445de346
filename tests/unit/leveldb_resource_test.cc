// LevelDbResource: locking, the prepare/commit/abort life cycle, durability
// across reopen, stale-work abort and outcome forgetting.
#include "verdict/participant/leveldb_resource.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>

#include <fstream>
#include <thread>

#include "participant_test_util.h"

namespace verdict::participant {
namespace {

using testutil::ManualClock;
using testutil::ScopedTempDir;

// Stages `value` for `key` in `txn` regardless of the current value.
Status Put(LevelDbResource& r, const std::string& txn, const std::string& key,
           const std::string& value) {
  return r.Update(txn, key, [&](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
    return std::optional<std::string>(value);
  });
}

// Stages current + delta (absent = 0) for `key` in `txn`.
Status Add(LevelDbResource& r, const std::string& txn, const std::string& key, int delta) {
  return r.Update(txn, key, [&](const std::optional<std::string>& cur) -> Result<std::optional<std::string>> {
    int v = cur ? std::stoi(*cur) : 0;
    return std::optional<std::string>(std::to_string(v + delta));
  });
}

TxnRecord Record(const std::string& txn) {
  TxnRecord r;
  r.txn_id = txn;
  r.protocol = "3pc";
  r.coordinator = "http://127.0.0.1:7070";
  r.peers = {"http://127.0.0.1:9001", "http://127.0.0.1:9002"};
  r.prepared_at_ms = 1234;
  return r;
}

std::optional<std::string> Committed(LevelDbResource& r, const std::string& key) {
  Result<std::optional<std::string>> v = r.ReadCommitted(key);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : std::nullopt;
}

LocalState StateOf(LevelDbResource& r, const std::string& txn) {
  Result<LocalState> s = r.GetState(txn);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : LocalState::kUnknown;
}

class LevelDbResourceTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(std::chrono::milliseconds lock_wait = std::chrono::milliseconds(100)) {
    resource_.reset();
    LevelDbResourceOptions options;
    options.lock_wait = lock_wait;
    options.clock = &clock_;
    auto r = LevelDbResource::Open(dir_.Sub("db"), options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    resource_ = std::move(r).value();
  }

  LevelDbResource& r() { return *resource_; }

  ScopedTempDir dir_;
  ManualClock clock_{1'000'000};
  std::unique_ptr<LevelDbResource> resource_;
};

TEST_F(LevelDbResourceTest, InsertAndReadCommitted) {
  EXPECT_EQ(Committed(r(), "a"), std::nullopt);
  ASSERT_TRUE(r().Insert("a", "1").ok());
  EXPECT_EQ(Committed(r(), "a"), "1");
  Status again = r().Insert("a", "2");
  EXPECT_EQ(again.code(), StatusCode::kConflict);
  EXPECT_EQ(again.message().rfind("exists:", 0), 0u) << again.message();
  EXPECT_EQ(Committed(r(), "a"), "1");
  EXPECT_EQ(r().Insert("", "x").code(), StatusCode::kInvalidArgument);
}

TEST_F(LevelDbResourceTest, InsertRefusesKeyLockedByTxn) {
  ASSERT_TRUE(Put(r(), "t1", "k", "v").ok());
  Status s = r().Insert("k", "other");
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(s.message().rfind("locked:", 0), 0u) << s.message();
}

TEST_F(LevelDbResourceTest, PrepareCommitAppliesStagedWrites) {
  ASSERT_TRUE(r().Insert("a", "10").ok());
  ASSERT_TRUE(Add(r(), "t1", "a", 5).ok());
  ASSERT_TRUE(Add(r(), "t1", "a", 1).ok());  // reads its own staged value
  ASSERT_TRUE(Put(r(), "t1", "b", "new").ok());
  EXPECT_EQ(Committed(r(), "a"), "10");  // staged, not visible
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kActive);

  Result<Vote> vote = r().Prepare(Record("t1"));
  ASSERT_TRUE(vote.ok());
  EXPECT_EQ(*vote, Vote::kYes);
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kPrepared);
  // A repeated prepare gets the same vote; business work is refused now.
  EXPECT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  Status late = Add(r(), "t1", "a", 1);
  EXPECT_EQ(late.code(), StatusCode::kConflict);
  EXPECT_EQ(late.message().rfind("txn_not_active:", 0), 0u) << late.message();

  ASSERT_TRUE(r().Commit("t1").ok());
  EXPECT_EQ(Committed(r(), "a"), "16");
  EXPECT_EQ(Committed(r(), "b"), "new");
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kCommitted);
  EXPECT_EQ(r().LockedKeyCount(), 0u);
  // Idempotent; a finished txn refuses work; abort of a committed txn is a conflict.
  EXPECT_TRUE(r().Commit("t1").ok());
  EXPECT_EQ(Add(r(), "t1", "a", 1).code(), StatusCode::kConflict);
  EXPECT_EQ(r().Abort("t1").code(), StatusCode::kConflict);
  EXPECT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
}

TEST_F(LevelDbResourceTest, StagedDeleteRemovesKey) {
  ASSERT_TRUE(r().Insert("a", "1").ok());
  ASSERT_TRUE(r().Update("t1", "a", [](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
    return std::optional<std::string>();
  }).ok());
  ASSERT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  ASSERT_TRUE(r().Commit("t1").ok());
  EXPECT_EQ(Committed(r(), "a"), std::nullopt);
}

TEST_F(LevelDbResourceTest, AbortDiscardsWorkAndRefusesLaterWork) {
  ASSERT_TRUE(r().Insert("a", "10").ok());
  ASSERT_TRUE(Add(r(), "t1", "a", 5).ok());
  ASSERT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  ASSERT_TRUE(r().Abort("t1").ok());
  EXPECT_EQ(Committed(r(), "a"), "10");
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kAborted);
  EXPECT_EQ(r().LockedKeyCount(), 0u);
  EXPECT_TRUE(r().Abort("t1").ok());
  EXPECT_EQ(r().Commit("t1").code(), StatusCode::kConflict);
  EXPECT_EQ(*r().Prepare(Record("t1")), Vote::kNo);
  Status late = Add(r(), "t1", "a", 1);
  EXPECT_EQ(late.code(), StatusCode::kConflict);
  EXPECT_EQ(late.message().rfind("txn_not_active:", 0), 0u);
}

TEST_F(LevelDbResourceTest, UnknownTxnsAreFineForPhaseTwoAndVoteNo) {
  EXPECT_TRUE(r().Commit("never").ok());
  EXPECT_EQ(StateOf(r(), "never"), LocalState::kUnknown);
  EXPECT_TRUE(r().Abort("never-2").ok());
  EXPECT_EQ(StateOf(r(), "never-2"), LocalState::kAborted);

  // Prepare of an unknown txn votes no and remembers it as aborted, so a late
  // business call cannot resurrect it.
  EXPECT_EQ(*r().Prepare(Record("lost")), Vote::kNo);
  EXPECT_EQ(StateOf(r(), "lost"), LocalState::kAborted);
  EXPECT_EQ(Put(r(), "lost", "k", "v").code(), StatusCode::kConflict);
  EXPECT_EQ(r().Precommit("lost").code(), StatusCode::kConflict);
}

TEST_F(LevelDbResourceTest, ReadOnlyVoteReleasesLocks) {
  ASSERT_TRUE(r().Insert("a", "1").ok());
  // A failing update that leaves nothing staged.
  Status failed = r().Update("t1", "a", [](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
    return Status::Conflict("nope: refused");
  });
  EXPECT_EQ(failed.message(), "nope: refused");
  EXPECT_EQ(r().LockOwner("a"), "");  // the lock this call took is released
  EXPECT_EQ(*r().Prepare(Record("t1")), Vote::kReadOnly);
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kUnknown);
  EXPECT_EQ(r().LockedKeyCount(), 0u);
}

TEST_F(LevelDbResourceTest, FailedUpdateKeepsLockItAlreadyHeld) {
  ASSERT_TRUE(r().Insert("a", "1").ok());
  ASSERT_TRUE(Add(r(), "t1", "a", 1).ok());
  Status failed = r().Update("t1", "a", [](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
    return Status::Conflict("nope: refused");
  });
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(r().LockOwner("a"), "t1");
  ASSERT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  ASSERT_TRUE(r().Commit("t1").ok());
  EXPECT_EQ(Committed(r(), "a"), "2");
}

TEST_F(LevelDbResourceTest, ConflictingTxnTimesOutWithLockTimeout) {
  ASSERT_TRUE(Put(r(), "t1", "k", "1").ok());
  auto start = std::chrono::steady_clock::now();
  Status s = Put(r(), "t2", "k", "2");
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(s.message().rfind("lock_timeout:", 0), 0u) << s.message();
  EXPECT_GE(waited, std::chrono::milliseconds(90));
  EXPECT_EQ(r().LockOwner("k"), "t1");
}

TEST_F(LevelDbResourceTest, ConflictingTxnWaitsAndSeesCommittedValue) {
  // t2 waits (lock_wait 5s) while prepared t1 holds the key; t1 commits after
  // ~50ms and t2 must then build on t1's committed value.
  Reopen(std::chrono::milliseconds(5'000));
  ASSERT_TRUE(r().Insert("k", "0").ok());
  ASSERT_TRUE(Add(r(), "t1", "k", 1).ok());
  ASSERT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  std::thread t1([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(r().Commit("t1").ok());
  });
  auto start = std::chrono::steady_clock::now();
  Status s = Add(r(), "t2", "k", 1);
  auto waited = std::chrono::steady_clock::now() - start;
  t1.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GE(waited, std::chrono::milliseconds(40));
  ASSERT_EQ(*r().Prepare(Record("t2")), Vote::kYes);
  ASSERT_TRUE(r().Commit("t2").ok());
  EXPECT_EQ(Committed(r(), "k"), "2");
}

TEST_F(LevelDbResourceTest, ConcurrentIncrementsLoseNoUpdate) {
  ASSERT_TRUE(r().Insert("k", "0").ok());
  constexpr int kThreads = 8, kPerThread = 25;
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string txn = "t" + std::to_string(t) + "-" + std::to_string(i);
        Status s = Add(r(), txn, "k", 1);
        if (!s.ok()) {
          r().Abort(txn).IgnoreError();
          continue;
        }
        if (*r().Prepare(Record(txn)) == Vote::kYes && r().Commit(txn).ok()) ++committed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(committed.load(), 0);
  EXPECT_EQ(Committed(r(), "k"), std::to_string(committed.load()));
  EXPECT_EQ(r().LockedKeyCount(), 0u);
}

TEST_F(LevelDbResourceTest, PreparedSurvivesReopenWithLocksAndRecord) {
  ASSERT_TRUE(r().Insert("a", "10").ok());
  ASSERT_TRUE(Add(r(), "t1", "a", -3).ok());
  ASSERT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  ASSERT_TRUE(Add(r(), "t2", "b", 1).ok());
  ASSERT_EQ(*r().Prepare(Record("t2")), Vote::kYes);
  ASSERT_TRUE(r().Precommit("t2").ok());
  ASSERT_TRUE(Put(r(), "t3", "c", "x").ok());  // staged only: lost on restart

  Reopen();

  auto in_doubt = r().ListInDoubt();
  ASSERT_TRUE(in_doubt.ok());
  ASSERT_EQ(in_doubt->size(), 2u);
  for (const TxnRecord& rec : *in_doubt) {
    EXPECT_EQ(rec.protocol, "3pc");
    EXPECT_EQ(rec.coordinator, "http://127.0.0.1:7070");
    EXPECT_EQ(rec.peers, Record("x").peers);
    EXPECT_EQ(rec.prepared_at_ms, 1234);
    EXPECT_EQ(rec.state, rec.txn_id == "t1" ? LocalState::kPrepared : LocalState::kPrecommitted);
  }
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kPrepared);
  EXPECT_EQ(StateOf(r(), "t2"), LocalState::kPrecommitted);
  // The prepared txn's key is locked again.
  EXPECT_EQ(r().LockOwner("a"), "t1");
  EXPECT_EQ(Add(r(), "other", "a", 1).code(), StatusCode::kConflict);
  // Work staged but not prepared is gone: its prepare votes no.
  EXPECT_EQ(*r().Prepare(Record("t3")), Vote::kNo);
  EXPECT_EQ(Committed(r(), "c"), std::nullopt);

  ASSERT_TRUE(r().Commit("t1").ok());
  ASSERT_TRUE(r().Commit("t2").ok());
  EXPECT_EQ(Committed(r(), "a"), "7");
  EXPECT_EQ(Committed(r(), "b"), "1");

  Reopen();
  EXPECT_TRUE(r().ListInDoubt()->empty());
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kCommitted);  // outcome is on disk
  EXPECT_EQ(Committed(r(), "a"), "7");
}

TEST_F(LevelDbResourceTest, AbortedOutcomeSurvivesReopen) {
  ASSERT_TRUE(Put(r(), "t1", "k", "v").ok());
  ASSERT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  ASSERT_TRUE(r().Abort("t1").ok());
  Reopen();
  EXPECT_TRUE(r().ListInDoubt()->empty());
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kAborted);
  EXPECT_EQ(Put(r(), "t1", "k", "v").code(), StatusCode::kConflict);
}

TEST_F(LevelDbResourceTest, PrecommitRequiresPrepared) {
  ASSERT_TRUE(Put(r(), "t1", "k", "v").ok());
  EXPECT_EQ(r().Precommit("t1").code(), StatusCode::kConflict);  // active, not prepared
  ASSERT_EQ(*r().Prepare(Record("t1")), Vote::kYes);
  EXPECT_TRUE(r().Precommit("t1").ok());
  EXPECT_TRUE(r().Precommit("t1").ok());
  EXPECT_EQ(StateOf(r(), "t1"), LocalState::kPrecommitted);
}

TEST_F(LevelDbResourceTest, OnePhaseCommitOfActiveTxnAppliesWork) {
  ASSERT_TRUE(Put(r(), "t1", "k", "v").ok());
  ASSERT_TRUE(r().Commit("t1").ok());
  EXPECT_EQ(Committed(r(), "k"), "v");
}

TEST_F(LevelDbResourceTest, AbortStaleActiveAbortsOnlyOldUnpreparedWork) {
  clock_.Set(1'000);
  ASSERT_TRUE(Put(r(), "old", "a", "1").ok());
  ASSERT_TRUE(Put(r(), "old-prepared", "b", "1").ok());
  ASSERT_EQ(*r().Prepare(Record("old-prepared")), Vote::kYes);
  clock_.Set(5'000);
  ASSERT_TRUE(Put(r(), "young", "c", "1").ok());

  EXPECT_TRUE(r().AbortStaleActive(500).empty());
  std::vector<std::string> aborted = r().AbortStaleActive(2'000);
  EXPECT_EQ(aborted, std::vector<std::string>{"old"});
  EXPECT_EQ(StateOf(r(), "old"), LocalState::kAborted);
  EXPECT_EQ(StateOf(r(), "old-prepared"), LocalState::kPrepared);  // never decides alone
  EXPECT_EQ(StateOf(r(), "young"), LocalState::kActive);
  EXPECT_EQ(r().LockOwner("a"), "");
}

TEST_F(LevelDbResourceTest, ForgetOutcomesBeforeDropsOldOutcomes) {
  clock_.Set(10'000);
  ASSERT_TRUE(Put(r(), "t-old", "a", "1").ok());
  ASSERT_TRUE(r().Commit("t-old").ok());
  clock_.Set(20'000);
  ASSERT_TRUE(r().Abort("t-new").ok());

  r().ForgetOutcomesBefore(15'000);
  EXPECT_EQ(StateOf(r(), "t-old"), LocalState::kUnknown);
  EXPECT_EQ(StateOf(r(), "t-new"), LocalState::kAborted);
  Reopen();
  EXPECT_EQ(StateOf(r(), "t-old"), LocalState::kUnknown);
  EXPECT_EQ(StateOf(r(), "t-new"), LocalState::kAborted);
  EXPECT_EQ(Committed(r(), "a"), "1");  // data is untouched
}

TEST(LevelDbResourceOpenTest, UnusableDirIsAnIoError) {
  ScopedTempDir dir;
  std::string file = dir.Sub("a-file");
  std::ofstream(file) << "x";
  auto r = LevelDbResource::Open(file);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find(file), std::string::npos);

  auto empty = LevelDbResource::Open("");
  EXPECT_FALSE(empty.ok());
}

TEST(LevelDbResourceOpenTest, SecondOpenOfSameDirFails) {
  ScopedTempDir dir;
  auto first = LevelDbResource::Open(dir.Sub("db"));
  ASSERT_TRUE(first.ok());
  auto second = LevelDbResource::Open(dir.Sub("db"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIoError);
}

TEST(LevelDbResourceOpenTest, CorruptPreparedRecordFailsOpen) {
  ScopedTempDir dir;
  { ASSERT_TRUE(LevelDbResource::Open(dir.Sub("db")).ok()); }
  {
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), dir.Sub("db"), &db).ok());
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), "p/t1", std::string("\x01garbage", 8)).ok());
    delete db;
  }
  auto r = LevelDbResource::Open(dir.Sub("db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("t1"), std::string::npos);
}

TEST(LevelDbResourceOpenTest, ForeignDatabaseIsRefused) {
  ScopedTempDir dir;
  {
    leveldb::DB* db = nullptr;
    leveldb::Options o;
    o.create_if_missing = true;
    ASSERT_TRUE(leveldb::DB::Open(o, dir.Sub("db"), &db).ok());
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), "something", "else").ok());
    delete db;
  }
  auto r = LevelDbResource::Open(dir.Sub("db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace verdict::participant
