// PostgresResource against a real PostgreSQL server (tests/support/postgres_cluster.h):
// prepare/commit/abort through PREPARE TRANSACTION, idempotency, votes, lock
// conflicts, restart recovery from pg_prepared_xacts, stale-work rollback,
// participant isolation in a shared database, the pool, and a database that
// goes down and comes back.
#include "verdict/participant/postgres_resource.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/postgres_cluster.h"
#include "verdict/common/clock.h"

namespace verdict::participant {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowUnixMs() override { return now_ms_.load(); }
  SteadyTime SteadyNow() override { return SteadyTime(milliseconds(now_ms_.load())); }
  void Set(int64_t now_ms) { now_ms_ = now_ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

TxnRecord Record(const std::string& txn_id, const std::string& protocol = "2pc",
                 std::vector<std::string> peers = {}) {
  TxnRecord r;
  r.txn_id = txn_id;
  r.protocol = protocol;
  r.coordinator = "http://127.0.0.1:7070";
  r.peers = std::move(peers);
  return r;
}

// A table of items (name, qty >= 0) the tests stage work on.
class PostgresResourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uri_ = testing::NewTestDatabase("pg_resource");
    ASSERT_TRUE(testing::ExecSql(uri_,
                                 "CREATE TABLE items (name text PRIMARY KEY,"
                                 " qty bigint NOT NULL CHECK (qty >= 0))")
                    .ok());
  }

  std::unique_ptr<PostgresResource> OpenResource(const std::string& name,
                                                 PostgresResourceOptions opts = {}) {
    opts.participant_name = name;
    Result<std::unique_ptr<PostgresResource>> r = PostgresResource::Open(uri_, std::move(opts));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  static Status Insert(PostgresResource& res, const std::string& txn, const std::string& name,
                       int64_t qty) {
    return res.WithTransaction(txn, [&](pqxx::work& w) {
      w.exec_params0("INSERT INTO items (name, qty) VALUES ($1, $2)", name, qty);
      return Status::Ok();
    });
  }

  static Status Add(PostgresResource& res, const std::string& txn, const std::string& name,
                    int64_t delta) {
    return res.WithTransaction(txn, [&](pqxx::work& w) {
      pqxx::result r =
          w.exec_params("UPDATE items SET qty = qty + $2 WHERE name = $1 RETURNING qty", name, delta);
      if (r.empty()) return Status::NotFound("no item " + name);
      return Status::Ok();
    });
  }

  // Committed quantity seen from an outside connection; -1 when absent.
  int64_t CommittedQty(const std::string& name) {
    pqxx::connection c(uri_);
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params("SELECT qty FROM items WHERE name = $1", name);
    return r.empty() ? -1 : r[0][0].as<int64_t>();
  }

  void SeedItem(const std::string& name, int64_t qty) {
    ASSERT_TRUE(testing::ExecSql(uri_, "INSERT INTO items VALUES ('" + name + "', " +
                                           std::to_string(qty) + ")")
                    .ok());
  }

  std::string uri_;
};

TEST_F(PostgresResourceTest, PrepareThenCommitAppliesWorkOnce) {
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  ASSERT_TRUE(Insert(*res, "t1", "apple", 5).ok());
  ASSERT_TRUE(Add(*res, "t1", "apple", 2).ok());  // second call, same open transaction
  EXPECT_EQ(res->GetState("t1").value(), LocalState::kActive);
  EXPECT_EQ(CommittedQty("apple"), -1);  // not visible outside the transaction

  Result<Vote> vote = res->Prepare(Record("t1"));
  ASSERT_TRUE(vote.ok()) << vote.status().ToString();
  EXPECT_EQ(*vote, Vote::kYes);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:t1"), 1);
  EXPECT_EQ(res->GetState("t1").value(), LocalState::kPrepared);
  EXPECT_EQ(CommittedQty("apple"), -1);  // prepared is still not committed

  ASSERT_TRUE(res->Commit("t1").ok());
  EXPECT_EQ(CommittedQty("apple"), 7);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:"), 0);
  EXPECT_EQ(res->GetState("t1").value(), LocalState::kCommitted);

  // Idempotent: commit again, and a repeated prepare still says yes.
  EXPECT_TRUE(res->Commit("t1").ok());
  EXPECT_EQ(CommittedQty("apple"), 7);
  EXPECT_EQ(res->Prepare(Record("t1")).value(), Vote::kYes);
  // Work under a finished txn id is refused.
  Status again = Add(*res, "t1", "apple", 1);
  EXPECT_EQ(again.code(), StatusCode::kConflict);
  EXPECT_EQ(again.message().rfind("txn_not_active: ", 0), 0u) << again.message();
  EXPECT_EQ(CommittedQty("apple"), 7);
}

TEST_F(PostgresResourceTest, PrepareThenAbortDiscardsWork) {
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  ASSERT_TRUE(Insert(*res, "t1", "pear", 3).ok());
  ASSERT_EQ(res->Prepare(Record("t1")).value(), Vote::kYes);
  ASSERT_TRUE(res->Abort("t1").ok());
  EXPECT_EQ(CommittedQty("pear"), -1);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:"), 0);
  EXPECT_EQ(res->GetState("t1").value(), LocalState::kAborted);
  EXPECT_TRUE(res->Abort("t1").ok());  // idempotent
  EXPECT_EQ(res->Prepare(Record("t1")).value(), Vote::kNo);
  // A commit after a local abort is a contradiction, not silently accepted.
  EXPECT_EQ(res->Commit("t1").code(), StatusCode::kConflict);
}

TEST_F(PostgresResourceTest, UnknownTransactionIdsAreAcknowledged) {
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  EXPECT_TRUE(res->Commit("never-seen-1").ok());
  EXPECT_TRUE(res->Abort("never-seen-2").ok());
  EXPECT_EQ(res->GetState("never-seen-3").value(), LocalState::kUnknown);
  EXPECT_EQ(res->Prepare(Record("never-seen-4")).value(), Vote::kNo);
  EXPECT_EQ(res->Precommit("never-seen-5").code(), StatusCode::kConflict);
  EXPECT_EQ(res->WithTransaction("bad id!", [](pqxx::work&) { return Status::Ok(); }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(res->Commit("").code(), StatusCode::kInvalidArgument);
}

TEST_F(PostgresResourceTest, RepeatedPrepareGivesTheSameVote) {
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  SeedItem("plum", 1);

  ASSERT_TRUE(Add(*res, "yes", "plum", 1).ok());
  EXPECT_EQ(res->Prepare(Record("yes")).value(), Vote::kYes);
  EXPECT_EQ(res->Prepare(Record("yes")).value(), Vote::kYes);

  // Read-only work: nothing to keep, no locks, no prepared transaction.
  ASSERT_TRUE(res->WithTransaction("ro", [](pqxx::work& w) {
                   w.exec("SELECT count(*) FROM items");
                   return Status::Ok();
                 }).ok());
  const PostgresPoolStats before = res->pool_stats();
  EXPECT_EQ(res->Prepare(Record("ro")).value(), Vote::kReadOnly);
  // Its connection went back to the pool intact (none was dropped).
  EXPECT_EQ(res->pool_stats().open_connections, before.open_connections);
  EXPECT_EQ(res->pool_stats().open_transactions, 0);
  EXPECT_EQ(res->Prepare(Record("ro")).value(), Vote::kReadOnly);
  EXPECT_EQ(res->GetState("ro").value(), LocalState::kUnknown);  // read-only: no outcome here
  EXPECT_EQ(res->WithTransaction("ro", [](pqxx::work&) { return Status::Ok(); }).code(),
            StatusCode::kConflict);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:ro"), 0);

  // Failed work: the transaction is rolled back and the vote is no, twice.
  Status failed = Add(*res, "no", "plum", -100);  // violates CHECK (qty >= 0)
  EXPECT_EQ(failed.code(), StatusCode::kConflict);
  EXPECT_EQ(failed.message().rfind("check_violation: ", 0), 0u) << failed.message();
  EXPECT_EQ(res->Prepare(Record("no")).value(), Vote::kNo);
  EXPECT_EQ(res->Prepare(Record("no")).value(), Vote::kNo);

  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:"), 1);
  ASSERT_TRUE(res->Abort("yes").ok());
  EXPECT_EQ(CommittedQty("plum"), 1);
}

TEST_F(PostgresResourceTest, FailedWorkLosesTheWholeTransaction) {
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  ASSERT_TRUE(Insert(*res, "t1", "fig", 4).ok());
  Status s = res->WithTransaction("t1", [](pqxx::work&) -> Status {
    throw std::runtime_error("business logic blew up");
  });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(res->GetState("t1").value(), LocalState::kAborted);
  // Refused afterwards, and the first call's insert is gone too.
  Status later = Insert(*res, "t1", "kiwi", 1);
  EXPECT_EQ(later.code(), StatusCode::kConflict) << later.ToString();
  EXPECT_EQ(res->Prepare(Record("t1")).value(), Vote::kNo);
  EXPECT_EQ(res->Commit("t1").code(), StatusCode::kOk);  // no prepared txn: nothing to do
  EXPECT_EQ(CommittedQty("fig"), -1);
  EXPECT_EQ(CommittedQty("kiwi"), -1);
  EXPECT_EQ(res->pool_stats().open_transactions, 0);
}

TEST_F(PostgresResourceTest, CommitOfUnpreparedOpenTransactionIsRefused) {
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  ASSERT_TRUE(Insert(*res, "t1", "lime", 1).ok());
  EXPECT_EQ(res->Commit("t1").code(), StatusCode::kConflict);
  EXPECT_EQ(CommittedQty("lime"), -1);
  // Abort before prepare rolls back at once and refuses further work.
  ASSERT_TRUE(res->Abort("t1").ok());
  EXPECT_EQ(res->pool_stats().open_transactions, 0);
  EXPECT_EQ(Insert(*res, "t1", "lime", 1).code(), StatusCode::kConflict);
  EXPECT_EQ(res->Prepare(Record("t1")).value(), Vote::kNo);
  EXPECT_EQ(CommittedQty("lime"), -1);
}

TEST_F(PostgresResourceTest, LockConflictWaitsThenFailsWithLockTimeout) {
  PostgresResourceOptions opts;
  opts.lock_timeout_ms = 300;
  auto res = OpenResource("p1", opts);
  ASSERT_NE(res, nullptr);
  SeedItem("melon", 10);

  ASSERT_TRUE(Add(*res, "holder", "melon", -1).ok());  // row locked by "holder"
  const auto start = steady_clock::now();
  Status s = Add(*res, "waiter", "melon", -1);
  const auto waited = steady_clock::now() - start;
  EXPECT_EQ(s.code(), StatusCode::kConflict) << s.ToString();
  EXPECT_EQ(s.message().rfind("lock_timeout: ", 0), 0u) << s.message();
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(5000));
  EXPECT_EQ(res->Prepare(Record("waiter")).value(), Vote::kNo);

  // The holder is unaffected and its work commits.
  ASSERT_EQ(res->Prepare(Record("holder")).value(), Vote::kYes);
  // Still locked while prepared.
  EXPECT_EQ(Add(*res, "third", "melon", -1).code(), StatusCode::kConflict);
  ASSERT_TRUE(res->Commit("holder").ok());
  EXPECT_EQ(CommittedQty("melon"), 9);
  ASSERT_TRUE(Add(*res, "fourth", "melon", -1).ok());
  ASSERT_EQ(res->Prepare(Record("fourth")).value(), Vote::kYes);
  ASSERT_TRUE(res->Commit("fourth").ok());
  EXPECT_EQ(CommittedQty("melon"), 8);
}

TEST_F(PostgresResourceTest, WaiterProceedsWithoutLostUpdateWhenHolderCommits) {
  PostgresResourceOptions opts;
  opts.lock_timeout_ms = 10'000;
  auto res = OpenResource("p1", opts);
  ASSERT_NE(res, nullptr);
  SeedItem("grape", 100);

  ASSERT_TRUE(Add(*res, "a", "grape", 10).ok());
  std::atomic<bool> waiter_done{false};
  auto waiter = std::async(std::launch::async, [&] {
    Status s = Add(*res, "b", "grape", 5);
    waiter_done = true;
    return s;
  });
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(waiter_done.load());  // blocked on the row lock
  ASSERT_EQ(res->Prepare(Record("a")).value(), Vote::kYes);
  ASSERT_TRUE(res->Commit("a").ok());
  ASSERT_TRUE(waiter.get().ok());
  ASSERT_EQ(res->Prepare(Record("b")).value(), Vote::kYes);
  ASSERT_TRUE(res->Commit("b").ok());
  EXPECT_EQ(CommittedQty("grape"), 115);
}

TEST_F(PostgresResourceTest, PreparedTransactionSurvivesReopenAndIsInDoubt) {
  SeedItem("cherry", 1);
  {
    auto res = OpenResource("p1");
    ASSERT_NE(res, nullptr);
    ASSERT_TRUE(Add(*res, "t3pc", "cherry", 41).ok());
    ASSERT_EQ(res->Prepare(Record("t3pc", "3pc", {"http://127.0.0.1:9001", "http://127.0.0.1:9002"}))
                  .value(),
              Vote::kYes);
    ASSERT_TRUE(Insert(*res, "open", "banana", 1).ok());  // never prepared: lost with the process
  }  // simulated participant restart
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  Result<std::vector<TxnRecord>> in_doubt = res->ListInDoubt();
  ASSERT_TRUE(in_doubt.ok()) << in_doubt.status().ToString();
  ASSERT_EQ(in_doubt->size(), 1u);
  const TxnRecord& rec = (*in_doubt)[0];
  EXPECT_EQ(rec.txn_id, "t3pc");
  EXPECT_EQ(rec.protocol, "3pc");
  EXPECT_EQ(rec.coordinator, "http://127.0.0.1:7070");
  EXPECT_EQ(rec.peers, (std::vector<std::string>{"http://127.0.0.1:9001", "http://127.0.0.1:9002"}));
  EXPECT_EQ(rec.state, LocalState::kPrepared);
  EXPECT_GT(rec.prepared_at_ms, 0);
  EXPECT_EQ(res->GetState("t3pc").value(), LocalState::kPrepared);
  EXPECT_EQ(res->Prepare(Record("t3pc", "3pc")).value(), Vote::kYes);
  EXPECT_EQ(res->Prepare(Record("open")).value(), Vote::kNo);

  ASSERT_TRUE(res->Precommit("t3pc").ok());
  ASSERT_TRUE(res->Precommit("t3pc").ok());
  in_doubt = res->ListInDoubt();
  ASSERT_TRUE(in_doubt.ok());
  ASSERT_EQ(in_doubt->size(), 1u);
  EXPECT_EQ((*in_doubt)[0].state, LocalState::kPrecommitted);
  EXPECT_EQ((*in_doubt)[0].coordinator, "http://127.0.0.1:7070");  // kept by precommit
  EXPECT_EQ(res->GetState("t3pc").value(), LocalState::kPrecommitted);

  ASSERT_TRUE(res->Commit("t3pc").ok());
  EXPECT_EQ(CommittedQty("cherry"), 42);
  EXPECT_EQ(CommittedQty("banana"), -1);
  EXPECT_TRUE(res->ListInDoubt()->empty());
  EXPECT_TRUE(res->Precommit("t3pc").ok());  // late duplicate after commit
}

TEST_F(PostgresResourceTest, PreparedGidWithoutMetadataRowIsStillInDoubt) {
  auto res = OpenResource("p1");
  ASSERT_NE(res, nullptr);
  ASSERT_TRUE(testing::ExecSql(uri_,
                               "BEGIN; INSERT INTO items VALUES ('orphan', 1);"
                               " PREPARE TRANSACTION 'verdict:p1:manual-1'")
                  .ok());
  Result<std::vector<TxnRecord>> in_doubt = res->ListInDoubt();
  ASSERT_TRUE(in_doubt.ok());
  ASSERT_EQ(in_doubt->size(), 1u);
  EXPECT_EQ((*in_doubt)[0].txn_id, "manual-1");
  EXPECT_EQ((*in_doubt)[0].coordinator, "");  // use the default coordinator
  EXPECT_EQ((*in_doubt)[0].state, LocalState::kPrepared);
  EXPECT_EQ(res->GetState("manual-1").value(), LocalState::kPrepared);
  ASSERT_TRUE(res->Abort("manual-1").ok());
  EXPECT_EQ(CommittedQty("orphan"), -1);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, ""), 0);
  EXPECT_EQ(res->GetState("manual-1").value(), LocalState::kAborted);
}

TEST_F(PostgresResourceTest, StaleUnpreparedWorkIsRolledBack) {
  ManualClock clock(1'000'000);
  PostgresResourceOptions opts;
  opts.clock = &clock;
  auto res = OpenResource("p1", opts);
  ASSERT_NE(res, nullptr);
  SeedItem("peach", 5);
  ASSERT_TRUE(Add(*res, "old", "peach", -5).ok());
  clock.Set(1'060'000);
  ASSERT_TRUE(Add(*res, "young", "peach-2", 1).code() == StatusCode::kNotFound);  // failed work
  ASSERT_TRUE(Insert(*res, "young2", "papaya", 1).ok());
  ASSERT_TRUE(Insert(*res, "prepared", "mango", 1).ok());
  ASSERT_EQ(res->Prepare(Record("prepared")).value(), Vote::kYes);
  EXPECT_EQ(res->pool_stats().open_transactions, 2);  // old, young2

  EXPECT_TRUE(res->AbortStaleActive(1'000'000).empty());  // nothing began before that
  std::vector<std::string> aborted = res->AbortStaleActive(1'030'000);
  EXPECT_EQ(aborted, std::vector<std::string>{"old"});
  EXPECT_EQ(res->pool_stats().open_transactions, 1);
  EXPECT_EQ(res->GetState("old").value(), LocalState::kAborted);
  EXPECT_EQ(Add(*res, "old", "peach", -1).code(), StatusCode::kConflict);
  // The lock is gone: another txn can take the row.
  ASSERT_TRUE(Add(*res, "next", "peach", -5).ok());

  aborted = res->AbortStaleActive(2'000'000);
  std::sort(aborted.begin(), aborted.end());
  EXPECT_EQ(aborted, (std::vector<std::string>{"next", "young", "young2"}));
  // The prepared txn is never touched by the sweep (it voted yes).
  EXPECT_EQ(res->GetState("prepared").value(), LocalState::kPrepared);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:"), 1);
  ASSERT_TRUE(res->Commit("prepared").ok());
  EXPECT_EQ(CommittedQty("mango"), 1);
  EXPECT_EQ(CommittedQty("peach"), 5);
  EXPECT_EQ(CommittedQty("papaya"), -1);
  EXPECT_EQ(res->pool_stats().open_transactions, 0);
}

TEST_F(PostgresResourceTest, ParticipantsSharingADatabaseDoNotSeeEachOthersGids) {
  auto p1 = OpenResource("p1");
  auto p2 = OpenResource("p2");
  ASSERT_NE(p1, nullptr);
  ASSERT_NE(p2, nullptr);
  // Same txn id in both participants: distinct gids.
  ASSERT_TRUE(Insert(*p1, "shared-txn", "from-p1", 1).ok());
  ASSERT_TRUE(Insert(*p2, "shared-txn", "from-p2", 1).ok());
  ASSERT_EQ(p1->Prepare(Record("shared-txn")).value(), Vote::kYes);
  ASSERT_EQ(p2->Prepare(Record("shared-txn")).value(), Vote::kYes);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:"), 1);
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p2:"), 1);

  ASSERT_EQ(p1->ListInDoubt()->size(), 1u);
  ASSERT_EQ(p2->ListInDoubt()->size(), 1u);

  ASSERT_TRUE(p1->Commit("shared-txn").ok());
  EXPECT_EQ(CommittedQty("from-p1"), 1);
  EXPECT_EQ(CommittedQty("from-p2"), -1);
  EXPECT_EQ(p2->GetState("shared-txn").value(), LocalState::kPrepared);
  EXPECT_TRUE(p1->ListInDoubt()->empty());
  ASSERT_EQ(p2->ListInDoubt()->size(), 1u);

  ASSERT_TRUE(p2->Abort("shared-txn").ok());
  EXPECT_EQ(CommittedQty("from-p2"), -1);
  EXPECT_EQ(p1->GetState("shared-txn").value(), LocalState::kCommitted);
  EXPECT_EQ(p2->GetState("shared-txn").value(), LocalState::kAborted);

  // A participant whose name is a prefix of another's sees only its own.
  auto p = OpenResource("p");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(Insert(*p2, "t2", "x", 1).ok());
  ASSERT_EQ(p2->Prepare(Record("t2")).value(), Vote::kYes);
  EXPECT_TRUE(p->ListInDoubt()->empty());
  ASSERT_TRUE(p2->Abort("t2").ok());
}

TEST_F(PostgresResourceTest, PoolReturnsConnectionsAfterPrepare) {
  PostgresResourceOptions opts;
  opts.pool_size = 4;  // 3 for open transactions, 1 kept for protocol steps
  opts.acquire_timeout_ms = 300;
  auto res = OpenResource("p1", opts);
  ASSERT_NE(res, nullptr);

  for (int i = 0; i < 10; ++i) {
    const std::string txn = "seq-" + std::to_string(i);
    ASSERT_TRUE(Insert(*res, txn, "item-" + std::to_string(i), i).ok());
    EXPECT_EQ(res->pool_stats().open_transactions, 1);
    ASSERT_EQ(res->Prepare(Record(txn)).value(), Vote::kYes);
    EXPECT_EQ(res->pool_stats().open_transactions, 0);
  }
  PostgresPoolStats stats = res->pool_stats();
  EXPECT_LE(stats.open_connections, 4);
  EXPECT_EQ(stats.idle_connections, stats.open_connections);
  // Ten prepared transactions, no connection held by any of them.
  EXPECT_EQ(testing::CountPreparedXacts(uri_, "verdict:p1:"), 10);

  // Three open transactions exhaust the business share; the fourth waits and
  // gives up, while protocol steps still get the reserved connection.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Insert(*res, "open-" + std::to_string(i), "o" + std::to_string(i), 1).ok());
  EXPECT_EQ(res->pool_stats().open_transactions, 3);
  Status starved = Insert(*res, "open-3", "o3", 1);
  EXPECT_EQ(starved.code(), StatusCode::kUnavailable) << starved.ToString();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(res->Commit("seq-" + std::to_string(i)).ok());
  ASSERT_EQ(res->Prepare(Record("open-0")).value(), Vote::kYes);
  ASSERT_TRUE(Insert(*res, "open-4", "o4", 1).ok());  // a slot is free again
  for (const char* t : {"open-0", "open-1", "open-2", "open-4"}) ASSERT_TRUE(res->Abort(t).ok());
  EXPECT_EQ(res->pool_stats().open_transactions, 0);
  EXPECT_EQ(CommittedQty("item-9"), 9);
  EXPECT_EQ(CommittedQty("o0"), -1);
}

TEST_F(PostgresResourceTest, ConcurrentTransactionsOnOneRowLoseNoUpdate) {
  PostgresResourceOptions opts;
  opts.lock_timeout_ms = 10'000;
  opts.pool_size = 8;
  auto res = OpenResource("p1", opts);
  ASSERT_NE(res, nullptr);
  SeedItem("counter", 0);
  constexpr int kThreads = 6;
  constexpr int kPerThread = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string txn = "c-" + std::to_string(t) + "-" + std::to_string(i);
        if (!Add(*res, txn, "counter", 1).ok() ||
            res->Prepare(Record(txn)).value() != Vote::kYes || !res->Commit(txn).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CommittedQty("counter"), kThreads * kPerThread);
  EXPECT_EQ(res->pool_stats().open_transactions, 0);
}

TEST_F(PostgresResourceTest, ForgetOutcomesBeforeDropsOldOutcomesOnly) {
  ManualClock clock(5'000'000);
  PostgresResourceOptions opts;
  opts.clock = &clock;
  auto res = OpenResource("p1", opts);
  ASSERT_NE(res, nullptr);
  ASSERT_TRUE(Insert(*res, "old", "o", 1).ok());
  ASSERT_EQ(res->Prepare(Record("old")).value(), Vote::kYes);
  ASSERT_TRUE(res->Commit("old").ok());
  clock.Set(9'000'000);
  ASSERT_TRUE(Insert(*res, "new", "n", 1).ok());
  ASSERT_EQ(res->Prepare(Record("new")).value(), Vote::kYes);
  ASSERT_TRUE(res->Commit("new").ok());
  ASSERT_TRUE(Insert(*res, "pending", "p", 1).ok());
  ASSERT_EQ(res->Prepare(Record("pending")).value(), Vote::kYes);
  clock.Set(20'000'000);

  res->ForgetOutcomesBefore(7'000'000);
  EXPECT_EQ(res->GetState("old").value(), LocalState::kUnknown);
  EXPECT_EQ(res->GetState("new").value(), LocalState::kCommitted);
  res->ForgetOutcomesBefore(30'000'000);
  EXPECT_EQ(res->GetState("new").value(), LocalState::kUnknown);
  // A prepared txn's metadata is never dropped.
  Result<std::vector<TxnRecord>> in_doubt = res->ListInDoubt();
  ASSERT_EQ(in_doubt->size(), 1u);
  EXPECT_EQ((*in_doubt)[0].coordinator, "http://127.0.0.1:7070");
  ASSERT_TRUE(res->Abort("pending").ok());
}

TEST(PostgresResourceOpenTest, BadPortFailsWithOneLineMessage) {
  PostgresResourceOptions opts;
  opts.participant_name = "p1";
  Result<std::unique_ptr<PostgresResource>> r =
      PostgresResource::Open("postgresql://postgres@127.0.0.1:1/postgres", opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("cannot connect to PostgreSQL"), std::string::npos)
      << r.status().message();
}

TEST(PostgresResourceOpenTest, RejectsBadOptions) {
  const std::string uri = testing::NewTestDatabase("pg_open");
  for (const std::string& name :
       std::vector<std::string>{"", "has:colon", "has space", std::string(63, 'x')}) {
    PostgresResourceOptions opts;
    opts.participant_name = name;
    EXPECT_EQ(PostgresResource::Open(uri, opts).status().code(), StatusCode::kInvalidArgument)
        << name;
  }
  PostgresResourceOptions opts;
  opts.participant_name = "p1";
  opts.pool_size = 1;
  EXPECT_EQ(PostgresResource::Open(uri, opts).status().code(), StatusCode::kInvalidArgument);
}

TEST(PostgresResourceOpenTest, RequiresMaxPreparedTransactions) {
  testing::LocalPostgres::Options pg_opts;
  pg_opts.max_prepared_transactions = 0;
  Result<std::unique_ptr<testing::LocalPostgres>> pg = testing::LocalPostgres::Create(pg_opts);
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  PostgresResourceOptions opts;
  opts.participant_name = "p1";
  Result<std::unique_ptr<PostgresResource>> r = PostgresResource::Open((*pg)->Uri(), opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "PostgreSQL max_prepared_transactions is 0; PREPARE TRANSACTION needs it > 0");
}

// A private server that the test takes down and brings back.
TEST(PostgresResourceOutageTest, DatabaseDownGivesErrorsNeverLostDecisions) {
  Result<std::unique_ptr<testing::LocalPostgres>> pg = testing::LocalPostgres::Create();
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  Result<std::string> uri = testing::CreateDatabase((*pg)->Uri(), "outage");
  ASSERT_TRUE(uri.ok()) << uri.status().ToString();
  ASSERT_TRUE(testing::ExecSql(*uri, "CREATE TABLE items (name text PRIMARY KEY, qty bigint)").ok());

  PostgresResourceOptions opts;
  opts.participant_name = "p1";
  opts.acquire_timeout_ms = 1000;
  auto opened = PostgresResource::Open(*uri, opts);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  PostgresResource& res = **opened;
  auto insert = [&](const std::string& txn, const std::string& name) {
    return res.WithTransaction(txn, [&](pqxx::work& w) {
      w.exec_params0("INSERT INTO items VALUES ($1, 1)", name);
      return Status::Ok();
    });
  };
  ASSERT_TRUE(insert("decided", "d").ok());
  ASSERT_EQ(res.Prepare(Record("decided")).value(), Vote::kYes);
  ASSERT_TRUE(insert("staged", "s").ok());

  ASSERT_TRUE((*pg)->Stop(/*immediate=*/true).ok());  // crash-like: no checkpoint

  Result<Vote> vote = res.Prepare(Record("staged"));
  EXPECT_FALSE(vote.ok() && *vote == Vote::kYes);
  EXPECT_FALSE(vote.ok()) << "expected an error status, got a vote";
  Status commit = res.Commit("decided");
  EXPECT_EQ(commit.code(), StatusCode::kUnavailable) << commit.ToString();
  EXPECT_EQ(commit.message().find('\n'), std::string::npos) << commit.message();
  EXPECT_EQ(res.Abort("other").code(), StatusCode::kUnavailable);
  EXPECT_EQ(res.ListInDoubt().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(res.GetState("decided").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(insert("new", "n").code(), StatusCode::kUnavailable);

  ASSERT_TRUE((*pg)->Start().ok());
  // The prepared transaction survived the server crash; the retried commit
  // (as the coordinator would send it) applies it.
  Result<std::vector<TxnRecord>> in_doubt = res.ListInDoubt();
  ASSERT_TRUE(in_doubt.ok()) << in_doubt.status().ToString();
  ASSERT_EQ(in_doubt->size(), 1u);
  EXPECT_EQ((*in_doubt)[0].txn_id, "decided");
  ASSERT_TRUE(res.Commit("decided").ok());
  EXPECT_EQ(res.Prepare(Record("staged")).value(), Vote::kNo);
  ASSERT_TRUE(insert("after", "a").ok());
  ASSERT_EQ(res.Prepare(Record("after")).value(), Vote::kYes);
  ASSERT_TRUE(res.Commit("after").ok());
  pqxx::connection c(*uri);
  pqxx::nontransaction tx(c);
  pqxx::result rows = tx.exec("SELECT name FROM items ORDER BY name");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0].as<std::string>(), "a");
  EXPECT_EQ(rows[1][0].as<std::string>(), "d");
}

}  // namespace
}  // namespace verdict::participant
