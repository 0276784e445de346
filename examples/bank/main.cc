// verdict-bank: the example participant service (CONTRACT.md).
//
//   verdict-bank --listen 127.0.0.1:8081 --data-dir DIR --coordinator http://127.0.0.1:7070
//
// Exit codes: 0 after SIGTERM/SIGINT and a clean shutdown; 2 for bad flags;
// 1 when the store cannot be opened or the port cannot be bound.
#include <httplib.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "bank_service.h"
#include "bank_store.h"
#include "embedded_bank_store.h"
#include "verdict/common/clock.h"
#include "verdict/common/failpoint.h"
#include "verdict/common/flags.h"
#include "verdict/common/http_server.h"
#include "verdict/common/logging.h"
#include "verdict/common/signals.h"
#include "verdict/common/transport.h"
#include "verdict/participant/participant.h"

#if __has_include("pg_bank_store.h")
#include "pg_bank_store.h"
#define VERDICT_BANK_HAS_PG 1
#endif

namespace {

constexpr int kKeepAliveTimeoutS = 2;
// How long SIGTERM waits for in-flight requests and idle keep-alive connections.
constexpr std::chrono::milliseconds kDrainTimeout{kKeepAliveTimeoutS * 1000 + 3000};

int Fail(const std::string& message, int code = 1) {
  fprintf(stderr, "error: %s\n", message.c_str());
  return code;
}

// `name` keys the bank's rows and prepared transactions in a shared PostgreSQL
// database, so it must stay the same across restarts.
verdict::Result<std::unique_ptr<verdict::bank::BankStore>> OpenStore(const std::string& pg_uri,
                                                                     const std::string& data_dir,
                                                                     const std::string& name) {
  if (!pg_uri.empty()) {
#ifdef VERDICT_BANK_HAS_PG
    return verdict::bank::OpenPostgresBankStore(pg_uri, name);
#else
    return verdict::Status::InvalidArgument("--pg-uri is not supported in this build");
#endif
  }
  if (data_dir.empty()) return verdict::Status::InvalidArgument("--data-dir is required");
  auto store = verdict::bank::EmbeddedBankStore::Open(data_dir);
  if (!store.ok()) return store.status();
  return std::unique_ptr<verdict::bank::BankStore>(std::move(store).value());
}

}  // namespace

int main(int argc, char** argv) {
  verdict::BlockTerminationSignals();

  std::string listen = "127.0.0.1:8081";
  std::string data_dir;
  std::string coordinator = "http://127.0.0.1:7070";
  std::string name;
  std::string self_url;
  std::string api_token;
  std::string pg_uri;
  int64_t active_timeout_ms = 60'000;
  int64_t in_doubt_query_after_ms = 5'000;
  int64_t threads = 96;

  verdict::FlagSet flags("verdict-bank", "example verdict participant: bank accounts");
  flags.String("listen", &listen, "HOST:PORT to serve the business API and participant protocol on");
  flags.String("data-dir", &data_dir, "directory of the embedded LevelDB store (required unless --pg-uri)");
  flags.String("coordinator", &coordinator, "coordinator base URL (enlistment, decision queries)");
  flags.String("name", &name, "participant name (default bank-<port>)");
  flags.String("self-url", &self_url, "URL the coordinator reaches this service at (default http://<listen>)");
  flags.String("api-token", &api_token, "bearer token for the coordinator's /v1 API");
  flags.String("pg-uri", &pg_uri, "store accounts in PostgreSQL at this URI instead of --data-dir");
  flags.DurationMs("active-timeout", &active_timeout_ms,
                   "abort work not prepared within this long (e.g. 60s)");
  flags.DurationMs("in-doubt-query-after", &in_doubt_query_after_ms,
                   "ask the coordinator about a prepared txn after this long");
  flags.Int("threads", &threads, "HTTP worker threads");
  if (int rc = verdict::HandleFlagParse(flags, argc, argv); rc >= 0) return rc;

  std::string host;
  int port = 0;
  if (verdict::Status s = verdict::ParseHostPort(listen, &host, &port); !s.ok()) {
    return Fail("--listen: " + s.message(), 2);
  }
  if (verdict::Status s = verdict::ValidateHttpUrl(coordinator); !s.ok()) {
    return Fail("--coordinator: " + s.message(), 2);
  }
  if (self_url.empty()) self_url = "http://" + listen;
  if (verdict::Status s = verdict::ValidateHttpUrl(self_url); !s.ok()) {
    return Fail("--self-url: " + s.message(), 2);
  }
  if (name.empty()) name = "bank-" + std::to_string(port);
  if (active_timeout_ms <= 0) return Fail("--active-timeout must be positive", 2);
  if (in_doubt_query_after_ms < 0) return Fail("--in-doubt-query-after must not be negative", 2);
  if (threads < 1 || threads > 4096) return Fail("--threads must be in 1..4096", 2);
  if (verdict::Status s = verdict::failpoint::ConfigureFromEnv(); !s.ok()) {
    return Fail("VERDICT_FAILPOINTS: " + s.message(), 2);
  }

  auto store = OpenStore(pg_uri, data_dir, name);
  if (!store.ok()) {
    int code = store.status().code() == verdict::StatusCode::kInvalidArgument ? 2 : 1;
    return Fail(store.status().message(), code);
  }

  std::unique_ptr<verdict::HttpTransport> transport = verdict::NewHttplibTransport();
  verdict::participant::ParticipantOptions options;
  options.name = name;
  options.self_url = self_url;
  options.coordinator_url = coordinator;
  options.api_token = api_token;
  options.active_timeout = std::chrono::milliseconds(active_timeout_ms);
  options.in_doubt_query_after = std::chrono::milliseconds(in_doubt_query_after_ms);
  verdict::participant::Participant participant(options, (*store)->resource(), transport.get(),
                                                verdict::SystemClock::Default());
  verdict::bank::BankService service(store->get(), &participant);

  httplib::Server server;
  verdict::ServerOptions server_options;
  server_options.threads = static_cast<int>(threads);
  // cpp-httplib 0.11 only notices stop() on a keep-alive connection once it
  // has been idle this long, so a short timeout keeps SIGTERM shutdown quick.
  server_options.keep_alive_timeout_s = kKeepAliveTimeoutS;
  verdict::ConfigureServer(server, server_options);
  participant.Mount(server);
  service.Mount(server);

  verdict::Result<int> bound = verdict::BindServer(server, host, port);
  if (!bound.ok()) return Fail(bound.status().message());
  if (verdict::Status s = participant.Start(); !s.ok()) {
    return Fail("participant recovery: " + s.ToString());
  }

  std::mutex served_mu;
  std::condition_variable served_cv;
  bool served = false;
  std::thread serving([&] {
    server.listen_after_bind();
    std::lock_guard lock(served_mu);
    served = true;
    served_cv.notify_all();
  });
  VLOG_INFO("bank", "verdict-bank " << name << " serving on " << listen << " (coordinator "
                                    << coordinator << ", "
                                    << (pg_uri.empty() ? "data dir " + data_dir : "postgres")
                                    << ")");
  int sig = verdict::WaitForTerminationSignal();
  VLOG_INFO("bank", "signal " << sig << ": shutting down");
  server.stop();
  bool drained;
  {
    std::unique_lock lock(served_mu);
    drained = served_cv.wait_for(lock, kDrainTimeout, [&] { return served; });
  }
  participant.Stop();
  if (!drained) {
    // A connection still busy after the drain timeout: everything acknowledged
    // is durable, so leave without tearing down state under its handler.
    VLOG_WARN("bank", "connections still open after " << kDrainTimeout.count()
                                                       << "ms; exiting without waiting");
    fflush(stderr);
    _exit(0);
  }
  serving.join();
  return 0;
}
