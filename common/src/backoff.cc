#include "verdict/common/backoff.h"

#include <algorithm>
#include <random>

namespace verdict {

std::chrono::milliseconds Backoff::Next() {
  auto cap = current_;
  current_ = std::min(max_, current_ * 2);
  // Half fixed, half jitter: never zero, never synchronized across retriers.
  int64_t half = std::max<int64_t>(1, cap.count() / 2);
  // One generator per thread: constructing a Backoff stays cheap (the
  // coordinator makes one per participant per transaction).
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> dist(0, half);
  return std::chrono::milliseconds(half + dist(rng));
}

}  // namespace verdict
