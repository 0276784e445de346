#include "keyed_mutex.h"

namespace verdict::participant {

KeyedMutex::Guard KeyedMutex::Lock(const std::string& key) {
  Entry* entry;
  {
    std::lock_guard lock(mu_);
    std::unique_ptr<Entry>& slot = entries_[key];
    if (!slot) slot = std::make_unique<Entry>();
    ++slot->refs;
    entry = slot.get();  // stays alive while refs > 0
  }
  entry->mu.lock();
  return Guard(this, key);
}

void KeyedMutex::Unlock(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  it->second->mu.unlock();
  if (--it->second->refs == 0) entries_.erase(it);
}

size_t KeyedMutex::size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace verdict::participant
