// The coordinator's REST API against a real verdictd process: contract status
// codes and error bodies for good and bad input, auth, and the listen guard.
#include <gtest/gtest.h>

#include <thread>

#include "support/harness.h"

namespace verdict::testing {
namespace {

using nlohmann::json;

class CoordinatorApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(coord_.Start()); }
  VerdictdProcess coord_;
};

TEST_F(CoordinatorApiTest, CreateReadAndDefaults) {
  HttpResult created = CreateTxn(coord_.url());
  ASSERT_EQ(created.status, 201) << created.Describe();
  const json& t = created.json;
  EXPECT_EQ(t["state"], "active");
  EXPECT_EQ(t["protocol"], "2pc");
  EXPECT_EQ(t["completed"], false);
  EXPECT_TRUE(t["participants"].is_array());
  EXPECT_TRUE(t["timeout_ms"].is_number_integer());
  EXPECT_TRUE(t["created_at"].is_string());
  EXPECT_FALSE(t.contains("decided_at"));
  std::string id = t["id"];
  HttpResult got = GetTxn(coord_.url(), id);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json["id"], id);
  HttpResult d = Decision(coord_.url(), id);
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.json["decision"], "pending");
}

TEST_F(CoordinatorApiTest, BadInputGetsContractErrors) {
  struct Case {
    std::string body;
    int status;
  };
  std::vector<Case> cases = {
      {"{not json", 400},
      {"[1,2]", 400},
      {R"({"protocol":"4pc"})", 400},
      {R"({"protocol":3})", 400},
      {R"({"timeout_ms":-5})", 400},
      {R"({"timeout_ms":"soon"})", 400},
      {R"({"timeout_ms":1.5})", 400},
      {R"({"participants":{}})", 400},
      {R"({"participants":[{"name":"a"}]})", 400},
      {R"({"participants":[{"name":"a","url":"not-a-url"}]})", 400},
      {R"({"participants":[{"name":"","url":"http://127.0.0.1:1"}]})", 400},
  };
  for (const auto& c : cases) {
    HttpResult r = HttpPost(coord_.url() + "/v1/transactions", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.Describe();
    EXPECT_FALSE(r.ErrorCode().empty()) << c.body << " -> " << r.Describe();
    EXPECT_TRUE(r.json["error"]["message"].is_string()) << r.Describe();
  }
  HttpResult enlist = HttpPost(coord_.url() + "/v1/transactions/" +
                                   CreateTxn(coord_.url()).json["id"].get<std::string>() +
                                   "/participants",
                               "{\"name\":5}");
  EXPECT_EQ(enlist.status, 400) << enlist.Describe();
}

TEST_F(CoordinatorApiTest, UnknownIdsAndIllegalTransitions) {
  EXPECT_EQ(GetTxn(coord_.url(), "0123456789abcdef0123456789abcdef").status, 404);
  EXPECT_EQ(Commit(coord_.url(), "nope").status, 404);
  EXPECT_EQ(Abort(coord_.url(), "nope").status, 404);
  EXPECT_EQ(AddParticipant(coord_.url(), "nope", "a", "http://127.0.0.1:1").status, 404);
  HttpResult d = Decision(coord_.url(), "never-existed");
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.json["decision"], "abort") << "presumed abort";

  std::string id = CreateTxn(coord_.url()).json["id"];
  HttpResult aborted = Abort(coord_.url(), id);
  ASSERT_EQ(aborted.status, 200) << aborted.Describe();
  EXPECT_EQ(aborted.json["state"], "aborted");
  EXPECT_EQ(Abort(coord_.url(), id).status, 200) << "abort is idempotent";
  HttpResult commit = Commit(coord_.url(), id);
  EXPECT_EQ(commit.status, 409) << commit.Describe();
  EXPECT_FALSE(commit.ErrorCode().empty());
  HttpResult enlist = AddParticipant(coord_.url(), id, "late", "http://127.0.0.1:1");
  EXPECT_EQ(enlist.status, 409) << enlist.Describe();

  // A transaction with no participants commits trivially; abort is then 409.
  std::string empty = CreateTxn(coord_.url()).json["id"];
  HttpResult c = Commit(coord_.url(), empty);
  ASSERT_EQ(c.status, 200) << c.Describe();
  EXPECT_EQ(c.json["state"], "committed");
  EXPECT_EQ(c.json["completed"], true);
  EXPECT_TRUE(c.json["decided_at"].is_string());
  EXPECT_EQ(Commit(coord_.url(), empty).status, 200) << "commit is idempotent";
  EXPECT_EQ(Abort(coord_.url(), empty).status, 409);
}

TEST_F(CoordinatorApiTest, OversizedBodyIs413) {
  std::string big = "{\"x\":\"" + std::string(2 << 20, 'a') + "\"}";
  HttpResult r = HttpPost(coord_.url() + "/v1/transactions", big);
  EXPECT_EQ(r.status, 413) << r.Describe();
  EXPECT_EQ(coord_.Healthy(), true);
}

TEST_F(CoordinatorApiTest, IdempotencyKey) {
  Headers key = {{"Idempotency-Key", "order-7"}};
  HttpResult a = CreateTxn(coord_.url(), json::object(), key);
  HttpResult b = CreateTxn(coord_.url(), json::object(), key);
  ASSERT_EQ(a.status, 201);
  ASSERT_EQ(b.status, 201);
  EXPECT_EQ(a.json["id"], b.json["id"]);
  // It survives a restart: the key is in the decision log.
  coord_.Kill9();
  ASSERT_TRUE(coord_.Restart());
  HttpResult c = CreateTxn(coord_.url(), json::object(), key);
  EXPECT_EQ(c.json["id"], a.json["id"]);
}

TEST_F(CoordinatorApiTest, AdminEndpointsAndMetrics) {
  std::string id = CreateTxn(coord_.url()).json["id"];
  HttpResult list = ListTransactions(coord_.url(), "in_doubt");
  ASSERT_EQ(list.status, 200) << list.Describe();
  bool found = false;
  for (const auto& t : list.json["transactions"]) found |= t["id"] == id;
  EXPECT_TRUE(found);
  EXPECT_EQ(ListTransactions(coord_.url(), "bogus").status, 400);
  EXPECT_EQ(HttpGet(coord_.url() + "/admin/transactions?limit=0").status, 400);
  HttpResult resolved = Resolve(coord_.url(), id, "abort");
  ASSERT_EQ(resolved.status, 200) << resolved.Describe();
  EXPECT_EQ(Resolve(coord_.url(), id, "commit").status, 409);
  EXPECT_EQ(Resolve(coord_.url(), id, "maybe").status, 400);
  HttpResult run = RunRecovery(coord_.url());
  ASSERT_EQ(run.status, 200);
  EXPECT_TRUE(run.json["resumed"].is_number_integer());
  HttpResult metrics = HttpGet(coord_.url() + "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("verdict_transactions_created_total 1"), std::string::npos)
      << metrics.body;
  EXPECT_EQ(HttpGet(coord_.url() + "/healthz").json["status"], "ok");
}

TEST(CoordinatorAuthTest, TokensAreEnforced) {
  VerdictdProcess coord(ServiceOptions{.extra_args = {"--api-token", "s3cret", "--admin-token", "adm1n"}});
  ASSERT_TRUE(coord.Start());
  HttpResult none = CreateTxn(coord.url());
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.ErrorCode(), "unauthorized");
  EXPECT_EQ(CreateTxn(coord.url(), json::object(), BearerAuth("wrong")).status, 401);
  EXPECT_EQ(CreateTxn(coord.url(), json::object(), BearerAuth("s3cret")).status, 201);
  EXPECT_EQ(RunRecovery(coord.url(), BearerAuth("s3cret")).status, 401);
  EXPECT_EQ(RunRecovery(coord.url(), BearerAuth("adm1n")).status, 200);
  EXPECT_EQ(HttpGet(coord.url() + "/healthz").status, 200) << "healthz needs no token";
}

TEST(CoordinatorFlagsTest, BadFlagsAndNonLoopbackListen) {
  TempDir dir;
  auto run = [&](std::vector<std::string> args) {
    Process p({BinPath("verdictd"), std::move(args), {}, dir.Sub("out.log")});
    EXPECT_TRUE(p.Start());
    return p.WaitExit(10s);
  };
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_NE(run({"--no-such-flag"}).value_or(0), 0);
  EXPECT_NE(run({"--listen", "0.0.0.0:0", "--data-dir", dir.Sub("d")}).value_or(0), 0);
  EXPECT_NE(run({"--listen", "127.0.0.1:0", "--data-dir", "/proc/nope/x"}).value_or(0), 0);
  EXPECT_NE(run({"--listen", "127.0.0.1:0"}).value_or(0), 0) << "--data-dir is required";
  EXPECT_NE(run({"--listen", "127.0.0.1:0", "--log-backend", "postgres"}).value_or(0), 0)
      << "--pg-uri is required";
  EXPECT_NE(run({"--listen", "127.0.0.1:0", "--log-backend", "postgres", "--pg-uri",
                 "postgresql://postgres@127.0.0.1:" + std::to_string(FreePort()) + "/x"})
                .value_or(0),
            0)
      << "an unreachable database is refused at start-up";
  EXPECT_NE(run({"--listen", "127.0.0.1:0", "--log-backend", "mysql"}).value_or(0), 0);
  std::string log = ReadFile(dir.Sub("out.log"));
  EXPECT_NE(log.find("error: "), std::string::npos) << log;
}

TEST(CoordinatorRetentionTest, CompletedRecordsAreDeletedAfterRetention) {
  VerdictdProcess coord(ServiceOptions{
      .extra_args = {"--retention", "300ms", "--retention-check-interval", "100ms",
                     "--recovery-interval", "50ms"}});
  ASSERT_TRUE(coord.Start());
  std::string done = CreateTxn(coord.url()).json["id"];
  ASSERT_EQ(Commit(coord.url(), done).json["completed"], true);
  std::string open = CreateTxn(coord.url(), {{"timeout_ms", 60000}}).json["id"];
  // Kept while within the retention...
  EXPECT_EQ(GetTxn(coord.url(), done).status, 200);
  // ...then deleted from the log (and, after a restart, from memory too).
  std::this_thread::sleep_for(1s);
  coord.Kill9();
  ASSERT_TRUE(coord.Restart());
  EXPECT_EQ(GetTxn(coord.url(), done).status, 404);
  EXPECT_EQ(Decision(coord.url(), done).json["decision"], "abort") << "presumed abort";
  // An incomplete transaction is never deleted: recovery aborted it on restart.
  HttpResult still = GetTxn(coord.url(), open);
  ASSERT_EQ(still.status, 200) << still.Describe();
  EXPECT_EQ(still.json["state"], "aborted");
}

TEST(CoordinatorFlagsTest, PortInUseIsRefused) {
  VerdictdProcess first;
  ASSERT_TRUE(first.Start());
  TempDir dir;
  Process second({BinPath("verdictd"),
                  {"--listen", "127.0.0.1:" + std::to_string(first.port()), "--data-dir", dir.Sub("d")},
                  {},
                  dir.Sub("out.log")});
  ASSERT_TRUE(second.Start());
  EXPECT_EQ(second.WaitExit(10s), 1) << "a second coordinator must not share the port";
  EXPECT_NE(ReadFile(dir.Sub("out.log")).find("error: cannot listen"), std::string::npos);
}

TEST(CoordinatorFlagsTest, SigtermExitsZero) {
  VerdictdProcess coord;
  ASSERT_TRUE(coord.Start());
  EXPECT_EQ(coord.Stop(), 0);
}

}  // namespace
}  // namespace verdict::testing
