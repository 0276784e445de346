// ApiServer: the coordinator's HTTP surface (CONTRACT.md "Coordinator API" and
// "Admin API") mounted on a cpp-httplib server. It only translates between
// HTTP/JSON and the Coordinator / RecoveryManager; it holds no protocol state.
//
// Auth: when api_token is set, /v1/* requires "Authorization: Bearer <api_token>";
// when admin_token is set, /admin/* requires the admin token. /healthz and
// /metrics are open. Thread-safety: handlers run concurrently on the server's
// pool; the borrowed Coordinator and RecoveryManager are thread-safe.
#pragma once

#include <httplib.h>

#include <string>

#include "verdict/coordinator/coordinator.h"
#include "verdict/recovery/recovery_manager.h"

namespace verdict::api {

struct ApiOptions {
  std::string api_token;
  std::string admin_token;
};

class ApiServer {
 public:
  ApiServer(coordinator::Coordinator* coordinator, recovery::RecoveryManager* recovery,
            ApiOptions options);
  void Mount(httplib::Server& server);

 private:
  void HandleCreate(const httplib::Request& req, httplib::Response& res);
  void HandleEnlist(const httplib::Request& req, httplib::Response& res);
  void HandleList(const httplib::Request& req, httplib::Response& res);
  void HandleResolve(const httplib::Request& req, httplib::Response& res);
  void HandleMetrics(const httplib::Request& req, httplib::Response& res);
  bool Authorized(const httplib::Request& req, httplib::Response& res);

  coordinator::Coordinator* coordinator_;
  recovery::RecoveryManager* recovery_;
  ApiOptions options_;
};

}  // namespace verdict::api
