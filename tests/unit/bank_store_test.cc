// verdict-bank: EmbeddedBankStore semantics and the BankService HTTP API with
// a Participant and a fake coordinator.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "bank_service.h"
#include "embedded_bank_store.h"
#include "participant_test_util.h"
#include "verdict/common/transport.h"
#include "verdict/participant/participant.h"

namespace verdict::bank {
namespace {

using nlohmann::json;
using participant::LocalState;
using participant::TxnRecord;
using participant::Vote;
using testutil::HttpGet;
using testutil::HttpPost;
using testutil::ScopedTempDir;
using testutil::TestServer;

TxnRecord Record(const std::string& txn) {
  TxnRecord r;
  r.txn_id = txn;
  return r;
}

class EmbeddedBankStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    participant::LevelDbResourceOptions options;
    options.lock_wait = std::chrono::milliseconds(100);
    auto s = EmbeddedBankStore::Open(dir_.Sub("bank"), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void Commit(const std::string& txn) {
    ASSERT_EQ(*store_->resource()->Prepare(Record(txn)), Vote::kYes);
    ASSERT_TRUE(store_->resource()->Commit(txn).ok());
  }
  int64_t Balance(const std::string& id) {
    Result<int64_t> b = store_->GetBalance(id);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *b : -1;
  }

  ScopedTempDir dir_;
  std::unique_ptr<EmbeddedBankStore> store_;
};

TEST_F(EmbeddedBankStoreTest, CreateAndReadAccounts) {
  ASSERT_TRUE(store_->CreateAccount("alice", 100).ok());
  EXPECT_EQ(Balance("alice"), 100);
  Status dup = store_->CreateAccount("alice", 5);
  EXPECT_EQ(dup.code(), StatusCode::kConflict);
  EXPECT_EQ(ConflictReason(dup), kReasonAccountExists);
  EXPECT_EQ(Balance("alice"), 100);
  EXPECT_EQ(store_->CreateAccount("bob", -1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateAccount("no spaces", 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetBalance("nobody").status().code(), StatusCode::kNotFound);
}

TEST_F(EmbeddedBankStoreTest, ApplyStagesUntilCommit) {
  ASSERT_TRUE(store_->CreateAccount("alice", 100).ok());
  ASSERT_TRUE(store_->CreateAccount("bob", 0).ok());
  ASSERT_TRUE(store_->Apply("t1", "alice", -30).ok());
  ASSERT_TRUE(store_->Apply("t1", "bob", 30).ok());
  ASSERT_TRUE(store_->Apply("t1", "alice", -20).ok());  // builds on the staged -30
  EXPECT_EQ(Balance("alice"), 100);
  Commit("t1");
  EXPECT_EQ(Balance("alice"), 50);
  EXPECT_EQ(Balance("bob"), 30);
}

TEST_F(EmbeddedBankStoreTest, OverdraftIsInsufficientFunds) {
  ASSERT_TRUE(store_->CreateAccount("alice", 10).ok());
  ASSERT_TRUE(store_->Apply("t1", "alice", -10).ok());
  Status s = store_->Apply("t1", "alice", -1);  // staged balance is 0
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(ConflictReason(s), kReasonInsufficientFunds);
  EXPECT_EQ(store_->Apply("t2", "nobody", 1).code(), StatusCode::kNotFound);
}

TEST_F(EmbeddedBankStoreTest, OverflowIsInvalid) {
  ASSERT_TRUE(store_->CreateAccount("rich", INT64_MAX - 1).ok());
  EXPECT_EQ(store_->Apply("t1", "rich", 2).code(), StatusCode::kInvalidArgument);
}

TEST_F(EmbeddedBankStoreTest, ConcurrentTxnOnSameAccountGetsLockTimeout) {
  ASSERT_TRUE(store_->CreateAccount("alice", 10).ok());
  ASSERT_TRUE(store_->Apply("t1", "alice", 1).ok());
  Status s = store_->Apply("t2", "alice", 1);
  EXPECT_EQ(ConflictReason(s), kReasonLockTimeout) << s.ToString();
}

TEST_F(EmbeddedBankStoreTest, ConcurrentTransfersConserveMoney) {
  ASSERT_TRUE(store_->CreateAccount("a", 1000).ok());
  ASSERT_TRUE(store_->CreateAccount("b", 1000).ok());
  std::atomic<int> next{0}, a_to_b{0}, b_to_a{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        std::string txn = "x" + std::to_string(next++);
        bool a_first = (i % 2) == 0;  // opposite orders: deadlocks end in lock_timeout
        Status s1 = store_->Apply(txn, a_first ? "a" : "b", -7);
        Status s2 = s1.ok() ? store_->Apply(txn, a_first ? "b" : "a", 7) : s1;
        if (s1.ok() && s2.ok() && *store_->resource()->Prepare(Record(txn)) == Vote::kYes) {
          EXPECT_TRUE(store_->resource()->Commit(txn).ok());
          ++(a_first ? a_to_b : b_to_a);
        } else {
          EXPECT_TRUE(store_->resource()->Abort(txn).ok());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(a_to_b + b_to_a, 0);
  // Every committed transfer is reflected exactly once (no lost update).
  EXPECT_EQ(Balance("a"), 1000 - 7 * a_to_b + 7 * b_to_a);
  EXPECT_EQ(Balance("b"), 1000 + 7 * a_to_b - 7 * b_to_a);
  EXPECT_EQ(store_->leveldb()->LockedKeyCount(), 0u);
}

TEST(ConflictReasonTest, ExtractsSnakeCasePrefix) {
  EXPECT_EQ(ConflictReason(Status::Conflict("insufficient_funds: x")), "insufficient_funds");
  EXPECT_EQ(ConflictReason(Status::Conflict("Some words: x")), "");
  EXPECT_EQ(ConflictReason(Status::Conflict("no colon")), "");
  EXPECT_EQ(ConflictReason(Status::Conflict(": x")), "");
}

// ---------------------------------------------------------------------------
// BankService over HTTP.

class FakeCoordinator {
 public:
  FakeCoordinator() {
    server_.server().Post(R"(/v1/transactions/([^/]+)/participants)",
                          [this](const httplib::Request& req, httplib::Response& res) {
                            std::lock_guard lock(mu_);
                            ++enlistments_;
                            if (status_ == 200) {
                              ReplyJson(res, 200, {{"id", req.matches[1]}});
                            } else {
                              ReplyError(res, status_, "conflict", "not active");
                            }
                          });
    EXPECT_TRUE(server_.Start());
  }
  std::string url() const { return server_.url(); }
  void SetStatus(int s) {
    std::lock_guard lock(mu_);
    status_ = s;
  }
  int enlistments() {
    std::lock_guard lock(mu_);
    return enlistments_;
  }

 private:
  TestServer server_;
  std::mutex mu_;
  int status_ = 200;
  int enlistments_ = 0;
};

class BankServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(coordinator_.url()); }

  void Build(const std::string& coordinator_url) {
    participant::LevelDbResourceOptions store_options;
    store_options.lock_wait = std::chrono::milliseconds(100);
    auto s = EmbeddedBankStore::Open(dir_.Sub("bank"), store_options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    ASSERT_TRUE(server_.Bind());
    participant::ParticipantOptions options;
    options.name = "bank-a";
    options.self_url = server_.url();
    options.coordinator_url = coordinator_url;
    options.request_timeout = std::chrono::milliseconds(1000);
    participant_ = std::make_unique<participant::Participant>(options, store_->resource(),
                                                              transport_.get(),
                                                              SystemClock::Default());
    service_ = std::make_unique<BankService>(store_.get(), participant_.get());
    participant_->Mount(server_.server());
    service_->Mount(server_.server());
    server_.Listen();
  }

  void TearDown() override { server_.Stop(); }

  testutil::Reply Apply(const std::string& txn, const std::string& account, const std::string& body) {
    httplib::Headers h;
    if (!txn.empty()) h.emplace("Verdict-Txn-Id", txn);
    return HttpPost(server_.url(), "/accounts/" + account + "/apply", body, h);
  }
  static std::string Code(const testutil::Reply& r) {
    json j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
  }
  LocalState State(const std::string& txn) { return *store_->resource()->GetState(txn); }

  ScopedTempDir dir_;
  FakeCoordinator coordinator_;
  std::unique_ptr<HttpTransport> transport_ = NewHttplibTransport();
  std::unique_ptr<EmbeddedBankStore> store_;
  TestServer server_;
  std::unique_ptr<participant::Participant> participant_;
  std::unique_ptr<BankService> service_;
};

TEST_F(BankServiceTest, AccountsApi) {
  EXPECT_EQ(HttpGet(server_.url(), "/healthz").body, R"({"status":"ok"})");
  testutil::Reply created = HttpPost(server_.url(), "/accounts", R"({"id":"alice","balance":100})");
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(json::parse(created.body), json({{"id", "alice"}, {"balance", 100}}));
  testutil::Reply dup = HttpPost(server_.url(), "/accounts", R"({"id":"alice","balance":1})");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(Code(dup), "account_exists");

  for (const char* bad : {"", "nope", R"({"balance":1})", R"({"id":"x y","balance":1})",
                          R"({"id":"b","balance":1.5})", R"({"id":"b","balance":"1"})",
                          R"({"id":"b","balance":-1})", R"({"id":"b","balance":true})",
                          R"({"id":"b","balance":18446744073709551615})"}) {
    EXPECT_EQ(HttpPost(server_.url(), "/accounts", bad).status, 400) << bad;
  }
  testutil::Reply get = HttpGet(server_.url(), "/accounts/alice");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(json::parse(get.body), json({{"id", "alice"}, {"balance", 100}}));
  testutil::Reply missing = HttpGet(server_.url(), "/accounts/bob");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Code(missing), "account_not_found");
}

TEST_F(BankServiceTest, ApplyStagesEnlistsAndCommitsThroughProtocol) {
  ASSERT_TRUE(store_->CreateAccount("alice", 100).ok());
  testutil::Reply r = Apply("t1", "alice", R"({"delta":-40})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(coordinator_.enlistments(), 1);
  EXPECT_EQ(State("t1"), LocalState::kActive);
  EXPECT_EQ(*store_->GetBalance("alice"), 100);  // committed balance only

  EXPECT_EQ(json::parse(HttpPost(server_.url(), "/prepare", R"({"txn_id":"t1"})").body)["vote"], "yes");
  EXPECT_EQ(HttpPost(server_.url(), "/commit", R"({"txn_id":"t1"})").status, 200);
  EXPECT_EQ(*store_->GetBalance("alice"), 60);
}

TEST_F(BankServiceTest, ApplyRejectsBadInput) {
  ASSERT_TRUE(store_->CreateAccount("alice", 100).ok());
  EXPECT_EQ(Code(Apply("", "alice", R"({"delta":1})")), "missing_txn_id");
  EXPECT_EQ(Code(Apply("bad id", "alice", R"({"delta":1})")), "invalid_txn_id");
  for (const char* bad : {"", "{", R"({})", R"({"delta":1.5})", R"({"delta":"1"})"}) {
    EXPECT_EQ(Apply("t1", "alice", bad).status, 400) << bad;
  }
  EXPECT_EQ(Apply("t1", "nobody", R"({"delta":1})").status, 404);
  EXPECT_EQ(coordinator_.enlistments(), 0);
}

TEST_F(BankServiceTest, InsufficientFundsDoomsTheTxn) {
  ASSERT_TRUE(store_->CreateAccount("alice", 10).ok());
  ASSERT_TRUE(store_->CreateAccount("bob", 10).ok());
  ASSERT_EQ(Apply("t1", "bob", R"({"delta":5})").status, 200);
  testutil::Reply r = Apply("t1", "alice", R"({"delta":-11})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "insufficient_funds");
  // The earlier work is undone too, and the txn will vote no.
  EXPECT_EQ(State("t1"), LocalState::kAborted);
  EXPECT_EQ(store_->leveldb()->LockOwner("account/bob"), "");
  EXPECT_EQ(json::parse(HttpPost(server_.url(), "/prepare", R"({"txn_id":"t1"})").body)["vote"], "no");
  // Later work under it is refused.
  testutil::Reply late = Apply("t1", "bob", R"({"delta":1})");
  EXPECT_EQ(late.status, 409);
  EXPECT_EQ(Code(late), "txn_not_active");
}

TEST_F(BankServiceTest, RefusedEnlistmentUndoesWork) {
  ASSERT_TRUE(store_->CreateAccount("alice", 10).ok());
  coordinator_.SetStatus(409);
  testutil::Reply r = Apply("t1", "alice", R"({"delta":5})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "txn_not_active");
  EXPECT_EQ(State("t1"), LocalState::kAborted);
  EXPECT_EQ(store_->leveldb()->LockOwner("account/alice"), "");
  // Another txn can use the account at once.
  coordinator_.SetStatus(200);
  EXPECT_EQ(Apply("t2", "alice", R"({"delta":5})").status, 200);
}

TEST_F(BankServiceTest, ApplyAfterPrepareIsRefused) {
  ASSERT_TRUE(store_->CreateAccount("alice", 10).ok());
  ASSERT_EQ(Apply("t1", "alice", R"({"delta":5})").status, 200);
  ASSERT_EQ(json::parse(HttpPost(server_.url(), "/prepare", R"({"txn_id":"t1"})").body)["vote"], "yes");
  testutil::Reply late = Apply("t1", "alice", R"({"delta":5})");
  EXPECT_EQ(late.status, 409);
  EXPECT_EQ(Code(late), "txn_not_active");
  EXPECT_EQ(State("t1"), LocalState::kPrepared);  // the late call did not abort it
}

class BankServiceNoCoordinatorTest : public BankServiceTest {
 protected:
  void SetUp() override { Build(testutil::DeadUrl()); }
};

TEST_F(BankServiceNoCoordinatorTest, UnreachableCoordinatorUndoesWorkWith503) {
  ASSERT_TRUE(store_->CreateAccount("alice", 10).ok());
  testutil::Reply r = Apply("t1", "alice", R"({"delta":5})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Code(r), "coordinator_unavailable");
  EXPECT_EQ(State("t1"), LocalState::kAborted);
  EXPECT_EQ(store_->leveldb()->LockOwner("account/alice"), "");
}

}  // namespace
}  // namespace verdict::bank
