// Transport seam: every outbound HTTP call in verdict goes through an
// HttpTransport, so tests can substitute one that drops, delays or fails calls.
//
// Thread-safety: implementations must allow concurrent Do() calls.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "verdict/common/status.h"

namespace verdict {

struct HttpRequest {
  std::string method = "POST";  // "GET" or "POST"
  std::string url;              // absolute: http://host:port/path
  std::string body;             // JSON for POST
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{5000};  // connect, read and write each
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // OK with the response (any HTTP status) when one arrived; Unavailable when the
  // peer could not be reached or the exchange broke off (the peer may or may not
  // have acted on the request).
  virtual Result<HttpResponse> Do(const HttpRequest& request) = 0;

  Result<HttpResponse> Post(const std::string& url, std::string body,
                            std::chrono::milliseconds timeout,
                            std::vector<std::pair<std::string, std::string>> headers = {});
  Result<HttpResponse> Get(const std::string& url, std::chrono::milliseconds timeout,
                           std::vector<std::pair<std::string, std::string>> headers = {});
};

// cpp-httplib client transport with a pool of keep-alive connections per
// scheme://host:port (TCP_NODELAY set on each).
std::unique_ptr<HttpTransport> NewHttplibTransport();

// Splits "http://host:port/prefix" into "http://host:port" and "/prefix".
Status SplitUrl(const std::string& url, std::string* origin, std::string* path);

// Joins a base URL and a path with exactly one '/' between them.
std::string JoinUrl(const std::string& base, const std::string& path);

// Checks that `url` is an absolute http:// URL with a host (and optional port/path).
Status ValidateHttpUrl(const std::string& url);

}  // namespace verdict
