// KeyedMutex: one mutex per string key, created on first use and dropped when
// nobody holds or waits for it. The participant uses it to serialize protocol
// calls (prepare/precommit/commit/abort/recovery) for the same transaction id
// while calls for different ids run in parallel.
//
// Thread-safety: all methods are thread-safe. Not reentrant: a thread must not
// lock the same key twice.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace verdict::participant {

class KeyedMutex {
 public:
  // Holds the lock of one key until destroyed (movable, not copyable).
  class Guard {
   public:
    Guard(Guard&& other) noexcept : owner_(other.owner_), key_(std::move(other.key_)) {
      other.owner_ = nullptr;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (owner_ != nullptr) owner_->Unlock(key_);
    }

   private:
    friend class KeyedMutex;
    Guard(KeyedMutex* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    KeyedMutex* owner_;
    std::string key_;
  };

  // Blocks until this thread holds `key`.
  [[nodiscard]] Guard Lock(const std::string& key);

  // Keys currently held or waited for (for tests).
  size_t size();

 private:
  struct Entry {
    std::mutex mu;
    int refs = 0;  // holders + waiters; guarded by KeyedMutex::mu_
  };
  void Unlock(const std::string& key);

  std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
};

}  // namespace verdict::participant
