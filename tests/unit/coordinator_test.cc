// Coordinator engine tests over the transport and log seams: participants are
// in-process fakes, the log is a real LevelDB log wrapped to record the order
// of writes and to inject failures.
#include "verdict/coordinator/coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "verdict/common/ids.h"

namespace verdict::coordinator {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Shared, ordered record of what happened: "log:<state>:<sync>" and "send:<verb>:<url>".
class EventLog {
 public:
  void Add(std::string e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  std::vector<std::string> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  // Index of the first event starting with `prefix`, or -1.
  int First(const std::string& prefix) {
    auto ev = Events();
    for (size_t i = 0; i < ev.size(); ++i) {
      if (ev[i].rfind(prefix, 0) == 0) return static_cast<int>(i);
    }
    return -1;
  }
  int Count(const std::string& prefix) {
    int n = 0;
    for (const auto& e : Events()) n += e.rfind(prefix, 0) == 0;
    return n;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
};

class RecordingLog : public DecisionLog {
 public:
  RecordingLog(std::unique_ptr<DecisionLog> inner, EventLog* events)
      : inner_(std::move(inner)), events_(events) {}
  Status Write(const Transaction& txn, bool sync, const std::string& key) override {
    if (fail_states.count(txn.state)) return Status::IoError("injected");
    events_->Add("log:" + std::string(TxnStateName(txn.state)) + ":" + (sync ? "sync" : "nosync"));
    return inner_->Write(txn, sync, key);
  }
  Result<std::optional<Transaction>> Read(const std::string& id) override { return inner_->Read(id); }
  Result<std::optional<std::string>> LookupIdempotencyKey(const std::string& k) override {
    return inner_->LookupIdempotencyKey(k);
  }
  Status ScanIncomplete(const std::function<bool(Transaction)>& fn) override {
    return inner_->ScanIncomplete(fn);
  }
  Status ScanAll(const std::string& after, const std::function<bool(Transaction)>& fn) override {
    return inner_->ScanAll(after, fn);
  }
  Result<int64_t> DeleteCompletedBefore(int64_t c) override { return inner_->DeleteCompletedBefore(c); }

  std::set<TxnState> fail_states;  // set before use; not thread-safe to change later

 private:
  std::unique_ptr<DecisionLog> inner_;
  EventLog* events_;
};

// Routes requests to per-participant handlers by URL prefix.
class FakeTransport : public HttpTransport {
 public:
  using Handler = std::function<Result<HttpResponse>(const std::string& verb, const json& body)>;
  explicit FakeTransport(EventLog* events) : events_(events) {}
  void Set(const std::string& base, Handler h) {
    std::lock_guard lock(mu_);
    handlers_[base] = std::move(h);
  }
  Result<HttpResponse> Do(const HttpRequest& req) override {
    Handler h;
    std::string verb;
    {
      std::lock_guard lock(mu_);
      for (auto& [base, handler] : handlers_) {
        if (req.url.rfind(base + "/", 0) == 0) {
          h = handler;
          verb = req.url.substr(base.size() + 1);
          if (auto q = verb.find('?'); q != std::string::npos) verb = verb.substr(0, q);
          events_->Add("send:" + verb + ":" + base);
        }
      }
    }
    if (!h) return Status::Unavailable("connection refused");
    json body = req.body.empty() ? json::object() : json::parse(req.body);
    return h(verb, body);
  }

 private:
  std::mutex mu_;
  std::map<std::string, Handler> handlers_;
  EventLog* events_;
};

Result<HttpResponse> Ok(json body = json::object()) { return HttpResponse{200, body.dump()}; }

// A well-behaved participant that votes `vote`.
FakeTransport::Handler Voter(std::string vote, std::chrono::milliseconds prepare_delay = 0ms) {
  return [vote, prepare_delay](const std::string& verb, const json&) -> Result<HttpResponse> {
    if (verb == "prepare") {
      std::this_thread::sleep_for(prepare_delay);
      return Ok({{"vote", vote}});
    }
    return Ok();
  };
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("verdict-coord-test-" + NewRandomId());
    auto opened = OpenLevelDbDecisionLog(dir_.string());
    ASSERT_TRUE(opened.ok());
    log_ = std::make_unique<RecordingLog>(std::move(opened).value(), &events_);
    transport_ = std::make_unique<FakeTransport>(&events_);
  }
  void TearDown() override {
    coord_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  Coordinator& Coord() {
    if (!coord_) {
      CoordinatorOptions o;
      o.self_url = "http://coordinator";
      o.retry_initial = 10ms;
      o.retry_max = 50ms;
      o.keep_completed = 60s;
      coord_ = std::make_unique<Coordinator>(o, log_.get(), transport_.get(), SystemClock::Default());
    }
    return *coord_;
  }
  Transaction Create(std::vector<std::string> urls, Protocol protocol = Protocol::k2pc,
                     int64_t timeout_ms = 30'000) {
    CreateRequest req;
    req.protocol = protocol;
    req.timeout_ms = timeout_ms;
    for (size_t i = 0; i < urls.size(); ++i) req.participants.push_back({"p" + std::to_string(i), urls[i]});
    auto txn = Coord().Create(req);
    EXPECT_TRUE(txn.ok()) << txn.status().ToString();
    return *txn;
  }
  bool WaitCompleted(const std::string& id, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto t = Coord().Get(id);
      if (t.ok() && t->completed) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::filesystem::path dir_;
  EventLog events_;
  std::unique_ptr<RecordingLog> log_;
  std::unique_ptr<FakeTransport> transport_;
  std::unique_ptr<Coordinator> coord_;
};

TEST_F(CoordinatorTest, CommitWhenAllVoteYesAndDecisionIsForcedFirst) {
  transport_->Set("http://a", Voter("yes"));
  transport_->Set("http://b", Voter("yes"));
  Transaction t = Create({"http://a", "http://b"});
  auto done = Coord().Commit(t.id);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->state, TxnState::kCommitted);
  EXPECT_TRUE(done->completed);
  for (const auto& p : done->participants) {
    EXPECT_EQ(p.vote, Vote::kYes);
    EXPECT_TRUE(p.acked);
  }
  int decision = events_.First("log:committing:sync");
  int first_commit = events_.First("send:commit:");
  ASSERT_GE(decision, 0);
  ASSERT_GE(first_commit, 0);
  EXPECT_LT(decision, first_commit) << "commit decision must be durable before any commit is sent";
  EXPECT_GT(decision, events_.First("send:prepare:"));
  EXPECT_EQ(*Coord().DecisionFor(t.id), "commit");
}

TEST_F(CoordinatorTest, PreparesRunInParallel) {
  transport_->Set("http://a", Voter("yes", 300ms));
  transport_->Set("http://b", Voter("yes", 300ms));
  transport_->Set("http://c", Voter("yes", 300ms));
  Transaction t = Create({"http://a", "http://b", "http://c"});
  auto start = std::chrono::steady_clock::now();
  auto done = Coord().Commit(t.id);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, TxnState::kCommitted);
  EXPECT_LT(elapsed, 800ms) << "three 300 ms prepares one after another would take 900 ms";
}

TEST_F(CoordinatorTest, AnyNoVoteAbortsAndOnlyYesVotersHearAbort) {
  transport_->Set("http://a", Voter("yes"));
  transport_->Set("http://b", Voter("no"));
  Transaction t = Create({"http://a", "http://b"});
  auto done = Coord().Commit(t.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, TxnState::kAborted);
  EXPECT_NE(done->reason.find("p1"), std::string::npos) << done->reason;
  EXPECT_TRUE(done->completed);
  EXPECT_EQ(events_.Count("send:commit:"), 0);
  EXPECT_EQ(events_.Count("send:abort:http://a"), 1);
  EXPECT_EQ(events_.Count("send:abort:http://b"), 0);
  EXPECT_EQ(events_.Count("log:committing"), 0);
  EXPECT_EQ(*Coord().DecisionFor(t.id), "abort");
}

TEST_F(CoordinatorTest, FailedPrepareCountsAsNoButStillGetsAbort) {
  transport_->Set("http://a", Voter("yes"));
  transport_->Set("http://b", [](const std::string& verb, const json&) -> Result<HttpResponse> {
    if (verb == "prepare") return Status::Unavailable("timed out");
    return Ok();
  });
  Transaction t = Create({"http://a", "http://b"});
  auto done = Coord().Commit(t.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, TxnState::kAborted);
  EXPECT_EQ(done->participants[1].vote, Vote::kNo);
  // It may have prepared before the reply was lost: it must hear the abort.
  EXPECT_EQ(events_.Count("send:abort:http://b"), 1);
  EXPECT_TRUE(done->completed);
}

TEST_F(CoordinatorTest, PhaseTwoIsRetriedUntilAcknowledged) {
  std::atomic<int> commit_calls{0};
  transport_->Set("http://a", Voter("yes"));
  transport_->Set("http://b", [&](const std::string& verb, const json&) -> Result<HttpResponse> {
    if (verb == "prepare") return Ok({{"vote", "yes"}});
    if (verb == "commit" && ++commit_calls < 4) return Status::Unavailable("down");
    return Ok();
  });
  Transaction t = Create({"http://a", "http://b"});
  auto done = Coord().Commit(t.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, TxnState::kCommitted);
  EXPECT_FALSE(done->completed);
  ASSERT_TRUE(WaitCompleted(t.id));
  EXPECT_GE(commit_calls.load(), 4);
  auto logged = log_->Read(t.id);
  ASSERT_TRUE(logged.ok() && logged->has_value());
  EXPECT_TRUE((*logged)->completed);
}

TEST_F(CoordinatorTest, ReadOnlyParticipantsNeedNoPhaseTwo) {
  transport_->Set("http://a", Voter("read_only"));
  transport_->Set("http://b", Voter("yes"));
  Transaction t = Create({"http://a", "http://b"});
  auto done = Coord().Commit(t.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, TxnState::kCommitted);
  EXPECT_TRUE(done->completed);
  EXPECT_EQ(events_.Count("send:commit:http://a"), 0);
  EXPECT_EQ(events_.Count("send:commit:http://b"), 1);
}

TEST_F(CoordinatorTest, DuplicateAndConflictingCalls) {
  transport_->Set("http://a", Voter("yes"));
  Transaction t = Create({"http://a"});
  ASSERT_TRUE(Coord().Commit(t.id).ok());
  auto again = Coord().Commit(t.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, TxnState::kCommitted);
  EXPECT_EQ(events_.Count("send:prepare:"), 1) << "a repeated commit must not prepare again";
  EXPECT_EQ(Coord().Abort(t.id).status().code(), StatusCode::kConflict);

  Transaction u = Create({"http://a"});
  auto aborted = Coord().Abort(u.id);
  ASSERT_TRUE(aborted.ok());
  EXPECT_EQ(aborted->state, TxnState::kAborted);
  EXPECT_TRUE(Coord().Abort(u.id).ok());
  EXPECT_EQ(Coord().Commit(u.id).status().code(), StatusCode::kConflict);
  EXPECT_EQ(Coord().Commit("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*Coord().DecisionFor("nope"), "abort");
}

TEST_F(CoordinatorTest, ConcurrentCommitsGetTheSameOutcome) {
  transport_->Set("http://a", Voter("yes", 100ms));
  Transaction t = Create({"http://a"});
  std::vector<std::thread> threads;
  std::atomic<int> committed{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = Coord().Commit(t.id);
      if (r.ok() && r->state == TxnState::kCommitted) committed++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(committed.load(), 8);
  EXPECT_EQ(events_.Count("send:prepare:"), 1);
}

TEST_F(CoordinatorTest, EnlistRules) {
  Transaction t = Create({});
  NewParticipant a{"a", "http://a"};
  auto r = Coord().Enlist(t.id, a);
  ASSERT_TRUE(r.ok());
  r = Coord().Enlist(t.id, a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->participants.size(), 1u) << "same name twice is a no-op";
  EXPECT_EQ(Coord().Enlist(t.id, {"a", "http://other"}).status().code(), StatusCode::kConflict);
  EXPECT_EQ(Coord().Enlist(t.id, {"b", "not a url"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Coord().Enlist("unknown", a).status().code(), StatusCode::kNotFound);
  transport_->Set("http://a", Voter("yes"));
  ASSERT_TRUE(Coord().Commit(t.id).ok());
  EXPECT_EQ(Coord().Enlist(t.id, {"b", "http://b"}).status().code(), StatusCode::kConflict);
}

TEST_F(CoordinatorTest, ActiveTransactionTimesOut) {
  transport_->Set("http://a", Voter("yes"));
  Transaction t = Create({"http://a"}, Protocol::k2pc, /*timeout_ms=*/100);
  ASSERT_TRUE(WaitCompleted(t.id, 3s));
  auto got = Coord().Get(t.id);
  EXPECT_EQ(got->state, TxnState::kAborted);
  EXPECT_EQ(got->reason, "timeout");
  EXPECT_EQ(events_.Count("send:abort:http://a"), 1);
  EXPECT_EQ(Coord().Commit(t.id).status().code(), StatusCode::kConflict);
}

TEST_F(CoordinatorTest, FailedCommitRecordBecomesDurableAbort) {
  log_->fail_states = {TxnState::kCommitting};
  transport_->Set("http://a", Voter("yes"));
  Transaction t = Create({"http://a"});
  auto done = Coord().Commit(t.id);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->state, TxnState::kAborted);
  EXPECT_NE(done->reason.find("decision log"), std::string::npos);
  EXPECT_EQ(events_.Count("send:commit:"), 0);
  EXPECT_EQ(events_.First("log:aborting:sync") >= 0, true);
}

TEST_F(CoordinatorTest, UnwritableLogGivesInDoubtNeverAborted) {
  log_->fail_states = {TxnState::kCommitting, TxnState::kAborting};
  transport_->Set("http://a", Voter("yes"));
  Transaction t = Create({"http://a"});
  auto done = Coord().Commit(t.id);
  EXPECT_EQ(done.status().code(), StatusCode::kInDoubt);
  auto got = Coord().Get(t.id);
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->state, TxnState::kAborted);
  EXPECT_NE(got->state, TxnState::kCommitted);
  EXPECT_EQ(*Coord().DecisionFor(t.id), "pending");
  EXPECT_EQ(events_.Count("send:commit:"), 0);
  EXPECT_EQ(Coord().Commit(t.id).status().code(), StatusCode::kInDoubt);
}

TEST_F(CoordinatorTest, IdempotencyKeyReturnsTheSameTransaction) {
  CreateRequest req;
  req.idempotency_key = "order-42";
  auto first = Coord().Create(req);
  auto second = Coord().Create(req);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->id, second->id);
  req.idempotency_key = "order-43";
  EXPECT_NE(Coord().Create(req)->id, first->id);
}

TEST_F(CoordinatorTest, InvalidCreateRequests) {
  CreateRequest req;
  req.timeout_ms = 0;
  EXPECT_EQ(Coord().Create(req).status().code(), StatusCode::kInvalidArgument);
  req.timeout_ms = 1000;
  req.participants = {{"", "http://a"}};
  EXPECT_EQ(Coord().Create(req).status().code(), StatusCode::kInvalidArgument);
  req.participants = {{"a", "ftp://a"}};
  EXPECT_EQ(Coord().Create(req).status().code(), StatusCode::kInvalidArgument);
  req.participants = {{"a", "http://a"}, {"a", "http://b"}};
  EXPECT_EQ(Coord().Create(req).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, ThreePhaseCommitPrecommitsBeforeCommitting) {
  transport_->Set("http://a", Voter("yes"));
  transport_->Set("http://b", Voter("yes"));
  Transaction t = Create({"http://a", "http://b"}, Protocol::k3pc);
  auto done = Coord().Commit(t.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, TxnState::kCommitted);
  EXPECT_EQ(done->protocol, Protocol::k3pc);
  int precommit_logged = events_.First("log:precommitted:sync");
  int first_precommit = events_.First("send:precommit:");
  int first_commit = events_.First("send:commit:");
  ASSERT_GE(precommit_logged, 0);
  EXPECT_LT(precommit_logged, first_precommit);
  EXPECT_EQ(events_.Count("send:precommit:"), 2);
  EXPECT_LT(events_.First("send:precommit:"), first_commit);
  EXPECT_EQ(events_.Count("send:commit:"), 2);
}

TEST_F(CoordinatorTest, ResolveRespectsLoggedDecisions) {
  transport_->Set("http://a", Voter("yes"));
  Transaction t = Create({"http://a"});
  ASSERT_TRUE(Coord().Commit(t.id).ok());
  EXPECT_EQ(Coord().Resolve(t.id, Decision::kAbort).status().code(), StatusCode::kConflict);
  EXPECT_TRUE(Coord().Resolve(t.id, Decision::kCommit).ok());
  Transaction u = Create({"http://a"});
  auto r = Coord().Resolve(u.id, Decision::kAbort);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, TxnState::kAborted);
}

}  // namespace
}  // namespace verdict::coordinator
