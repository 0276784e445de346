// verdict-bench: load generator for a verdict coordinator and verdict-bank
// participants. Each transfer is one distributed transaction:
//
//   POST {coordinator}/v1/transactions            {"protocol":P,"timeout_ms":T}
//   POST {bankA}/accounts/{from}/apply            Verdict-Txn-Id: id   {"delta":-amount}
//   POST {bankB}/accounts/{to}/apply              Verdict-Txn-Id: id   {"delta":+amount}
//   POST {coordinator}/v1/transactions/{id}/commit   (or /abort when an apply answered 409)
//
// The banks enlist themselves (the transaction is created without participants).
// At the end every account is read back and the total must equal the money put
// in at the start: exit code 0 only when money is conserved and no request
// failed unexpectedly.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "verdict/common/flags.h"
#include "verdict/common/ids.h"
#include "verdict/common/transport.h"

namespace verdict::bench {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Config {
  std::string coordinator = "http://127.0.0.1:7070";
  std::vector<std::string> banks;
  int64_t accounts = 100;
  int64_t initial_balance = 1000;
  int64_t max_amount = 0;  // 0 = initial_balance / 10
  int64_t transfers = 1000;
  int64_t concurrency = 16;
  int64_t overdraft_pct = 0;
  std::string protocol = "2pc";
  int64_t seed = 1;
  bool progress = false;
  bool json_output = false;
  std::string account_prefix;
  bool use_existing_accounts = false;
  int64_t txn_timeout_ms = 30'000;
  int64_t request_timeout_ms = 30'000;
  int64_t settle_timeout_ms = 30'000;
  std::string api_token;
};

// An origin ("http://host:port") plus a path prefix.
struct Endpoint {
  std::string origin;
  std::string prefix;
};

Endpoint ParseEndpoint(const std::string& url, std::string* error) {
  Endpoint ep;
  Status s = ValidateHttpUrl(url);
  if (s.ok()) s = SplitUrl(url, &ep.origin, &ep.prefix);
  if (!s.ok()) *error = s.message();
  return ep;
}

struct Reply {
  int status = 0;  // 0: no response
  std::string body;
  json j;  // null when not JSON
  std::string error;

  std::string ErrorCode() const {
    if (j.is_object() && j.contains("error") && j["error"].is_object() &&
        j["error"].contains("code") && j["error"]["code"].is_string()) {
      return j["error"]["code"].get<std::string>();
    }
    return "";
  }
  // Short form for the error tally: "no response (Connection)" / "HTTP 503 in_doubt".
  std::string Short() const {
    if (status == 0) return "no response (" + error + ")";
    return "HTTP " + std::to_string(status) + " " + ErrorCode();
  }
  std::string Describe() const {
    if (status == 0) return "no response (" + error + ")";
    std::string b = body.size() > 300 ? body.substr(0, 300) + "..." : body;
    return "HTTP " + std::to_string(status) + " " + b;
  }
};

// One keep-alive httplib::Client per origin, owned by one thread.
class Connections {
 public:
  explicit Connections(const Config& cfg) : cfg_(cfg) {}

  Reply Get(const Endpoint& ep, const std::string& path, const httplib::Headers& headers = {}) {
    return Do(ep, path, nullptr, headers);
  }
  Reply Post(const Endpoint& ep, const std::string& path, const std::string& body,
             const httplib::Headers& headers = {}) {
    return Do(ep, path, &body, headers);
  }

 private:
  httplib::Client& ClientFor(const std::string& origin) {
    auto it = clients_.find(origin);
    if (it != clients_.end()) return *it->second;
    auto c = std::make_unique<httplib::Client>(origin);
    c->set_tcp_nodelay(true);
    c->set_keep_alive(true);
    c->set_connection_timeout(5, 0);
    time_t sec = static_cast<time_t>(cfg_.request_timeout_ms / 1000);
    time_t usec = static_cast<time_t>((cfg_.request_timeout_ms % 1000) * 1000);
    c->set_read_timeout(sec, usec);
    c->set_write_timeout(sec, usec);
    httplib::Client& ref = *c;
    clients_.emplace(origin, std::move(c));
    return ref;
  }

  Reply Do(const Endpoint& ep, const std::string& path, const std::string* body,
           const httplib::Headers& headers) {
    httplib::Client& c = ClientFor(ep.origin);
    std::string full = ep.prefix + path;
    httplib::Result res = body == nullptr
                              ? c.Get(full.c_str(), headers)
                              : c.Post(full.c_str(), headers, *body, "application/json");
    Reply r;
    if (!res) {
      r.error = httplib::to_string(res.error());
      return r;
    }
    r.status = res->status;
    r.body = std::move(res->body);
    if (!r.body.empty()) {
      json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) r.j = std::move(j);
    }
    return r;
  }

  const Config& cfg_;
  std::map<std::string, std::unique_ptr<httplib::Client>> clients_;
};

enum class Outcome { kCommitted, kAborted, kInDoubt, kError };

struct Counters {
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> committed{0};
  std::atomic<int64_t> aborted{0};
  std::atomic<int64_t> aborted_overdraft{0};
  std::atomic<int64_t> in_doubt{0};
  std::atomic<int64_t> errors{0};
};

// Errors are rare; keep a few distinct messages for the report.
class ErrorLog {
 public:
  void Add(const std::string& message) {
    std::lock_guard lock(mu_);
    ++counts_[message];
  }
  std::vector<std::pair<std::string, int64_t>> Top(size_t n) const {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, int64_t>> v(counts_.begin(), counts_.end());
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
    if (v.size() > n) v.resize(n);
    return v;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> counts_;
};

struct Plan {
  size_t bank_from = 0;
  size_t bank_to = 0;
  int64_t from = 0;
  int64_t to = 0;
  int64_t amount = 0;
  bool overdraft = false;
};

class Bench {
 public:
  explicit Bench(Config cfg) : cfg_(std::move(cfg)) {}

  int Run();

 private:
  std::string AccountId(int64_t i) const { return cfg_.account_prefix + "-" + std::to_string(i); }
  Plan MakePlan(int64_t i) const;
  Outcome Transfer(Connections& conns, const Plan& plan, std::string* txn_id);
  // Runs fn(conns, i) for i in [0, n) on `concurrency` threads.
  void ParallelFor(int64_t n, const std::function<void(Connections&, int64_t)>& fn);
  bool SetUpAccounts();
  // Sum of every account's committed balance; nullopt when one cannot be read.
  std::optional<int64_t> SumBalances(std::string* error);
  void WaitForCompletion(const std::vector<std::string>& ids, int64_t deadline_ms,
                         int64_t* resolved_committed, int64_t* resolved_aborted,
                         int64_t* still_open);
  void ProgressLoop();
  httplib::Headers ApiHeaders() const {
    httplib::Headers h;
    if (!cfg_.api_token.empty()) h.emplace("Authorization", "Bearer " + cfg_.api_token);
    return h;
  }

  Config cfg_;
  Endpoint coord_;
  std::vector<Endpoint> banks_;
  int64_t total_money_ = 0;
  Counters counters_;
  ErrorLog errors_;
  std::mutex open_mu_;
  std::vector<std::string> open_txns_;  // in doubt, or decided but not yet completed
  std::atomic<bool> finished_{false};
  Clock::time_point start_;
};

Plan Bench::MakePlan(int64_t i) const {
  std::mt19937_64 rng(static_cast<uint64_t>(cfg_.seed) * 0x9E3779B97F4A7C15ULL +
                      static_cast<uint64_t>(i));
  Plan p;
  size_t nb = banks_.size();
  p.bank_from = rng() % nb;
  p.bank_to = nb > 1 ? (p.bank_from + 1 + rng() % (nb - 1)) % nb : p.bank_from;
  p.from = static_cast<int64_t>(rng() % static_cast<uint64_t>(cfg_.accounts));
  p.to = static_cast<int64_t>(rng() % static_cast<uint64_t>(cfg_.accounts));
  if (p.bank_from == p.bank_to && p.from == p.to && cfg_.accounts > 1) {
    p.to = (p.to + 1) % cfg_.accounts;
  }
  // Exactly floor(N * P / 100) overdrafts, spread evenly over the run.
  p.overdraft = (i * cfg_.overdraft_pct) / 100 != ((i + 1) * cfg_.overdraft_pct) / 100;
  if (p.overdraft) {
    p.amount = total_money_ + 1;  // more than any account can hold
  } else {
    p.amount = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(cfg_.max_amount));
  }
  return p;
}

Outcome Bench::Transfer(Connections& conns, const Plan& plan, std::string* txn_id) {
  json create = {{"protocol", cfg_.protocol}, {"timeout_ms", cfg_.txn_timeout_ms}};
  Reply r = conns.Post(coord_, "/v1/transactions", create.dump(), ApiHeaders());
  if (r.status != 201 || !r.j.is_object() || !r.j.contains("id") || !r.j["id"].is_string()) {
    errors_.Add("create transaction: " + r.Short());
    return Outcome::kError;
  }
  std::string id = r.j["id"].get<std::string>();
  *txn_id = id;
  httplib::Headers txn_header = {{"Verdict-Txn-Id", id}};

  bool abort = false;
  bool failed = false;
  struct Leg {
    size_t bank;
    int64_t account;
    int64_t delta;
  };
  const Leg legs[2] = {{plan.bank_from, plan.from, -plan.amount},
                       {plan.bank_to, plan.to, plan.amount}};
  for (const Leg& leg : legs) {
    json body = {{"delta", leg.delta}};
    Reply a = conns.Post(banks_[leg.bank], "/accounts/" + AccountId(leg.account) + "/apply",
                         body.dump(), txn_header);
    if (a.status == 200) {
      if (leg.delta < 0 && plan.overdraft) {
        errors_.Add("bank accepted an overdraft debit of " + std::to_string(plan.amount));
        failed = true;
        abort = true;
        break;
      }
      continue;
    }
    abort = true;
    if (a.status != 409) {
      errors_.Add("apply: " + a.Short());
      failed = true;
    }
    break;  // no point staging the other leg
  }

  if (abort) {
    Reply ab = conns.Post(coord_, "/v1/transactions/" + id + "/abort", "", ApiHeaders());
    if (ab.status == 200) return failed ? Outcome::kError : Outcome::kAborted;
    errors_.Add("abort: " + ab.Short());
    return Outcome::kError;
  }

  Reply c = conns.Post(coord_, "/v1/transactions/" + id + "/commit", "", ApiHeaders());
  if (c.status == 200 && c.j.is_object()) {
    std::string state = c.j.value("state", "");
    bool completed = c.j.value("completed", false);
    if (!completed) {
      std::lock_guard lock(open_mu_);
      open_txns_.push_back(id);
    }
    if (state == "committed") return Outcome::kCommitted;
    if (state == "aborted") return Outcome::kAborted;
    errors_.Add("commit answered 200 with state '" + state + "'");
    return Outcome::kError;
  }
  if (c.status == 503 && c.ErrorCode() == "in_doubt") {
    std::lock_guard lock(open_mu_);
    open_txns_.push_back(id);
    return Outcome::kInDoubt;
  }
  if (c.status == 409) {
    // Already aborted (e.g. by the coordinator's timeout): an abort outcome.
    return Outcome::kAborted;
  }
  errors_.Add("commit: " + c.Short());
  // A commit that broke off may have been decided either way: find out later.
  std::lock_guard lock(open_mu_);
  open_txns_.push_back(id);
  return Outcome::kError;
}

void Bench::ParallelFor(int64_t n, const std::function<void(Connections&, int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  int64_t threads = std::min<int64_t>(cfg_.concurrency, std::max<int64_t>(n, 1));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      Connections conns(cfg_);
      for (int64_t i = next++; i < n; i = next++) fn(conns, i);
    });
  }
  for (auto& t : pool) t.join();
}

bool Bench::SetUpAccounts() {
  int64_t n = static_cast<int64_t>(banks_.size()) * cfg_.accounts;
  std::atomic<int64_t> failures{0};
  std::mutex mu;
  std::string first_error;
  ParallelFor(n, [&](Connections& conns, int64_t k) {
    size_t bank = static_cast<size_t>(k / cfg_.accounts);
    int64_t i = k % cfg_.accounts;
    json body = {{"id", AccountId(i)}, {"balance", cfg_.initial_balance}};
    Reply r = conns.Post(banks_[bank], "/accounts", body.dump());
    if (r.status == 201) return;
    ++failures;
    std::lock_guard lock(mu);
    if (first_error.empty()) {
      first_error = cfg_.banks[bank] + "/accounts " + AccountId(i) + ": " + r.Describe();
      if (r.status == 409)
        first_error += " (use another --account-prefix, or --use-existing-accounts)";
    }
  });
  if (failures > 0) {
    fprintf(stderr, "verdict-bench: creating accounts failed (%" PRId64 " of %" PRId64 "): %s\n",
            failures.load(), n, first_error.c_str());
    return false;
  }
  return true;
}

std::optional<int64_t> Bench::SumBalances(std::string* error) {
  int64_t n = static_cast<int64_t>(banks_.size()) * cfg_.accounts;
  std::atomic<int64_t> sum{0};
  std::atomic<bool> ok{true};
  std::mutex mu;
  ParallelFor(n, [&](Connections& conns, int64_t k) {
    size_t bank = static_cast<size_t>(k / cfg_.accounts);
    int64_t i = k % cfg_.accounts;
    Reply r = conns.Get(banks_[bank], "/accounts/" + AccountId(i));
    if (r.status == 200 && r.j.is_object() && r.j.contains("balance") &&
        r.j["balance"].is_number_integer()) {
      sum += r.j["balance"].get<int64_t>();
      return;
    }
    ok = false;
    std::lock_guard lock(mu);
    if (error->empty())
      *error = cfg_.banks[bank] + "/accounts/" + AccountId(i) + ": " + r.Describe();
  });
  if (!ok) return std::nullopt;
  return sum.load();
}

void Bench::WaitForCompletion(const std::vector<std::string>& ids, int64_t deadline_ms,
                              int64_t* resolved_committed, int64_t* resolved_aborted,
                              int64_t* still_open) {
  auto deadline = Clock::now() + std::chrono::milliseconds(deadline_ms);
  std::vector<std::string> pending = ids;
  std::map<std::string, std::string> final_state;
  Connections conns(cfg_);
  while (!pending.empty()) {
    std::vector<std::string> next;
    for (const std::string& id : pending) {
      Reply r = conns.Get(coord_, "/v1/transactions/" + id, ApiHeaders());
      if (r.status == 200 && r.j.is_object()) {
        std::string state = r.j.value("state", "");
        final_state[id] = state;
        if (r.j.value("completed", false) && (state == "committed" || state == "aborted")) continue;
      }
      next.push_back(id);
    }
    pending.swap(next);
    if (pending.empty() || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  *resolved_committed = 0;
  *resolved_aborted = 0;
  for (const auto& [id, state] : final_state) {
    if (state == "committed") ++*resolved_committed;
    if (state == "aborted") ++*resolved_aborted;
  }
  *still_open = static_cast<int64_t>(pending.size());
}

void Bench::ProgressLoop() {
  int64_t last_done = 0;
  auto last = Clock::now();
  while (!finished_) {
    for (int i = 0; i < 20 && !finished_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (finished_) break;
    auto now = Clock::now();
    int64_t done = counters_.done;
    double dt = std::chrono::duration<double>(now - last).count();
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = dt > 0 ? static_cast<double>(done - last_done) / dt : 0;
    fprintf(stderr,
            "[%6.1fs] %" PRId64 "/%" PRId64 " done  committed %" PRId64 "  aborted %" PRId64
            "  in-doubt %" PRId64 "  errors %" PRId64 "  %.1f transfers/s\n",
            elapsed, done, cfg_.transfers, counters_.committed.load(), counters_.aborted.load(),
            counters_.in_doubt.load(), counters_.errors.load(), rate);
    last_done = done;
    last = now;
  }
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t idx = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)];
}

int Bench::Run() {
  std::string err;
  coord_ = ParseEndpoint(cfg_.coordinator, &err);
  if (!err.empty()) {
    fprintf(stderr, "error: --coordinator: %s\n", err.c_str());
    return 2;
  }
  for (const std::string& b : cfg_.banks) {
    banks_.push_back(ParseEndpoint(b, &err));
    if (!err.empty()) {
      fprintf(stderr, "error: --banks: %s\n", err.c_str());
      return 2;
    }
  }

  // Set-up: accounts and the money they hold.
  int64_t expected_total =
      static_cast<int64_t>(banks_.size()) * cfg_.accounts * cfg_.initial_balance;
  if (!cfg_.use_existing_accounts) {
    if (!SetUpAccounts()) return 1;
  }
  std::string sum_error;
  std::optional<int64_t> start_sum = SumBalances(&sum_error);
  if (!start_sum.has_value()) {
    fprintf(stderr, "verdict-bench: cannot read the starting balances: %s\n", sum_error.c_str());
    return 1;
  }
  if (cfg_.use_existing_accounts) {
    expected_total = *start_sum;
  } else if (*start_sum != expected_total) {
    fprintf(stderr, "verdict-bench: starting total is %" PRId64 ", expected %" PRId64 "\n",
            *start_sum, expected_total);
    return 1;
  }
  total_money_ = std::max<int64_t>(expected_total, cfg_.initial_balance);

  fprintf(stderr,
          "verdict-bench: %" PRId64 " transfers, protocol %s, concurrency %" PRId64
          ", %zu bank(s) x %" PRId64 " accounts (prefix %s), total money %" PRId64
          ", overdraft %" PRId64 "%%\n",
          cfg_.transfers, cfg_.protocol.c_str(), cfg_.concurrency, banks_.size(), cfg_.accounts,
          cfg_.account_prefix.c_str(), expected_total, cfg_.overdraft_pct);

  // The run.
  std::vector<std::vector<double>> latencies(static_cast<size_t>(cfg_.concurrency));
  std::atomic<int64_t> next{0};
  start_ = Clock::now();
  std::thread progress;
  if (cfg_.progress) progress = std::thread([this] { ProgressLoop(); });
  {
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < cfg_.concurrency; ++t) {
      pool.emplace_back([&, t] {
        Connections conns(cfg_);
        auto& lat = latencies[static_cast<size_t>(t)];
        for (int64_t i = next++; i < cfg_.transfers; i = next++) {
          Plan plan = MakePlan(i);
          auto t0 = Clock::now();
          std::string id;
          Outcome o = Transfer(conns, plan, &id);
          // Latency of transfers that reached an outcome (failed requests would
          // only measure how fast a refused connection fails).
          if (o != Outcome::kError) {
            lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          }
          switch (o) {
            case Outcome::kCommitted:
              ++counters_.committed;
              break;
            case Outcome::kAborted:
              ++counters_.aborted;
              if (plan.overdraft) ++counters_.aborted_overdraft;
              break;
            case Outcome::kInDoubt:
              ++counters_.in_doubt;
              break;
            case Outcome::kError:
              ++counters_.errors;
              break;
          }
          ++counters_.done;
        }
      });
    }
    for (auto& th : pool) th.join();
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  finished_ = true;
  if (progress.joinable()) progress.join();

  // Settle: wait until every in-doubt or not-yet-completed transaction has
  // finished phase two, then the committed balances must add up.
  auto settle_start = Clock::now();
  int64_t resolved_committed = 0, resolved_aborted = 0, still_open = 0;
  if (!open_txns_.empty()) {
    fprintf(stderr, "verdict-bench: waiting for %zu transaction(s) to complete phase two\n",
            open_txns_.size());
    WaitForCompletion(open_txns_, cfg_.settle_timeout_ms, &resolved_committed, &resolved_aborted,
                      &still_open);
  }
  std::optional<int64_t> end_sum;
  auto settle_deadline = settle_start + std::chrono::milliseconds(cfg_.settle_timeout_ms);
  for (;;) {
    sum_error.clear();
    end_sum = SumBalances(&sum_error);
    if (end_sum.has_value() && *end_sum == expected_total) break;
    if (Clock::now() >= settle_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  double settle_s = std::chrono::duration<double>(Clock::now() - settle_start).count();
  bool conserved = end_sum.has_value() && *end_sum == expected_total;

  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  double p50 = Percentile(all, 50), p90 = Percentile(all, 90), p99 = Percentile(all, 99);
  double pmax = all.empty() ? 0 : all.back();
  double rate = elapsed > 0 ? static_cast<double>(counters_.done) / elapsed : 0;
  int64_t errors = counters_.errors;
  bool ok = conserved && errors == 0;

  FILE* human = cfg_.json_output ? stderr : stdout;
  fprintf(human, "verdict-bench results (%s, concurrency %" PRId64 ")\n", cfg_.protocol.c_str(),
          cfg_.concurrency);
  fprintf(human, "  transfers      %" PRId64 "\n", counters_.done.load());
  fprintf(human, "  committed      %" PRId64 "\n", counters_.committed.load());
  fprintf(human, "  aborted        %" PRId64 " (%" PRId64 " planned overdrafts)\n",
          counters_.aborted.load(), counters_.aborted_overdraft.load());
  fprintf(human, "  in-doubt       %" PRId64, counters_.in_doubt.load());
  if (counters_.in_doubt > 0 || !open_txns_.empty()) {
    fprintf(human,
            " (after settling: %" PRId64 " committed, %" PRId64 " aborted, %" PRId64 " still open)",
            resolved_committed, resolved_aborted, still_open);
  }
  fprintf(human, "\n  errors         %" PRId64 "\n", errors);
  for (const auto& [msg, n] : errors_.Top(10)) {
    fprintf(human, "    %6" PRId64 " x %s\n", n, msg.c_str());
  }
  fprintf(human, "  elapsed        %.2f s\n", elapsed);
  fprintf(human, "  throughput     %.1f transfers/s\n", rate);
  fprintf(human, "  latency        p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", p50, p90,
          p99, pmax);
  if (end_sum.has_value()) {
    fprintf(human, "  money          expected %" PRId64 ", found %" PRId64 " -> %s\n",
            expected_total, *end_sum, conserved ? "CONSERVED" : "NOT CONSERVED");
  } else {
    fprintf(human, "  money          cannot read balances: %s -> NOT VERIFIED\n",
            sum_error.c_str());
  }
  fflush(human);

  if (cfg_.json_output) {
    json errs = json::array();
    for (const auto& [msg, n] : errors_.Top(10)) errs.push_back({{"message", msg}, {"count", n}});
    json out = {
        {"protocol", cfg_.protocol},
        {"concurrency", cfg_.concurrency},
        {"banks", static_cast<int64_t>(banks_.size())},
        {"accounts_per_bank", cfg_.accounts},
        {"transfers", counters_.done.load()},
        {"committed", counters_.committed.load()},
        {"aborted", counters_.aborted.load()},
        {"aborted_overdraft", counters_.aborted_overdraft.load()},
        {"in_doubt", counters_.in_doubt.load()},
        {"in_doubt_resolved",
         {{"committed", resolved_committed}, {"aborted", resolved_aborted}, {"open", still_open}}},
        {"errors", errors},
        {"error_messages", errs},
        {"elapsed_s", elapsed},
        {"settle_s", settle_s},
        {"transfers_per_s", rate},
        {"latency_ms", {{"p50", p50}, {"p90", p90}, {"p99", p99}, {"max", pmax}}},
        {"money",
         {{"expected", expected_total},
          {"actual", end_sum.has_value() ? json(*end_sum) : json(nullptr)},
          {"conserved", conserved}}},
        {"ok", ok},
    };
    printf("%s\n", out.dump().c_str());
    fflush(stdout);
  }
  return ok ? 0 : 1;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

int Main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Config cfg;
  std::string banks;
  FlagSet flags(
      "verdict-bench",
      "load generator: concurrent bank transfers as distributed transactions through a\n"
      "verdict coordinator and verdict-bank participants; checks that money is conserved.\n"
      "Exit code 0 only when the final total equals the starting total and no request\n"
      "failed unexpectedly.");
  flags.String("coordinator", &cfg.coordinator, "coordinator base URL");
  flags.String("banks", &banks, "comma-separated verdict-bank base URLs (at least one)");
  flags.Int("accounts", &cfg.accounts, "accounts per bank");
  flags.Int("initial-balance", &cfg.initial_balance, "starting balance of each account");
  flags.Int("max-amount", &cfg.max_amount,
            "largest ordinary transfer amount (0 = initial-balance/10, at least 1)");
  flags.Int("transfers", &cfg.transfers, "number of transfers to run");
  flags.Int("concurrency", &cfg.concurrency,
            "concurrent transfers (worker threads; each keeps one connection per host)");
  flags.Int("overdraft-pct", &cfg.overdraft_pct,
            "percentage of transfers whose amount exceeds any balance (they must abort)");
  flags.String("protocol", &cfg.protocol, "2pc or 3pc");
  flags.Int("seed", &cfg.seed, "seed for the transfer plan (same seed, same plan)");
  flags.Bool("progress", &cfg.progress, "print a progress line every second to stderr");
  flags.Bool("json", &cfg.json_output,
             "print a JSON summary on stdout (the human summary goes to stderr)");
  flags.String("account-prefix", &cfg.account_prefix,
               "account ids are PREFIX-0..PREFIX-(N-1) (default: bench-<random>)");
  flags.Bool("use-existing-accounts", &cfg.use_existing_accounts,
             "do not create accounts; use the existing PREFIX-i accounts and their current total");
  flags.DurationMs("txn-timeout", &cfg.txn_timeout_ms, "timeout_ms of each transaction");
  flags.DurationMs("request-timeout", &cfg.request_timeout_ms, "timeout of each HTTP request");
  flags.DurationMs("settle-timeout", &cfg.settle_timeout_ms,
                   "how long to wait at the end for phase two to finish before checking balances");
  flags.String("api-token", &cfg.api_token, "bearer token for the coordinator's /v1 API");
  int rc = HandleFlagParse(flags, argc, argv);
  if (rc >= 0) return rc;

  auto bad = [](const std::string& msg) {
    fprintf(stderr, "error: %s (see --help)\n", msg.c_str());
    return 2;
  };
  cfg.banks = SplitList(banks);
  if (cfg.banks.empty()) return bad("--banks needs at least one verdict-bank URL");
  if (cfg.protocol != "2pc" && cfg.protocol != "3pc") return bad("--protocol must be 2pc or 3pc");
  if (cfg.accounts < 1) return bad("--accounts must be at least 1");
  if (cfg.initial_balance < 0) return bad("--initial-balance must not be negative");
  if (cfg.transfers < 0) return bad("--transfers must not be negative");
  if (cfg.concurrency < 1 || cfg.concurrency > 4096) return bad("--concurrency must be 1..4096");
  if (cfg.overdraft_pct < 0 || cfg.overdraft_pct > 100)
    return bad("--overdraft-pct must be 0..100");
  if (cfg.max_amount < 0) return bad("--max-amount must not be negative");
  if (cfg.max_amount == 0) cfg.max_amount = std::max<int64_t>(1, cfg.initial_balance / 10);
  if (cfg.request_timeout_ms < 1) return bad("--request-timeout must be positive");
  if (cfg.account_prefix.empty()) {
    if (cfg.use_existing_accounts) return bad("--use-existing-accounts needs --account-prefix");
    cfg.account_prefix = "bench-" + NewRandomId().substr(0, 8);
  }
  if (!IsValidId(cfg.account_prefix + "-" + std::to_string(cfg.accounts - 1))) {
    return bad("--account-prefix may only use [A-Za-z0-9._:-]");
  }
  Bench bench(std::move(cfg));
  return bench.Run();
}

}  // namespace
}  // namespace verdict::bench

int main(int argc, char** argv) { return verdict::bench::Main(argc, argv); }
