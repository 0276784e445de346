// Shared set-up for every cpp-httplib server in verdict, and the JSON error
// envelope of CONTRACT.md: {"error":{"code":"<snake_case>","message":"..."}}.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <functional>
#include <string>

#include "verdict/common/status.h"

namespace verdict {

struct ServerOptions {
  // Worker threads. cpp-httplib holds one per open keep-alive connection, and
  // handlers block on outbound calls, so size for the concurrency served.
  int threads = 96;
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  int keep_alive_max_count = 1'000'000;
  // Idle keep-alive connections close after this long. cpp-httplib's stop()
  // waits for them, so it also bounds how long a clean shutdown takes.
  int keep_alive_timeout_s = 2;
};

// TCP_NODELAY, thread pool, keep-alive limits, payload limit, and an error
// handler that gives every 4xx/5xx without a body the JSON error envelope.
void ConfigureServer(httplib::Server& server, const ServerOptions& options);

// Installs the server's pre-routing handler: a bodiless POST without
// Content-Length (e.g. `curl -X POST`) is treated as an empty body instead of
// cpp-httplib's 400; then `hook` (may be empty) can answer the request itself
// by returning true (e.g. 401). Replaces any earlier pre-routing handler.
void InstallPreRouting(httplib::Server& server,
                       std::function<bool(const httplib::Request&, httplib::Response&)> hook);

void ReplyJson(httplib::Response& res, int status, const nlohmann::json& body);
void ReplyError(httplib::Response& res, int status, const std::string& code,
                const std::string& message);
// Maps a Status to its HTTP status and snake_case code (kInDoubt -> 503 in_doubt).
void ReplyStatus(httplib::Response& res, const Status& status);
int HttpStatusFor(StatusCode code);

// Parses the request body as a JSON object. An empty body gives an empty object
// when allow_empty; anything else that is not an object is InvalidArgument.
Result<nlohmann::json> ParseJsonObject(const std::string& body, bool allow_empty);

// Binds `server` to host:port (port 0 picks a free one) and returns the bound
// port, or Unavailable with the reason.
Result<int> BindServer(httplib::Server& server, const std::string& host, int port);

}  // namespace verdict
