// TimerQueue: runs callbacks at (or after) a steady-clock time on one
// background thread. Callbacks must be short and non-blocking: hand blocking
// work to a ThreadPool. Callbacks still queued at destruction are dropped.
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace verdict {

class TimerQueue {
 public:
  using Time = std::chrono::steady_clock::time_point;
  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  void ScheduleAt(Time when, std::function<void()> fn);
  void ScheduleAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
    ScheduleAt(std::chrono::steady_clock::now() + delay, std::move(fn));
  }
  // Stops the thread; pending callbacks never run. Idempotent.
  void Stop();

 private:
  struct Entry {
    Time when;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Entry& o) const {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  uint64_t next_seq_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace verdict
