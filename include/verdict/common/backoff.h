// Capped exponential backoff with full jitter, for retries of phase-two
// messages and decision queries. Not thread-safe: one instance per retry loop.
#pragma once

#include <chrono>
#include <cstdint>

namespace verdict {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max), current_(initial) {}

  // The delay before the next attempt; grows toward max with each call.
  std::chrono::milliseconds Next();
  void Reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
};

}  // namespace verdict
