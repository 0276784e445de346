// Shared fixture of the integration and fault tests: one real verdictd and two real
// verdict-bank participants ("bank-a", "bank-b"), on the embedded store or on
// PostgreSQL (both banks share one fresh database, so gid prefixes matter),
// with short retry and query intervals so recovery is quick to observe.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <memory>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include "support/harness.h"
#include "support/postgres_cluster.h"

namespace verdict::testing {

enum class Store { kEmbedded, kPostgres };

inline std::string StoreName(Store s) { return s == Store::kEmbedded ? "embedded" : "postgres"; }
inline void PrintTo(Store s, std::ostream* os) { *os << StoreName(s); }

// "<store>_<protocol>", for suites parameterized over (Store, "2pc"|"3pc").
inline std::string StoreProtocolName(
    const ::testing::TestParamInfo<std::tuple<Store, std::string>>& info) {
  return StoreName(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
}

// `text` with every character GoogleTest refuses in a test name replaced by '_'.
inline std::string TestNameOf(std::string text) {
  for (char& ch : text) {
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return text;
}

class ClusterFixture : public ::testing::Test {
 protected:
  virtual Store store() const = 0;
  // Extra bank flags (e.g. 3PC termination timing).
  virtual std::vector<std::string> BankArgs() const {
    return {"--in-doubt-query-after", "1s", "--active-timeout", "5s"};
  }

  // True: verdictd keeps its decision log in PostgreSQL (a database of its own).
  virtual bool postgres_decision_log() const { return false; }

  void SetUp() override {
    ServiceOptions coord_opts;
    coord_opts.port = FreePort();
    coord_opts.extra_args = {"--retry-max", "300ms", "--recovery-interval", "500ms",
                             "--prepare-timeout", "3s", "--phase2-timeout", "2s"};
    if (postgres_decision_log()) {
      log_uri_ = NewTestDatabase("decision_log");
      coord_opts.extra_args.insert(coord_opts.extra_args.end(),
                                   {"--log-backend", "postgres", "--pg-uri", log_uri_});
    }
    coord_ = std::make_unique<VerdictdProcess>(coord_opts);
    std::string coord_url = "http://127.0.0.1:" + std::to_string(coord_opts.port);
    if (store() == Store::kPostgres) pg_uri_ = NewTestDatabase("fault");
    bank_a_ = MakeBank(coord_url, "bank-a");
    bank_b_ = MakeBank(coord_url, "bank-b");
  }

  std::unique_ptr<BankProcess> MakeBank(const std::string& coord_url, const std::string& name) {
    BankOptions o;
    o.coordinator_url = coord_url;
    o.name = name;
    o.pg_uri = pg_uri_;
    o.service.port = FreePort();
    o.service.extra_args = BankArgs();
    return std::make_unique<BankProcess>(o);
  }

  void StartAll() {
    ASSERT_TRUE(coord_->Start());
    ASSERT_TRUE(bank_a_->Start());
    ASSERT_TRUE(bank_b_->Start());
  }

  // Creates a transaction and stages `amount` from `from`@bank-a to `to`@bank-b.
  std::string StageTransfer(const std::string& protocol, const std::string& from,
                            const std::string& to, int64_t amount) {
    HttpResult t = CreateTxn(coord_->url(), {{"protocol", protocol}, {"timeout_ms", 30000}});
    EXPECT_EQ(t.status, 201) << t.Describe();
    std::string id = t.json.value("id", "");
    HttpResult a = bank_a_->Apply(id, from, -amount);
    EXPECT_EQ(a.status, 200) << a.Describe();
    HttpResult b = bank_b_->Apply(id, to, amount);
    EXPECT_EQ(b.status, 200) << b.Describe();
    return id;
  }

  // Waits until the coordinator reports `id` completed, every account pair's
  // balances add up to `total`, and nothing is left prepared in PostgreSQL.
  // Returns "committed"/"aborted", or "" on timeout.
  std::string AwaitSettled(const std::string& id,
                           const std::vector<std::pair<std::string, std::string>>& pairs,
                           int64_t total, std::chrono::milliseconds timeout = 60s) {
    std::string outcome;
    bool ok = WaitFor([&] {
      HttpResult t = GetTxn(coord_->url(), id);
      if (t.status != 200 || t.json.value("completed", false) != true) return false;
      for (const auto& [a, b] : pairs) {
        auto ba = bank_a_->Balance(a);
        auto bb = bank_b_->Balance(b);
        if (!ba || !bb || *ba + *bb != total) return false;
      }
      outcome = t.json.value("state", "");
      return true;
    }, timeout, 50ms);
    return ok ? outcome : "";
  }

  // After everything settled: no transaction in doubt at the coordinator and
  // no prepared transaction left in PostgreSQL.
  void ExpectNothingInDoubt() {
    EXPECT_TRUE(WaitFor([&] {
      HttpResult l = ListTransactions(coord_->url(), "in_doubt");
      return l.status == 200 && l.json["transactions"].empty();
    }, 30s)) << ListTransactions(coord_->url(), "in_doubt").body;
    if (!pg_uri_.empty()) {
      EXPECT_TRUE(WaitFor([&] { return CountPreparedXacts(pg_uri_, "verdict:") == 0; }, 30s))
          << CountPreparedXacts(pg_uri_, "verdict:") << " prepared transactions left";
    }
  }

  std::string DumpState(const std::string& id) {
    std::string out = "txn: " + GetTxn(coord_->url(), id).body + "\n";
    out += "--- verdictd log ---\n" + coord_->LogTail(30);
    out += "--- bank-a log ---\n" + bank_a_->LogTail(30);
    out += "--- bank-b log ---\n" + bank_b_->LogTail(30);
    return out;
  }

  std::string pg_uri_;   // the banks' database (Store::kPostgres)
  std::string log_uri_;  // verdictd's decision-log database (postgres_decision_log())
  std::unique_ptr<VerdictdProcess> coord_;
  std::unique_ptr<BankProcess> bank_a_;
  std::unique_ptr<BankProcess> bank_b_;
};

}  // namespace verdict::testing
