// Small helpers shared by the participant SDK / bank unit tests (header-only;
// not a test target itself): a temp dir, a manual clock, and an httplib server
// running on a free loopback port.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "verdict/common/clock.h"
#include "verdict/common/http_server.h"

namespace verdict::testutil {

class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "verdict-unit-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Wall time set by the test; steady time follows the real clock.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowUnixMs() override { return now_ms_.load(); }
  SteadyTime SteadyNow() override { return std::chrono::steady_clock::now(); }
  void Set(int64_t ms) { now_ms_.store(ms); }
  void Advance(int64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

// An httplib::Server configured like verdict's, serving on 127.0.0.1:<free
// port> from a background thread. Register routes via server() before Start().
class TestServer {
 public:
  TestServer() {
    ServerOptions options;
    options.threads = 16;
    // One request per connection: a pooled keep-alive connection would hold
    // a worker (and so stop()) for the whole keep-alive timeout.
    options.keep_alive_max_count = 1;
    ConfigureServer(server_, options);
  }
  ~TestServer() { Stop(); }

  httplib::Server& server() { return server_; }

  // Binds 127.0.0.1:<free port>; false when none could be bound.
  bool Bind() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    return port_ > 0;
  }
  // Serves from a background thread (after Bind; routes registered before).
  void Listen() {
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the server runs, so wait for it.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  bool Start() {
    if (!Bind()) return false;
    Listen();
    return true;
  }
  void Stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

// A loopback URL on which nothing listens (a port bound, then closed), so
// connections are refused at once.
inline std::string DeadUrl() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

// POSTs/GETs to a test server; status -1 when the exchange failed.
struct Reply {
  int status = -1;
  std::string body;
};
inline Reply HttpPost(const std::string& base, const std::string& path, const std::string& body,
                      const httplib::Headers& headers = {}) {
  httplib::Client c(base);
  c.set_tcp_nodelay(true);
  c.set_read_timeout(10, 0);
  httplib::Result r = c.Post(path.c_str(), headers, body, "application/json");
  if (!r) return {};
  return {r->status, r->body};
}
inline Reply HttpGet(const std::string& base, const std::string& path) {
  httplib::Client c(base);
  c.set_tcp_nodelay(true);
  c.set_read_timeout(10, 0);
  httplib::Result r = c.Get(path.c_str());
  if (!r) return {};
  return {r->status, r->body};
}

// Polls `condition` every 10ms until true or `timeout` passes.
inline bool Eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace verdict::testutil
