// Clock seam: wall time for timestamps, monotonic time for deadlines.
// Tests substitute a manual clock; production uses SystemClock.
// Thread-safety: implementations must be safe to call from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace verdict {

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock; may jump).
  virtual int64_t NowUnixMs() = 0;
  // Monotonic time for timeouts and backoff.
  virtual SteadyTime SteadyNow() = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowUnixMs() override;
  SteadyTime SteadyNow() override { return std::chrono::steady_clock::now(); }
  // A process-wide instance (stateless, so sharing it is harmless).
  static SystemClock* Default();
};

// "2026-11-30T03:41:23.123Z".
std::string FormatRfc3339(int64_t unix_ms);

}  // namespace verdict
