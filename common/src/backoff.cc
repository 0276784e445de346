#include "verdict/common/backoff.h"

#include <algorithm>

namespace verdict {

std::chrono::milliseconds Backoff::Next() {
  auto cap = current_;
  current_ = std::min(max_, current_ * 2);
  // Half fixed, half jitter: never zero, never synchronized across retriers.
  int64_t half = std::max<int64_t>(1, cap.count() / 2);
  std::uniform_int_distribution<int64_t> dist(0, half);
  return std::chrono::milliseconds(half + dist(rng_));
}

}  // namespace verdict
