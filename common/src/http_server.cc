#include "verdict/common/http_server.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>

namespace verdict {

void ConfigureServer(httplib::Server& server, const ServerOptions& options) {
  server.set_tcp_nodelay(true);
  // SO_REUSEADDR only. cpp-httplib's default also sets SO_REUSEPORT, which lets
  // a second process bind the same port and silently take half its traffic.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  int threads = options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_keep_alive_max_count(options.keep_alive_max_count);
  server.set_keep_alive_timeout(options.keep_alive_timeout_s);
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(30, 0);
  server.set_write_timeout(30, 0);
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    switch (res.status) {
      case 404: ReplyError(res, 404, "not_found", "no such resource"); break;
      case 405: ReplyError(res, 405, "method_not_allowed", "method not allowed"); break;
      case 413: ReplyError(res, 413, "payload_too_large", "request body too large"); break;
      case 400: ReplyError(res, 400, "bad_request", "malformed request"); break;
      default:
        ReplyError(res, res.status, res.status >= 500 ? "internal" : "bad_request",
                   "request failed");
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  InstallPreRouting(server, nullptr);
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                  std::exception_ptr ep) {
    std::string what = "unexpected exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    ReplyError(res, 500, "internal", what);
  });
}

void InstallPreRouting(httplib::Server& server,
                       std::function<bool(const httplib::Request&, httplib::Response&)> hook) {
  server.set_pre_routing_handler(
      [hook = std::move(hook)](const httplib::Request& req, httplib::Response& res) {
        if (req.method == "POST" && !req.has_header("Content-Length") &&
            !req.has_header("Transfer-Encoding")) {
          // The server owns a mutable Request; only the callback type is const.
          const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
        }
        if (hook && hook(req, res)) return httplib::Server::HandlerResponse::Handled;
        return httplib::Server::HandlerResponse::Unhandled;
      });
}

void ReplyJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void ReplyError(httplib::Response& res, int status, const std::string& code,
                const std::string& message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  res.status = status;
  // dump with replacement so a non-UTF-8 message can never throw.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kConflict: return 409;
    case StatusCode::kUnavailable:
    case StatusCode::kInDoubt:
    case StatusCode::kIoError:
    case StatusCode::kTimeout: return 503;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

void ReplyStatus(httplib::Response& res, const Status& status) {
  ReplyError(res, HttpStatusFor(status.code()), std::string(StatusCodeName(status.code())),
             status.message());
}

Result<nlohmann::json> ParseJsonObject(const std::string& body, bool allow_empty) {
  if (body.empty()) {
    if (allow_empty) return nlohmann::json::object();
    return Status::InvalidArgument("request body is empty; a JSON object is required");
  }
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  return j;
}

namespace {

// cpp-httplib 0.11 listens with a backlog of 5, and has no setting for it. A
// burst of new connections (a client pool warming up, a benchmark starting)
// overflows that queue and the kernel drops or resets connections. Calling
// listen() again on the bound socket raises the backlog; the socket is found
// among this process's descriptors by its local port and SO_ACCEPTCONN.
void RaiseListenBacklog(int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    int fd = atoi(entry->d_name);
    if (fd <= 2) continue;
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) continue;
    int bound = 0;
    if (addr.ss_family == AF_INET) bound = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (bound == port) listen(fd, 1024);
  }
  closedir(dir);
}

}  // namespace

Result<int> BindServer(httplib::Server& server, const std::string& host, int port) {
  if (port == 0) {
    int bound = server.bind_to_any_port(host.c_str());
    if (bound <= 0) return Status::Unavailable("cannot bind " + host + ":0");
    RaiseListenBacklog(bound);
    return bound;
  }
  if (!server.bind_to_port(host.c_str(), port)) {
    return Status::Unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                               " (in use or not a local address)");
  }
  RaiseListenBacklog(port);
  return port;
}

}  // namespace verdict
