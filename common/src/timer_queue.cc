#include "verdict/common/timer_queue.h"

namespace verdict {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() { Stop(); }

void TimerQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void TimerQueue::ScheduleAt(Time when, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    heap_.push(Entry{when, next_seq_++, std::move(fn)});
  }
  cv_.notify_one();
}

void TimerQueue::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (heap_.empty()) {
      cv_.wait(lock);
      continue;
    }
    Time when = heap_.top().when;
    if (std::chrono::steady_clock::now() < when) {
      cv_.wait_until(lock, when);
      continue;
    }
    std::function<void()> fn = std::move(const_cast<Entry&>(heap_.top()).fn);
    heap_.pop();
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace verdict
