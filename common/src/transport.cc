#include "verdict/common/transport.h"

#include <httplib.h>

#include <map>
#include <mutex>

namespace verdict {

Result<HttpResponse> HttpTransport::Post(const std::string& url, std::string body,
                                         std::chrono::milliseconds timeout,
                                         std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.body = std::move(body);
  req.timeout = timeout;
  req.headers = std::move(headers);
  return Do(req);
}

Result<HttpResponse> HttpTransport::Get(const std::string& url, std::chrono::milliseconds timeout,
                                        std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest req;
  req.method = "GET";
  req.url = url;
  req.timeout = timeout;
  req.headers = std::move(headers);
  return Do(req);
}

Status SplitUrl(const std::string& url, std::string* origin, std::string* path) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return Status::InvalidArgument("url '" + url + "' must start with http://");
  size_t slash = url.find('/', scheme.size());
  if (slash == std::string::npos) {
    *origin = url;
    *path = "";
  } else {
    *origin = url.substr(0, slash);
    *path = url.substr(slash);
    while (!path->empty() && path->back() == '/') path->pop_back();
  }
  if (origin->size() == scheme.size()) return Status::InvalidArgument("url '" + url + "' has no host");
  return Status::Ok();
}

std::string JoinUrl(const std::string& base, const std::string& path) {
  std::string out = base;
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (path.empty() || path.front() != '/') out += '/';
  out += path;
  return out;
}

Status ValidateHttpUrl(const std::string& url) {
  std::string origin, path;
  VERDICT_RETURN_IF_ERROR(SplitUrl(url, &origin, &path));
  if (url.size() > 2048) return Status::InvalidArgument("url is longer than 2048 bytes");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == '\\' || c == 0x7f) {
      return Status::InvalidArgument("url '" + url + "' has a character that is not allowed");
    }
  }
  std::string hostport = origin.substr(7);
  size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    std::string port = hostport.substr(colon + 1);
    char* end = nullptr;
    long n = strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || n < 1 || n > 65535) {
      return Status::InvalidArgument("url '" + url + "' has a bad port");
    }
    if (colon == 0) return Status::InvalidArgument("url '" + url + "' has no host");
  }
  return Status::Ok();
}

namespace {

// Idle keep-alive clients per origin. A client is used by one request at a time.
class HttplibTransport final : public HttpTransport {
 public:
  Result<HttpResponse> Do(const HttpRequest& request) override {
    std::string origin, prefix;
    VERDICT_RETURN_IF_ERROR(SplitUrl(request.url, &origin, &prefix));
    std::string path = prefix.empty() ? "/" : prefix;
    std::unique_ptr<httplib::Client> client = Acquire(origin);
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(request.timeout);
    auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(request.timeout - secs);
    client->set_connection_timeout(secs.count(), usecs.count());
    client->set_read_timeout(secs.count(), usecs.count());
    client->set_write_timeout(secs.count(), usecs.count());
    httplib::Headers headers;
    for (const auto& [k, v] : request.headers) headers.emplace(k, v);
    httplib::Result res = request.method == "GET"
                              ? client->Get(path.c_str(), headers)
                              : client->Post(path.c_str(), headers, request.body, "application/json");
    if (!res) {
      // The connection is in an unknown state: drop it rather than pool it.
      return Status::Unavailable(request.method + " " + request.url + ": " +
                                 httplib::to_string(res.error()));
    }
    HttpResponse out;
    out.status = res->status;
    out.body = std::move(res->body);
    Release(origin, std::move(client));
    return out;
  }

 private:
  static constexpr size_t kMaxIdlePerOrigin = 64;

  std::unique_ptr<httplib::Client> Acquire(const std::string& origin) {
    {
      std::lock_guard lock(mu_);
      auto& idle = idle_[origin];
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<httplib::Client>(origin);
    c->set_tcp_nodelay(true);
    c->set_keep_alive(true);
    return c;
  }

  void Release(const std::string& origin, std::unique_ptr<httplib::Client> client) {
    std::lock_guard lock(mu_);
    auto& idle = idle_[origin];
    if (idle.size() < kMaxIdlePerOrigin) idle.push_back(std::move(client));
  }

  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<httplib::Client>>> idle_;
};

}  // namespace

std::unique_ptr<HttpTransport> NewHttplibTransport() { return std::make_unique<HttplibTransport>(); }

}  // namespace verdict
