#include "verdict/common/failpoint.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>

namespace verdict::failpoint {
namespace {

enum class Action { kCrash, kSleep, kError };

struct Armed {
  Action action = Action::kCrash;
  int sleep_ms = 0;
  long nth = 0;  // 0: every hit; N: only the Nth hit
  std::atomic<long> hits{0};
};

struct Registry {
  std::shared_mutex mu;
  std::map<std::string, std::unique_ptr<Armed>, std::less<>> points;
  std::atomic<bool> any{false};
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();  // never destroyed: usable during exit
  return *registry;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

Status ParseAction(const std::string& text, Armed* out) {
  std::string a = text;
  size_t star = a.find('*');
  if (star != std::string::npos) {
    char* end = nullptr;
    long n = strtol(a.substr(0, star).c_str(), &end, 10);
    if (n <= 0 || *end != '\0') return Status::InvalidArgument("bad failpoint count in '" + text + "'");
    out->nth = n;
    a = a.substr(star + 1);
  }
  if (a == "crash") {
    out->action = Action::kCrash;
  } else if (a == "error") {
    out->action = Action::kError;
  } else if (a.rfind("sleep(", 0) == 0 && a.back() == ')') {
    char* end = nullptr;
    long ms = strtol(a.c_str() + 6, &end, 10);
    if (ms < 0 || *end != ')') return Status::InvalidArgument("bad sleep in failpoint '" + text + "'");
    out->action = Action::kSleep;
    out->sleep_ms = static_cast<int>(ms);
  } else {
    return Status::InvalidArgument("unknown failpoint action '" + text + "'");
  }
  return Status::Ok();
}

}  // namespace

Status Configure(std::string_view spec) {
  std::map<std::string, std::unique_ptr<Armed>, std::less<>> points;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t semi = spec.find(';', pos);
    if (semi == std::string_view::npos) semi = spec.size();
    std::string item = Trim(spec.substr(pos, semi - pos));
    pos = semi + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos) return Status::InvalidArgument("failpoint '" + item + "' has no '='");
    auto armed = std::make_unique<Armed>();
    VERDICT_RETURN_IF_ERROR(ParseAction(Trim(item.substr(eq + 1)), armed.get()));
    points[Trim(item.substr(0, eq))] = std::move(armed);
  }
  Registry& r = GetRegistry();
  std::unique_lock lock(r.mu);
  r.points = std::move(points);
  r.any.store(!r.points.empty(), std::memory_order_release);
  return Status::Ok();
}

Status ConfigureFromEnv() {
  const char* env = getenv("VERDICT_FAILPOINTS");
  if (env == nullptr) return Status::Ok();
  return Configure(env);
}

Status Hit(std::string_view name) {
  Registry& r = GetRegistry();
  if (!r.any.load(std::memory_order_acquire)) return Status::Ok();
  Action action;
  int sleep_ms = 0;
  {
    std::shared_lock lock(r.mu);
    auto it = r.points.find(name);
    if (it == r.points.end()) return Status::Ok();
    Armed& a = *it->second;
    long hit = a.hits.fetch_add(1) + 1;
    if (a.nth != 0 && hit != a.nth) return Status::Ok();
    action = a.action;
    sleep_ms = a.sleep_ms;
  }
  switch (action) {
    case Action::kCrash: {
      // Write straight to fd 2 so nothing buffered is needed; then die without cleanup.
      std::string msg = "failpoint " + std::string(name) + ": crash\n";
      ssize_t ignored = write(2, msg.data(), msg.size());
      (void)ignored;
      _exit(137);
    }
    case Action::kSleep:
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
      return Status::Ok();
    case Action::kError:
      return Status::IoError("failpoint " + std::string(name) + " injected an error");
  }
  return Status::Ok();
}

}  // namespace verdict::failpoint
