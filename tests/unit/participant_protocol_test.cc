// Participant SDK over real HTTP: a Participant mounted on an httplib server
// (with a LevelDbResource), a fake coordinator, and fake 3PC peers.
#include "verdict/participant/participant.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "participant_test_util.h"
#include "verdict/common/failpoint.h"
#include "verdict/common/transport.h"
#include "verdict/participant/leveldb_resource.h"

namespace verdict::participant {
namespace {

using nlohmann::json;
using testutil::Eventually;
using testutil::HttpGet;
using testutil::HttpPost;
using testutil::ScopedTempDir;
using testutil::TestServer;

// The coordinator endpoints the SDK calls: enlistment and decision queries.
class FakeCoordinator {
 public:
  struct Enlistment {
    std::string txn_id;
    json body;
    std::string authorization;
  };

  FakeCoordinator() {
    server_.server().Post(R"(/v1/transactions/([^/]+)/participants)",
                          [this](const httplib::Request& req, httplib::Response& res) {
                            std::lock_guard lock(mu_);
                            enlistments_.push_back({req.matches[1], json::parse(req.body),
                                                    req.get_header_value("Authorization")});
                            if (enlist_status_ == 200) {
                              ReplyJson(res, 200, {{"id", req.matches[1]}, {"state", "active"}});
                            } else {
                              ReplyError(res, enlist_status_, "conflict", "transaction is not active");
                            }
                          });
    server_.server().Get(R"(/v1/transactions/([^/]+)/decision)",
                         [this](const httplib::Request& req, httplib::Response& res) {
                           std::lock_guard lock(mu_);
                           ++decision_queries_[req.matches[1]];
                           auto it = decisions_.find(req.matches[1]);
                           ReplyJson(res, 200,
                                     {{"decision", it == decisions_.end() ? "pending" : it->second}});
                         });
    EXPECT_TRUE(server_.Start());
  }

  std::string url() const { return server_.url(); }
  void SetEnlistStatus(int status) {
    std::lock_guard lock(mu_);
    enlist_status_ = status;
  }
  void SetDecision(const std::string& txn, const std::string& decision) {
    std::lock_guard lock(mu_);
    decisions_[txn] = decision;
  }
  std::vector<Enlistment> enlistments() {
    std::lock_guard lock(mu_);
    return enlistments_;
  }
  int decision_queries(const std::string& txn) {
    std::lock_guard lock(mu_);
    return decision_queries_[txn];
  }

 private:
  TestServer server_;
  std::mutex mu_;
  int enlist_status_ = 200;
  std::map<std::string, std::string> decisions_;
  std::map<std::string, int> decision_queries_;
  std::vector<Enlistment> enlistments_;
};

// A 3PC peer that answers GET /txn-state with a fixed state.
class FakePeer {
 public:
  explicit FakePeer(std::string state) : state_(std::move(state)) {
    server_.server().Get("/txn-state", [this](const httplib::Request& req, httplib::Response& res) {
      ReplyJson(res, 200, {{"txn_id", req.get_param_value("txn_id")}, {"state", state_}});
    });
    EXPECT_TRUE(server_.Start());
  }
  std::string url() const { return server_.url(); }

 private:
  std::string state_;
  TestServer server_;
};

class ParticipantProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = LevelDbResource::Open(dir_.Sub("db"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    resource_ = std::move(r).value();
    ASSERT_TRUE(resource_->Insert("k", "0").ok());
    ASSERT_TRUE(server_.Bind());
    options_.name = "p1";
    options_.self_url = server_.url();
    options_.coordinator_url = coordinator_.url();
    options_.api_token = "secret";
    options_.request_timeout = std::chrono::milliseconds(1000);
    options_.query_backoff_initial = std::chrono::milliseconds(10);
    options_.query_backoff_max = std::chrono::milliseconds(50);
  }

  void TearDown() override {
    if (participant_) participant_->Stop();
    server_.Stop();
    failpoint::Configure("").IgnoreError();
  }

  // Builds the participant from options_ and starts serving.
  void StartServing() {
    participant_ = std::make_unique<Participant>(options_, resource_.get(), transport_.get(),
                                                 SystemClock::Default());
    participant_->Mount(server_.server());
    server_.Listen();
  }

  void Stage(const std::string& txn, int delta = 1) {
    Status s = resource_->Update(
        txn, "k", [&](const std::optional<std::string>& cur) -> Result<std::optional<std::string>> {
          return std::optional<std::string>(std::to_string(std::stoi(cur.value_or("0")) + delta));
        });
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  testutil::Reply Call(const std::string& path, const json& body) {
    return HttpPost(server_.url(), path, body.dump());
  }
  std::string Vote(const std::string& txn, json extra = json::object()) {
    extra["txn_id"] = txn;
    if (!extra.contains("protocol")) extra["protocol"] = "2pc";
    if (!extra.contains("coordinator")) extra["coordinator"] = coordinator_.url();
    testutil::Reply r = Call("/prepare", extra);
    if (r.status != 200) return "http " + std::to_string(r.status);
    return json::parse(r.body).value("vote", "");
  }
  std::string RemoteState(const std::string& txn) {
    testutil::Reply r = HttpGet(server_.url(), "/txn-state?txn_id=" + txn);
    if (r.status != 200) return "http " + std::to_string(r.status);
    return json::parse(r.body).value("state", "");
  }
  std::string Committed() { return resource_->ReadCommitted("k")->value_or("<none>"); }

  ScopedTempDir dir_;
  FakeCoordinator coordinator_;
  std::unique_ptr<HttpTransport> transport_ = NewHttplibTransport();
  std::unique_ptr<LevelDbResource> resource_;
  TestServer server_;
  ParticipantOptions options_;
  std::unique_ptr<Participant> participant_;
};

TEST_F(ParticipantProtocolTest, PrepareCommitIsDurableAndIdempotent) {
  StartServing();
  Stage("t1", 5);
  EXPECT_EQ(RemoteState("t1"), "active");
  EXPECT_EQ(Vote("t1"), "yes");
  EXPECT_EQ(Vote("t1"), "yes");  // a repeated prepare gets the same vote
  EXPECT_EQ(RemoteState("t1"), "prepared");

  testutil::Reply c = Call("/commit", {{"txn_id", "t1"}});
  EXPECT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(Committed(), "5");
  EXPECT_EQ(Call("/commit", {{"txn_id", "t1"}}).status, 200);
  EXPECT_EQ(Committed(), "5");
  EXPECT_EQ(RemoteState("t1"), "committed");
}

TEST_F(ParticipantProtocolTest, AbortAndUnknownIdsAreAcknowledged) {
  StartServing();
  Stage("t1", 5);
  EXPECT_EQ(Vote("t1"), "yes");
  EXPECT_EQ(Call("/abort", {{"txn_id", "t1"}}).status, 200);
  EXPECT_EQ(Call("/abort", {{"txn_id", "t1"}}).status, 200);
  EXPECT_EQ(Committed(), "0");
  EXPECT_EQ(RemoteState("t1"), "aborted");

  EXPECT_EQ(Call("/commit", {{"txn_id", "never-seen"}}).status, 200);
  EXPECT_EQ(Call("/abort", {{"txn_id", "never-seen-2"}}).status, 200);
  EXPECT_EQ(RemoteState("never-seen"), "unknown");
}

TEST_F(ParticipantProtocolTest, VotesNoWithoutWorkAndReadOnlyWithoutWrites) {
  StartServing();
  EXPECT_EQ(Vote("lost"), "no");  // e.g. staged work lost in a crash
  EXPECT_EQ(RemoteState("lost"), "aborted");

  Status failed = resource_->Update(
      "reader", "k", [](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
        return Status::Conflict("nope: nothing staged");
      });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(Vote("reader"), "read_only");
}

TEST_F(ParticipantProtocolTest, PrecommitOnlyForPreparedTxns) {
  StartServing();
  Stage("t1");
  testutil::Reply early = Call("/precommit", {{"txn_id", "t1"}});
  EXPECT_EQ(early.status, 409) << early.body;
  EXPECT_EQ(json::parse(early.body)["error"]["code"], "txn_not_prepared");
  EXPECT_EQ(Vote("t1", {{"protocol", "3pc"}}), "yes");
  EXPECT_EQ(Call("/precommit", {{"txn_id", "t1"}}).status, 200);
  EXPECT_EQ(RemoteState("t1"), "precommitted");
  EXPECT_EQ(Call("/abort", {{"txn_id", "t2"}}).status, 200);
  EXPECT_EQ(Call("/precommit", {{"txn_id", "t2"}}).status, 409);
}

TEST_F(ParticipantProtocolTest, BadInputGetsErrorEnvelope) {
  StartServing();
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/prepare", "not json"},
           {"/prepare", "[1]"},
           {"/prepare", "{}"},
           {"/prepare", R"({"txn_id":42})"},
           {"/prepare", R"({"txn_id":"bad id with spaces"})"},
           {"/prepare", R"({"txn_id":"t","protocol":"4pc"})"},
           {"/prepare", R"({"txn_id":"t","coordinator":"ftp://x"})"},
           {"/prepare", R"({"txn_id":"t","participants":"x"})"},
           {"/commit", ""},
           {"/abort", R"({"id":"t"})"},
           {"/precommit", "{"},
       }) {
    testutil::Reply r = HttpPost(server_.url(), path, body);
    EXPECT_EQ(r.status, 400) << path << " " << body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_TRUE(j["error"]["code"].is_string()) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  }
  EXPECT_EQ(HttpGet(server_.url(), "/txn-state").status, 400);
  EXPECT_EQ(HttpGet(server_.url(), "/txn-state?txn_id=").status, 400);
}

TEST_F(ParticipantProtocolTest, EnlistPostsOnceWithTokenAndMapsRefusals) {
  StartServing();
  ASSERT_TRUE(participant_->Enlist("t1").ok());
  ASSERT_TRUE(participant_->Enlist("t1").ok());  // cached: no second call
  auto calls = coordinator_.enlistments();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].txn_id, "t1");
  EXPECT_EQ(calls[0].body, json({{"name", "p1"}, {"url", server_.url()}}));
  EXPECT_EQ(calls[0].authorization, "Bearer secret");

  coordinator_.SetEnlistStatus(409);
  EXPECT_EQ(participant_->Enlist("t2").code(), StatusCode::kConflict);
  coordinator_.SetEnlistStatus(404);
  EXPECT_EQ(participant_->Enlist("t3").code(), StatusCode::kConflict);
  coordinator_.SetEnlistStatus(500);
  EXPECT_EQ(participant_->Enlist("t4").code(), StatusCode::kUnavailable);
  EXPECT_EQ(participant_->Enlist("not valid").code(), StatusCode::kInvalidArgument);
}

TEST_F(ParticipantProtocolTest, EnlistCacheIsForgottenWhenTxnFinishes) {
  StartServing();
  Stage("t1");
  ASSERT_TRUE(participant_->Enlist("t1").ok());
  EXPECT_EQ(Call("/abort", {{"txn_id", "t1"}}).status, 200);
  ASSERT_TRUE(participant_->Enlist("t1").ok());  // asks the coordinator again
  EXPECT_EQ(coordinator_.enlistments().size(), 2u);
}

TEST_F(ParticipantProtocolTest, EnlistWithCoordinatorDownIsUnavailable) {
  options_.coordinator_url = testutil::DeadUrl();
  StartServing();
  EXPECT_EQ(participant_->Enlist("t1").code(), StatusCode::kUnavailable);
}

TEST_F(ParticipantProtocolTest, AbortUnpreparedNeverAbortsBehindAYesVote) {
  StartServing();
  Stage("active");
  EXPECT_TRUE(participant_->AbortUnprepared("active").ok());
  EXPECT_EQ(RemoteState("active"), "aborted");

  Stage("prepared");
  EXPECT_EQ(Vote("prepared"), "yes");
  EXPECT_EQ(participant_->AbortUnprepared("prepared").code(), StatusCode::kConflict);
  EXPECT_EQ(RemoteState("prepared"), "prepared");

  // An id with no work yet is remembered as aborted, so it votes no later.
  EXPECT_TRUE(participant_->AbortUnprepared("fresh").ok());
  EXPECT_EQ(Vote("fresh"), "no");
}

TEST_F(ParticipantProtocolTest, RecoverOnceAppliesCoordinatorDecisions) {
  StartServing();
  Stage("tc", 7);
  EXPECT_EQ(Vote("tc"), "yes");
  // Another key so both txns can be prepared at once.
  ASSERT_TRUE(resource_->Update("ta", "other", [](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
    return std::optional<std::string>("x");
  }).ok());
  EXPECT_EQ(Vote("ta"), "yes");

  EXPECT_EQ(participant_->RecoverOnce(), 0);  // both pending
  EXPECT_EQ(coordinator_.decision_queries("tc"), 1);
  EXPECT_EQ(RemoteState("tc"), "prepared");

  coordinator_.SetDecision("tc", "commit");
  coordinator_.SetDecision("ta", "abort");
  EXPECT_EQ(participant_->RecoverOnce(), 2);
  EXPECT_EQ(Committed(), "7");
  EXPECT_EQ(RemoteState("tc"), "committed");
  EXPECT_EQ(RemoteState("ta"), "aborted");
  EXPECT_EQ(resource_->ReadCommitted("other")->has_value(), false);
  EXPECT_EQ(participant_->RecoverOnce(), 0);
}

TEST_F(ParticipantProtocolTest, TwoPhaseCommitNeverDecidesAloneWhenCoordinatorIsDown) {
  options_.in_doubt_query_after = std::chrono::milliseconds(0);
  StartServing();
  FakePeer peer("aborted");
  Stage("t1");
  EXPECT_EQ(Vote("t1", {{"coordinator", testutil::DeadUrl()}, {"participants", {peer.url()}}}), "yes");
  EXPECT_EQ(participant_->RecoverOnce(), 0);
  EXPECT_EQ(RemoteState("t1"), "prepared");
}

TEST_F(ParticipantProtocolTest, BackgroundRecoveryAsksAfterDelayAndApplies) {
  options_.in_doubt_query_after = std::chrono::milliseconds(100);
  StartServing();
  ASSERT_TRUE(participant_->Start().ok());
  Stage("t1", 3);
  EXPECT_EQ(Vote("t1"), "yes");
  coordinator_.SetDecision("t1", "commit");
  EXPECT_TRUE(Eventually([&] { return RemoteState("t1") == "committed"; }));
  EXPECT_EQ(Committed(), "3");
  EXPECT_GE(coordinator_.decision_queries("t1"), 1);
}

TEST_F(ParticipantProtocolTest, StartRecoversInDoubtTxnsAtOnce) {
  // A txn prepared by an earlier "process", decided commit by the coordinator.
  Stage("t1", 9);
  TxnRecord rec;
  rec.txn_id = "t1";
  rec.coordinator = coordinator_.url();
  rec.prepared_at_ms = SystemClock::Default()->NowUnixMs();
  ASSERT_EQ(*resource_->Prepare(rec), Vote::kYes);
  coordinator_.SetDecision("t1", "commit");
  options_.in_doubt_query_after = std::chrono::minutes(10);  // only the start pass can do it
  StartServing();
  ASSERT_TRUE(participant_->Start().ok());
  EXPECT_EQ(Committed(), "9");
}

TEST_F(ParticipantProtocolTest, SweeperAbortsStaleActiveWork) {
  options_.active_timeout = std::chrono::milliseconds(50);
  StartServing();
  ASSERT_TRUE(participant_->Start().ok());
  Stage("stale");
  EXPECT_TRUE(Eventually([&] { return RemoteState("stale") == "aborted"; }));
  EXPECT_EQ(resource_->LockOwner("k"), "");
  EXPECT_EQ(Vote("stale"), "no");
}

TEST_F(ParticipantProtocolTest, FailpointsFailTheirOperation) {
  StartServing();
  Stage("t1", 2);
  ASSERT_TRUE(failpoint::Configure("participant.before_prepare=error").ok());
  EXPECT_EQ(Vote("t1"), "no");
  EXPECT_EQ(RemoteState("t1"), "aborted");

  ASSERT_TRUE(failpoint::Configure("participant.after_prepare_durable=error").ok());
  Stage("t2", 2);
  EXPECT_EQ(Vote("t2"), "http 503");
  EXPECT_EQ(RemoteState("t2"), "prepared");  // durable; the coordinator will abort or ask

  ASSERT_TRUE(failpoint::Configure("participant.before_commit_apply=error").ok());
  EXPECT_EQ(Call("/commit", {{"txn_id", "t2"}}).status, 503);
  EXPECT_EQ(RemoteState("t2"), "prepared");
  ASSERT_TRUE(failpoint::Configure("").ok());
  EXPECT_EQ(Call("/commit", {{"txn_id", "t2"}}).status, 200);
  EXPECT_EQ(Committed(), "2");

  Stage("t5", 1);
  EXPECT_EQ(Vote("t5", {{"protocol", "3pc"}}), "yes");
  ASSERT_TRUE(failpoint::Configure("participant.after_precommit_durable=error").ok());
  EXPECT_EQ(Call("/precommit", {{"txn_id", "t5"}}).status, 503);
  EXPECT_EQ(RemoteState("t5"), "precommitted");  // durable before the failpoint
  ASSERT_TRUE(failpoint::Configure("").ok());
  EXPECT_EQ(Call("/precommit", {{"txn_id", "t5"}}).status, 200);

  ASSERT_TRUE(failpoint::Configure("participant.before_abort_apply=error").ok());
  EXPECT_EQ(Call("/abort", {{"txn_id", "t3"}}).status, 503);
  ASSERT_TRUE(failpoint::Configure("participant.before_enlist=error").ok());
  EXPECT_EQ(participant_->Enlist("t4").code(), StatusCode::kUnavailable);
}

class ThreePhaseTerminationTest : public ParticipantProtocolTest {
 protected:
  void SetUp() override {
    ParticipantProtocolTest::SetUp();
    options_.in_doubt_query_after = std::chrono::milliseconds(0);
    StartServing();
  }
  // Prepares `txn` under 3PC with an unreachable coordinator and `peers`.
  void Prepare3pc(const std::string& txn, const std::vector<std::string>& peers) {
    Stage(txn, 4);
    json participants = json::array({server_.url()});  // self is skipped
    for (const std::string& p : peers) participants.push_back(p);
    ASSERT_EQ(Vote(txn, {{"protocol", "3pc"},
                         {"coordinator", testutil::DeadUrl()},
                         {"participants", participants}}),
              "yes");
  }
};

TEST_F(ThreePhaseTerminationTest, PeerPrecommittedMeansCommit) {
  FakePeer a("prepared"), b("precommitted");
  Prepare3pc("t1", {a.url(), b.url()});
  EXPECT_EQ(participant_->RecoverOnce(), 1);
  EXPECT_EQ(RemoteState("t1"), "committed");
  EXPECT_EQ(Committed(), "4");
}

TEST_F(ThreePhaseTerminationTest, AllPeersOnlyPreparedMeansAbort) {
  FakePeer a("prepared"), b("unknown");
  Prepare3pc("t1", {a.url(), b.url()});
  EXPECT_EQ(participant_->RecoverOnce(), 1);
  EXPECT_EQ(RemoteState("t1"), "aborted");
  EXPECT_EQ(Committed(), "0");
}

TEST_F(ThreePhaseTerminationTest, UnreachablePeerLeavesItUndecided) {
  FakePeer a("prepared");
  Prepare3pc("t1", {a.url(), testutil::DeadUrl()});
  EXPECT_EQ(participant_->RecoverOnce(), 0);
  EXPECT_EQ(RemoteState("t1"), "prepared");
}

TEST_F(ThreePhaseTerminationTest, SelfPrecommittedCommits) {
  FakePeer a("prepared");
  Prepare3pc("t1", {a.url(), testutil::DeadUrl()});
  ASSERT_EQ(Call("/precommit", {{"txn_id", "t1"}}).status, 200);
  EXPECT_EQ(participant_->RecoverOnce(), 1);
  EXPECT_EQ(RemoteState("t1"), "committed");
}

TEST_F(ThreePhaseTerminationTest, ReachableCoordinatorDecidesEvenIn3pc) {
  FakePeer a("prepared");
  Stage("t1", 4);
  ASSERT_EQ(Vote("t1", {{"protocol", "3pc"}, {"participants", {a.url()}}}), "yes");
  EXPECT_EQ(participant_->RecoverOnce(), 0);  // coordinator says pending: wait
  EXPECT_EQ(RemoteState("t1"), "prepared");
}

}  // namespace
}  // namespace verdict::participant
