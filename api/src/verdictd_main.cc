// verdictd: the verdict coordinator service. A thin main: flags, wiring,
// recovery before serving, and a clean shutdown on SIGTERM/SIGINT.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "verdict/api/api_server.h"
#include "verdict/common/failpoint.h"
#include "verdict/common/flags.h"
#include "verdict/common/http_server.h"
#include "verdict/common/logging.h"
#include "verdict/common/signals.h"
#include "verdict/coordinator/coordinator.h"
#include "verdict/coordinator/decision_log.h"
#include "verdict/recovery/recovery_manager.h"

namespace {

int Fail(const std::string& message) {
  fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace verdict;
  BlockTerminationSignals();

  std::string listen = "127.0.0.1:7070";
  std::string data_dir;
  std::string log_backend = "leveldb";
  std::string pg_uri;
  std::string api_token;
  std::string admin_token;
  std::string advertise_url;
  bool insecure = false;
  int64_t default_timeout_ms = 30'000;
  int64_t prepare_timeout_ms = 5'000;
  int64_t phase2_timeout_ms = 5'000;
  int64_t retry_max_ms = 10'000;
  int64_t retention_ms = 86'400'000;
  int64_t recovery_interval_ms = 2'000;
  int64_t retention_check_ms = 60'000;
  int64_t threads = 96;
  int64_t max_body_bytes = 1 << 20;

  FlagSet flags("verdictd", "verdict transaction coordinator: 2PC/3PC over HTTP with a durable decision log.");
  flags.String("listen", &listen, "HOST:PORT to serve the API on");
  flags.String("data-dir", &data_dir, "directory of the embedded LevelDB decision log (required for leveldb)");
  flags.String("log-backend", &log_backend, "decision log backend: leveldb or postgres");
  flags.String("pg-uri", &pg_uri, "PostgreSQL URI for --log-backend postgres");
  flags.String("api-token", &api_token, "bearer token required on /v1/* (empty: none)");
  flags.String("admin-token", &admin_token, "bearer token required on /admin/* (empty: none)");
  flags.Bool("insecure", &insecure, "allow a non-loopback --listen without tokens");
  flags.String("advertise-url", &advertise_url, "URL participants use to reach this coordinator (default http://LISTEN)");
  flags.DurationMs("default-timeout", &default_timeout_ms, "timeout of a transaction that gives no timeout_ms");
  flags.DurationMs("prepare-timeout", &prepare_timeout_ms, "how long a prepare may take before it counts as no");
  flags.DurationMs("phase2-timeout", &phase2_timeout_ms, "timeout of one commit/abort/precommit message");
  flags.DurationMs("retry-max", &retry_max_ms, "cap of the phase-two retry backoff");
  flags.DurationMs("retention", &retention_ms, "how long completed transactions stay in the log");
  flags.DurationMs("recovery-interval", &recovery_interval_ms, "period of the background recovery pass");
  flags.DurationMs("retention-check-interval", &retention_check_ms,
                   "how often completed records older than --retention are deleted");
  flags.Int("threads", &threads, "HTTP worker threads");
  flags.Int("max-body-bytes", &max_body_bytes, "largest accepted request body (larger: 413)");
  if (int rc = HandleFlagParse(flags, argc, argv); rc >= 0) return rc;

  std::string host;
  int port = 0;
  if (Status s = ParseHostPort(listen, &host, &port, /*allow_zero=*/true); !s.ok()) {
    return Fail("--listen: " + s.message());
  }
  if (!IsLoopbackHost(host) && (api_token.empty() || admin_token.empty()) && !insecure) {
    return Fail("--listen " + listen +
                " is not a loopback address: set --api-token and --admin-token, or pass --insecure");
  }
  if (threads < 4 || threads > 4096) return Fail("--threads must be between 4 and 4096");
  if (max_body_bytes < 1024) return Fail("--max-body-bytes must be at least 1024");
  if (retention_ms < 0) return Fail("--retention must not be negative");
  if (recovery_interval_ms < 10) return Fail("--recovery-interval must be at least 10ms");
  if (retention_check_ms < 10) return Fail("--retention-check-interval must be at least 10ms");
  if (Status s = failpoint::ConfigureFromEnv(); !s.ok()) return Fail("VERDICT_FAILPOINTS: " + s.message());

  std::unique_ptr<coordinator::DecisionLog> log;
  if (log_backend == "leveldb") {
    if (data_dir.empty()) return Fail("--data-dir is required");
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) return Fail("cannot create --data-dir " + data_dir + ": " + ec.message());
    auto opened = coordinator::OpenLevelDbDecisionLog(data_dir);
    if (!opened.ok()) return Fail(opened.status().message());
    log = std::move(opened).value();
  } else if (log_backend == "postgres") {
    if (pg_uri.empty()) return Fail("--log-backend postgres needs --pg-uri");
    auto opened = coordinator::OpenPostgresDecisionLog(pg_uri);
    if (!opened.ok()) return Fail(opened.status().message());
    log = std::move(opened).value();
  } else {
    return Fail("--log-backend must be leveldb or postgres");
  }

  httplib::Server server;
  ServerOptions server_options;
  server_options.threads = static_cast<int>(threads);
  server_options.max_body_bytes = static_cast<size_t>(max_body_bytes);
  ConfigureServer(server, server_options);
  Result<int> bound = BindServer(server, host, port);
  if (!bound.ok()) return Fail(bound.status().message());
  port = *bound;

  coordinator::CoordinatorOptions options;
  options.self_url = advertise_url.empty()
                         ? "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                               ":" + std::to_string(port)
                         : advertise_url;
  options.default_timeout_ms = default_timeout_ms;
  options.prepare_timeout = std::chrono::milliseconds(prepare_timeout_ms);
  options.phase2_timeout = std::chrono::milliseconds(phase2_timeout_ms);
  options.retry_max = std::chrono::milliseconds(retry_max_ms);
  std::unique_ptr<HttpTransport> transport = NewHttplibTransport();
  coordinator::Coordinator engine(options, log.get(), transport.get(), SystemClock::Default());

  recovery::RecoveryOptions recovery_options;
  recovery_options.retention_ms = retention_ms;
  recovery_options.pass_interval = std::chrono::milliseconds(recovery_interval_ms);
  recovery_options.gc_interval = std::chrono::milliseconds(retention_check_ms);
  recovery::RecoveryManager recovery(&engine, recovery_options);
  // Every incomplete transaction is finished (or being re-driven) before the
  // API answers its first request.
  Result<recovery::RecoveryReport> report = recovery.RecoverOnStartup();
  if (!report.ok()) return Fail("recovery: " + report.status().message());

  api::ApiServer api(&engine, &recovery, {api_token, admin_token});
  api.Mount(server);
  recovery.Start();

  std::thread serve([&server] { server.listen_after_bind(); });
  VLOG_INFO("verdictd", "listening on " << host << ":" << port << " (decision log: "
                                        << (log_backend == "leveldb" ? data_dir : "PostgreSQL")
                                        << ")");
  int sig = WaitForTerminationSignal();
  VLOG_INFO("verdictd", "signal " << sig << ": shutting down");
  server.stop();
  serve.join();
  recovery.Stop();
  engine.Stop();
  return 0;
}
