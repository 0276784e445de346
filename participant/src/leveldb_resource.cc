#include "verdict/participant/leveldb_resource.h"

#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <filesystem>
#include <system_error>

#include "leveldb_codec.h"
#include "verdict/common/logging.h"

namespace verdict::participant {
namespace {

namespace codec = leveldb_codec;

constexpr char kComponent[] = "leveldb-resource";
constexpr char kFormatValue[] = "1";
// Owner recorded in the lock table while Insert() holds a key. Txn ids are
// never empty, so it matches no txn.
const std::string kInsertOwner;

Status NotActive(const std::string& txn_id, const std::string& why) {
  return Status::Conflict("txn_not_active: transaction '" + txn_id + "' " + why);
}

leveldb::WriteOptions Synced() {
  leveldb::WriteOptions w;
  w.sync = true;
  return w;
}

bool HasPrefix(const leveldb::Slice& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s.data(), prefix.size()) == prefix;
}

}  // namespace

// ---------------------------------------------------------------------------
// Open / close

Result<std::unique_ptr<LevelDbResource>> LevelDbResource::Open(const std::string& dir,
                                                               LevelDbResourceOptions options) {
  if (dir.empty()) return Status::InvalidArgument("data dir is empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create data dir '" + dir + "': " + ec.message());
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::IoError("data dir '" + dir + "' is not a directory");
  }

  const leveldb::FilterPolicy* filter = leveldb::NewBloomFilterPolicy(10);
  leveldb::Options o;
  o.create_if_missing = true;
  o.filter_policy = filter;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, dir, &db);
  if (!s.ok()) {
    delete filter;
    return Status::IoError("cannot open data dir '" + dir + "': " + s.ToString());
  }
  std::unique_ptr<LevelDbResource> res(new LevelDbResource(db, filter, options));

  std::string format;
  s = db->Get(leveldb::ReadOptions(), std::string(codec::kFormatKey), &format);
  if (s.IsNotFound()) {
    std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) {
      return Status::Internal("data dir '" + dir +
                              "' holds a LevelDB database that is not a verdict store");
    }
    s = db->Put(Synced(), std::string(codec::kFormatKey), kFormatValue);
    if (!s.ok()) return Status::IoError("cannot initialize data dir '" + dir + "': " + s.ToString());
  } else if (!s.ok()) {
    return Status::IoError("cannot read data dir '" + dir + "': " + s.ToString());
  } else if (format != kFormatValue) {
    return Status::Internal("data dir '" + dir + "' has unsupported layout version '" + format +
                            "'");
  }
  VERDICT_RETURN_IF_ERROR(res->LoadPrepared());
  return res;
}

LevelDbResource::LevelDbResource(leveldb::DB* db, const leveldb::FilterPolicy* filter,
                                 LevelDbResourceOptions options)
    : db_(db),
      filter_(filter),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : SystemClock::Default()) {}

LevelDbResource::~LevelDbResource() {
  delete db_;
  delete filter_;
}

Status LevelDbResource::LoadPrepared() {
  std::lock_guard lock(mu_);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(std::string(codec::kPreparedPrefix));
       it->Valid() && HasPrefix(it->key(), codec::kPreparedPrefix); it->Next()) {
    std::string txn_id = it->key().ToString().substr(codec::kPreparedPrefix.size());
    Txn txn;
    Status s = codec::DecodePrepared(std::string_view(it->value().data(), it->value().size()),
                                     &txn.record, &txn.writes);
    if (!s.ok()) return Status::Internal("prepared record of '" + txn_id + "': " + s.message());
    if (txn.record.txn_id != txn_id) {
      return Status::Internal("prepared record under '" + txn_id + "' names txn '" +
                              txn.record.txn_id + "'");
    }
    if (txn.record.state == LocalState::kPrecommitted) {
      txn.phase = Phase::kPrecommitted;
    } else if (txn.record.state == LocalState::kPrepared) {
      txn.phase = Phase::kPrepared;
    } else {
      return Status::Internal("prepared record of '" + txn_id + "' has state " +
                              std::string(LocalStateName(txn.record.state)));
    }
    txn.first_staged_ms = txn.record.prepared_at_ms;
    for (const auto& [key, value] : txn.writes) {
      auto [owner, inserted] = lock_owner_.emplace(key, txn_id);
      if (!inserted) {
        return Status::Internal("prepared txns '" + owner->second + "' and '" + txn_id +
                                "' both hold key '" + key + "'");
      }
      txn.locks.insert(key);
    }
    VLOG_INFO(kComponent, "reloaded in-doubt txn " << txn_id << " ("
                                                   << LocalStateName(txn.record.state) << ", "
                                                   << txn.writes.size() << " writes)");
    txns_.emplace(txn_id, std::move(txn));
  }
  if (!it->status().ok()) return Status::IoError("scanning prepared records: " + it->status().ToString());
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Business API

Result<std::optional<std::string>> LevelDbResource::ReadCommitted(const std::string& key) {
  std::string value;
  leveldb::Status s = db_->Get(leveldb::ReadOptions(), codec::DataKey(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return Status::IoError("read '" + key + "': " + s.ToString());
  return std::optional<std::string>(std::move(value));
}

Status LevelDbResource::Insert(const std::string& key, const std::string& value) {
  if (key.empty()) return Status::InvalidArgument("key is empty");
  {
    std::lock_guard lock(mu_);
    auto [owner, inserted] = lock_owner_.emplace(key, kInsertOwner);
    if (!inserted) return Status::Conflict("locked: key '" + key + "' is in use");
  }
  Status result;
  Result<std::optional<std::string>> existing = ReadCommitted(key);
  if (!existing.ok()) {
    result = existing.status();
  } else if (existing->has_value()) {
    result = Status::Conflict("exists: key '" + key + "' already exists");
  } else {
    leveldb::Status s = db_->Put(Synced(), codec::DataKey(key), value);
    if (!s.ok()) result = Status::IoError("insert '" + key + "': " + s.ToString());
  }
  std::lock_guard lock(mu_);
  ReleaseKeyLocked(key);
  return result;
}

Status LevelDbResource::Update(const std::string& txn_id, const std::string& key,
                               const UpdateFn& fn) {
  if (txn_id.empty()) return Status::InvalidArgument("transaction id is empty");
  if (key.empty()) return Status::InvalidArgument("key is empty");
  const auto deadline = std::chrono::steady_clock::now() + options_.lock_wait;
  std::unique_lock lock(mu_);
  Txn* txn = nullptr;
  bool newly_locked = false;
  for (;;) {
    auto it = txns_.find(txn_id);
    if (it == txns_.end()) {
      if (CachedOutcomeLocked(txn_id) != Known::kNo) return NotActive(txn_id, "already finished here");
      lock.unlock();
      Result<Known> disk = DiskOutcome(txn_id);
      lock.lock();
      if (!disk.ok()) return disk.status();
      if (*disk != Known::kNo) return NotActive(txn_id, "already finished here");
      it = txns_.find(txn_id);
      if (it == txns_.end()) {
        if (CachedOutcomeLocked(txn_id) != Known::kNo) {
          return NotActive(txn_id, "already finished here");
        }
        Txn fresh;
        fresh.first_staged_ms = NowMs();
        it = txns_.emplace(txn_id, std::move(fresh)).first;
      }
    }
    txn = &it->second;
    if (txn->phase != Phase::kActive || txn->busy) {
      return NotActive(txn_id, "is already preparing or prepared here");
    }
    auto owner = lock_owner_.find(key);
    if (owner == lock_owner_.end()) {
      lock_owner_.emplace(key, txn_id);
      txn->locks.insert(key);
      newly_locked = true;
      break;
    }
    if (owner->second == txn_id) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Conflict("lock_timeout: key '" + key + "' is held by another transaction");
    }
    // The entry may be erased while we wait: look it up again next round.
    cv_.wait_until(lock, deadline);
  }

  // This txn owns the key's lock and mu_ is held from here on, so the value
  // read below cannot change under us. The committed read is a LevelDB Get
  // (memtable / block cache in the common case).
  std::optional<std::string> current;
  auto staged = txn->writes.find(key);
  if (staged != txn->writes.end()) {
    current = staged->second;
  } else {
    std::string value;
    leveldb::Status s = db_->Get(leveldb::ReadOptions(), codec::DataKey(key), &value);
    if (s.ok()) {
      current = std::move(value);
    } else if (!s.IsNotFound()) {
      if (newly_locked) {
        txn->locks.erase(key);
        ReleaseKeyLocked(key);
      }
      return Status::IoError("read '" + key + "': " + s.ToString());
    }
  }
  Result<std::optional<std::string>> next = fn(current);
  if (!next.ok()) {
    if (newly_locked && staged == txn->writes.end()) {
      txn->locks.erase(key);
      ReleaseKeyLocked(key);
    }
    return next.status();
  }
  txn->writes[key] = std::move(next).value();
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Resource

Result<Vote> LevelDbResource::Prepare(const TxnRecord& record) {
  const std::string& txn_id = record.txn_id;
  if (txn_id.empty()) return Status::InvalidArgument("transaction id is empty");
  std::unique_lock lock(mu_);
  for (;;) {
    Txn* txn = WaitIdle(lock, txn_id);
    if (txn != nullptr) {
      if (txn->phase == Phase::kPrepared || txn->phase == Phase::kPrecommitted) return Vote::kYes;
      // kActive (kPreparing is always busy, so WaitIdle never returns it).
      if (txn->writes.empty()) {
        // Nothing to keep: release read locks and forget the txn.
        for (const std::string& key : txn->locks) ReleaseKeyLocked(key);
        txns_.erase(txn_id);
        return Vote::kReadOnly;
      }
      txn->phase = Phase::kPreparing;
      txn->busy = true;
      txn->record = record;
      txn->record.state = LocalState::kPrepared;
      if (txn->record.prepared_at_ms == 0) txn->record.prepared_at_ms = NowMs();
      std::string encoded = codec::EncodePrepared(txn->record, txn->writes);
      lock.unlock();
      leveldb::Status s = db_->Put(Synced(), codec::PreparedKey(txn_id), encoded);
      lock.lock();
      // Busy entries are never erased, so `txn` is still valid.
      txn->busy = false;
      if (s.ok()) {
        txn->phase = Phase::kPrepared;
        cv_.notify_all();
        return Vote::kYes;
      }
      VLOG_ERROR(kComponent, "prepare of " << txn_id << " not durable, voting no: " << s.ToString());
      int64_t now = NowMs();
      FinishLocked(txn_id, LocalState::kAborted, now);
      lock.unlock();
      WriteAbortRecord(txn_id, now).IgnoreError();  // logged inside
      return Vote::kNo;
    }
    Known known = CachedOutcomeLocked(txn_id);
    if (known == Known::kCommitted) return Vote::kYes;
    if (known == Known::kAborted) return Vote::kNo;
    // Never staged here (or lost in a crash): vote no and remember the abort.
    lock.unlock();
    Result<Known> recorded = RecordAbortOfUnknown(txn_id);
    if (!recorded.ok()) return recorded.status();
    if (*recorded == Known::kCommitted) return Vote::kYes;
    if (*recorded == Known::kAborted) return Vote::kNo;
    lock.lock();  // work appeared meanwhile: decide again
  }
}

Status LevelDbResource::Precommit(const std::string& txn_id) {
  std::unique_lock lock(mu_);
  Txn* txn = WaitIdle(lock, txn_id);
  if (txn != nullptr) {
    if (txn->phase == Phase::kPrecommitted) return Status::Ok();
    if (txn->phase != Phase::kPrepared) {
      return Status::Conflict("txn_not_prepared: transaction '" + txn_id + "' is not prepared here");
    }
    txn->busy = true;
    TxnRecord rec = txn->record;
    rec.state = LocalState::kPrecommitted;
    std::string encoded = codec::EncodePrepared(rec, txn->writes);
    lock.unlock();
    leveldb::Status s = db_->Put(Synced(), codec::PreparedKey(txn_id), encoded);
    lock.lock();
    txn->busy = false;
    cv_.notify_all();
    if (!s.ok()) return Status::IoError("precommit of '" + txn_id + "': " + s.ToString());
    txn->phase = Phase::kPrecommitted;
    txn->record.state = LocalState::kPrecommitted;
    return Status::Ok();
  }
  Result<Known> finished = FinishedOutcomeUnlocking(lock, txn_id);
  if (!finished.ok()) return finished.status();
  Known known = *finished;
  if (known == Known::kCommitted) return Status::Ok();
  if (known == Known::kAborted) {
    return Status::Conflict("txn_aborted: transaction '" + txn_id + "' was aborted here");
  }
  return Status::Conflict("txn_not_prepared: transaction '" + txn_id + "' is not prepared here");
}

Status LevelDbResource::Commit(const std::string& txn_id) {
  std::unique_lock lock(mu_);
  Txn* txn = WaitIdle(lock, txn_id);
  if (txn != nullptr) {
    txn->busy = true;
    int64_t now = NowMs();
    leveldb::WriteBatch batch;
    for (const auto& [key, value] : txn->writes) {
      if (value.has_value()) {
        batch.Put(codec::DataKey(key), *value);
      } else {
        batch.Delete(codec::DataKey(key));
      }
    }
    batch.Delete(codec::PreparedKey(txn_id));
    batch.Put(codec::OutcomeKey(txn_id), codec::EncodeOutcome({LocalState::kCommitted, now}));
    batch.Put(codec::OutcomeIndexKey(now, txn_id), "");
    lock.unlock();
    leveldb::Status s = db_->Write(Synced(), &batch);
    lock.lock();
    txn->busy = false;
    if (!s.ok()) {
      cv_.notify_all();
      return Status::IoError("commit of '" + txn_id + "': " + s.ToString());
    }
    FinishLocked(txn_id, LocalState::kCommitted, now);
    return Status::Ok();
  }
  Result<Known> finished = FinishedOutcomeUnlocking(lock, txn_id);
  if (!finished.ok()) return finished.status();
  Known known = *finished;
  if (known == Known::kAborted) {
    VLOG_ERROR(kComponent, "commit requested for " << txn_id << ", which was aborted here");
    return Status::Conflict("txn_aborted: transaction '" + txn_id + "' was aborted here");
  }
  return Status::Ok();  // committed before, or unknown here
}

Status LevelDbResource::Abort(const std::string& txn_id) {
  std::unique_lock lock(mu_);
  for (;;) {
    Txn* txn = WaitIdle(lock, txn_id);
    if (txn != nullptr) {
      int64_t now = NowMs();
      FinishLocked(txn_id, LocalState::kAborted, now);
      lock.unlock();
      return WriteAbortRecord(txn_id, now);
    }
    Known known = CachedOutcomeLocked(txn_id);
    if (known == Known::kAborted) return Status::Ok();
    if (known == Known::kCommitted) {
      return Status::Conflict("txn_committed: transaction '" + txn_id + "' was committed here");
    }
    lock.unlock();
    Result<Known> recorded = RecordAbortOfUnknown(txn_id);
    if (!recorded.ok()) return recorded.status();
    if (*recorded == Known::kAborted) return Status::Ok();
    if (*recorded == Known::kCommitted) {
      return Status::Conflict("txn_committed: transaction '" + txn_id + "' was committed here");
    }
    lock.lock();
  }
}

Result<std::vector<TxnRecord>> LevelDbResource::ListInDoubt() {
  std::lock_guard lock(mu_);
  std::vector<TxnRecord> out;
  for (const auto& [id, txn] : txns_) {
    if (txn.phase == Phase::kPrepared || txn.phase == Phase::kPrecommitted) {
      out.push_back(txn.record);
    }
  }
  return out;
}

Result<LocalState> LevelDbResource::GetState(const std::string& txn_id) {
  std::unique_lock lock(mu_);
  auto it = txns_.find(txn_id);
  if (it != txns_.end()) {
    switch (it->second.phase) {
      case Phase::kActive:
      case Phase::kPreparing: return LocalState::kActive;
      case Phase::kPrepared: return LocalState::kPrepared;
      case Phase::kPrecommitted: return LocalState::kPrecommitted;
    }
  }
  Result<Known> finished = FinishedOutcomeUnlocking(lock, txn_id);
  if (!finished.ok()) return finished.status();
  Known known = *finished;
  if (known == Known::kCommitted) return LocalState::kCommitted;
  if (known == Known::kAborted) return LocalState::kAborted;
  return LocalState::kUnknown;
}

std::vector<std::string> LevelDbResource::AbortStaleActive(int64_t cutoff_unix_ms) {
  std::vector<std::string> aborted;
  int64_t now = NowMs();
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, txn] : txns_) {
      if (txn.phase == Phase::kActive && !txn.busy && txn.first_staged_ms < cutoff_unix_ms) {
        aborted.push_back(id);
      }
    }
    for (const std::string& id : aborted) FinishLocked(id, LocalState::kAborted, now);
  }
  for (const std::string& id : aborted) {
    VLOG_INFO(kComponent, "aborted stale active txn " << id);
    WriteAbortRecord(id, now).IgnoreError();  // logged inside
  }
  return aborted;
}

void LevelDbResource::ForgetOutcomesBefore(int64_t cutoff_unix_ms) {
  {
    std::lock_guard lock(mu_);
    while (!finished_order_.empty() && finished_order_.front().first < cutoff_unix_ms) {
      auto f = finished_.find(finished_order_.front().second);
      if (f != finished_.end() && f->second.at_ms == finished_order_.front().first) {
        finished_.erase(f);
      }
      finished_order_.pop_front();
    }
  }
  const std::string end = codec::OutcomeIndexKey(cutoff_unix_ms, "");
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  leveldb::WriteBatch batch;
  size_t in_batch = 0, forgotten = 0;
  auto flush = [&] {
    if (in_batch == 0) return;
    leveldb::Status s = db_->Write(leveldb::WriteOptions(), &batch);
    if (!s.ok()) VLOG_WARN(kComponent, "forgetting outcomes: " << s.ToString());
    batch.Clear();
    in_batch = 0;
  };
  for (it->Seek(std::string(codec::kOutcomeIndexPrefix));
       it->Valid() && HasPrefix(it->key(), codec::kOutcomeIndexPrefix) && it->key().compare(end) < 0;
       it->Next()) {
    int64_t at_ms;
    std::string txn_id;
    if (codec::ParseOutcomeIndexKey(std::string_view(it->key().data(), it->key().size()), &at_ms,
                                    &txn_id)) {
      // Only delete the outcome this index entry describes (not a newer one).
      std::string value;
      if (db_->Get(leveldb::ReadOptions(), codec::OutcomeKey(txn_id), &value).ok()) {
        Result<codec::Outcome> o = codec::DecodeOutcome(value);
        if (!o.ok() || o->at_ms < cutoff_unix_ms) batch.Delete(codec::OutcomeKey(txn_id));
      }
    }
    batch.Delete(it->key());
    ++forgotten;
    if (++in_batch >= 1000) flush();
  }
  flush();
  if (forgotten > 0) VLOG_DEBUG(kComponent, "forgot " << forgotten << " outcomes");
}

std::string LevelDbResource::LockOwner(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = lock_owner_.find(key);
  return it == lock_owner_.end() ? std::string() : it->second;
}

size_t LevelDbResource::LockedKeyCount() {
  std::lock_guard lock(mu_);
  return lock_owner_.size();
}

// ---------------------------------------------------------------------------
// Internals

LevelDbResource::Txn* LevelDbResource::WaitIdle(std::unique_lock<std::mutex>& lock,
                                                const std::string& txn_id) {
  for (;;) {
    auto it = txns_.find(txn_id);
    if (it == txns_.end()) return nullptr;
    if (!it->second.busy) return &it->second;
    cv_.wait(lock);
  }
}

void LevelDbResource::FinishLocked(const std::string& txn_id, LocalState outcome, int64_t at_ms) {
  auto it = txns_.find(txn_id);
  if (it != txns_.end()) {
    for (const std::string& key : it->second.locks) ReleaseKeyLocked(key);
    txns_.erase(it);
  }
  RememberLocked(txn_id, outcome, at_ms);
  cv_.notify_all();
}

void LevelDbResource::RememberLocked(const std::string& txn_id, LocalState outcome,
                                     int64_t at_ms) {
  finished_[txn_id] = Finished{outcome, at_ms};
  finished_order_.emplace_back(at_ms, txn_id);
  const int64_t cutoff = NowMs() - options_.outcome_cache.count();
  while (!finished_order_.empty() && finished_order_.front().first < cutoff) {
    auto f = finished_.find(finished_order_.front().second);
    if (f != finished_.end() && f->second.at_ms == finished_order_.front().first) finished_.erase(f);
    finished_order_.pop_front();
  }
}

void LevelDbResource::ReleaseKeyLocked(const std::string& key) {
  lock_owner_.erase(key);
  cv_.notify_all();
}

LevelDbResource::Known LevelDbResource::CachedOutcomeLocked(const std::string& txn_id) {
  auto it = finished_.find(txn_id);
  if (it == finished_.end()) return Known::kNo;
  return it->second.state == LocalState::kCommitted ? Known::kCommitted : Known::kAborted;
}

Result<LevelDbResource::Known> LevelDbResource::FinishedOutcomeUnlocking(
    std::unique_lock<std::mutex>& lock, const std::string& txn_id) {
  Known known = CachedOutcomeLocked(txn_id);
  lock.unlock();
  if (known != Known::kNo) return known;
  return DiskOutcome(txn_id);
}

Result<LevelDbResource::Known> LevelDbResource::DiskOutcome(const std::string& txn_id) {
  std::string value;
  leveldb::Status s = db_->Get(leveldb::ReadOptions(), codec::OutcomeKey(txn_id), &value);
  if (s.IsNotFound()) return Known::kNo;
  if (!s.ok()) return Status::IoError("read outcome of '" + txn_id + "': " + s.ToString());
  Result<codec::Outcome> o = codec::DecodeOutcome(value);
  if (!o.ok()) return Status::Internal("outcome of '" + txn_id + "': " + o.status().message());
  return o->state == LocalState::kCommitted ? Known::kCommitted : Known::kAborted;
}

Status LevelDbResource::WriteAbortRecord(const std::string& txn_id, int64_t at_ms) {
  leveldb::WriteBatch batch;
  batch.Delete(codec::PreparedKey(txn_id));
  batch.Put(codec::OutcomeKey(txn_id), codec::EncodeOutcome({LocalState::kAborted, at_ms}));
  batch.Put(codec::OutcomeIndexKey(at_ms, txn_id), "");
  leveldb::Status s = db_->Write(leveldb::WriteOptions(), &batch);
  if (!s.ok()) {
    VLOG_ERROR(kComponent, "writing abort of " << txn_id << ": " << s.ToString());
    return Status::IoError("abort of '" + txn_id + "': " + s.ToString());
  }
  return Status::Ok();
}

Result<LevelDbResource::Known> LevelDbResource::RecordAbortOfUnknown(const std::string& txn_id) {
  Result<Known> disk = DiskOutcome(txn_id);
  if (!disk.ok()) return disk.status();
  if (*disk != Known::kNo) return *disk;
  int64_t now = NowMs();
  {
    std::lock_guard lock(mu_);
    if (txns_.count(txn_id) != 0) return Known::kNo;  // work appeared: caller decides again
    Known cached = CachedOutcomeLocked(txn_id);
    if (cached != Known::kNo) return cached;
    RememberLocked(txn_id, LocalState::kAborted, now);
  }
  // The memory copy already refuses new work; a failed (unsynced) disk write
  // only shortens how long the abort is remembered.
  WriteAbortRecord(txn_id, now).IgnoreError();
  return Known::kAborted;
}

}  // namespace verdict::participant
