// A fixed pool of worker threads for blocking work (outbound HTTP fan-out).
// Submit() never blocks; tasks run in FIFO order. The destructor drains the
// queue and joins. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace verdict {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);

  // Runs fn(0..n-1) on the pool and waits for all of them. fn(0) runs on the
  // calling thread so a single-participant call costs no hand-off.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace verdict
