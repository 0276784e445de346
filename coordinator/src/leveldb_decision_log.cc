// LevelDB decision log. Key layout (docs/log-format.md):
//   "m/format"                    -> "1"            log format version marker
//   "t/<txn id>"                  -> record         EncodeRecord(txn)
//   "i/<txn id>"                  -> ""             present while not completed
//   "c/<completed ms, 16 digits>/<txn id>" -> ""    completion index for retention
//   "k/<idempotency key>"         -> txn id
//   "r/<txn id>"                  -> idempotency key (reverse, to delete with the record)
// Every Write is one WriteBatch, so a record and its index entries change
// atomically. LevelDB groups concurrent synced batches into one fsync.
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/cache.h>
#include <leveldb/write_batch.h>

#include <cstdio>
#include <memory>

#include "verdict/common/failpoint.h"
#include "verdict/coordinator/decision_log.h"

namespace verdict::coordinator {
namespace {

constexpr char kFormatKey[] = "m/format";
constexpr char kFormatValue[] = "1";

std::string TxnKey(const std::string& id) { return "t/" + id; }
std::string IncompleteKey(const std::string& id) { return "i/" + id; }
std::string IdemKey(const std::string& key) { return "k/" + key; }
std::string IdemReverseKey(const std::string& id) { return "r/" + id; }
std::string CompletedKey(int64_t ms, const std::string& id) {
  char buf[32];
  snprintf(buf, sizeof(buf), "c/%016lld/", static_cast<long long>(ms));
  return buf + id;
}

Status FromLevelDb(const leveldb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  return Status::IoError(what + ": " + s.ToString());
}

class LevelDbDecisionLog final : public DecisionLog {
 public:
  LevelDbDecisionLog(std::unique_ptr<leveldb::DB> db, std::unique_ptr<leveldb::Cache> cache)
      : cache_(std::move(cache)), db_(std::move(db)) {}

  Status Write(const Transaction& txn, bool sync, const std::string& idempotency_key) override {
    leveldb::WriteBatch batch;
    batch.Put(TxnKey(txn.id), EncodeRecord(txn));
    if (txn.completed) {
      batch.Delete(IncompleteKey(txn.id));
      batch.Put(CompletedKey(txn.completed_at_ms, txn.id), "");
    } else {
      batch.Put(IncompleteKey(txn.id), "");
    }
    if (!idempotency_key.empty()) {
      batch.Put(IdemKey(idempotency_key), txn.id);
      batch.Put(IdemReverseKey(txn.id), idempotency_key);
    }
    VERDICT_RETURN_IF_ERROR(failpoint::Hit("log.before_write"));
    leveldb::WriteOptions wo;
    wo.sync = sync;
    return FromLevelDb(db_->Write(wo, &batch), "decision log write");
  }

  Result<std::optional<Transaction>> Read(const std::string& id) override {
    std::string value;
    leveldb::Status s = db_->Get(leveldb::ReadOptions(), TxnKey(id), &value);
    if (s.IsNotFound()) return std::optional<Transaction>();
    if (!s.ok()) return FromLevelDb(s, "decision log read");
    Result<Transaction> txn = DecodeRecord(value);
    if (!txn.ok()) return txn.status();
    return std::optional<Transaction>(std::move(txn).value());
  }

  Result<std::optional<std::string>> LookupIdempotencyKey(const std::string& key) override {
    std::string value;
    leveldb::Status s = db_->Get(leveldb::ReadOptions(), IdemKey(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromLevelDb(s, "decision log read");
    return std::optional<std::string>(value);
  }

  Status ScanIncomplete(const std::function<bool(Transaction)>& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    for (it->Seek("i/"); it->Valid() && it->key().starts_with("i/"); it->Next()) {
      std::string id = it->key().ToString().substr(2);
      Result<std::optional<Transaction>> txn = Read(id);
      if (!txn.ok()) return txn.status();
      if (!txn->has_value()) continue;  // index without record: a torn earlier version; skip
      if (!fn(std::move(**txn))) break;
    }
    return FromLevelDb(it->status(), "decision log scan");
  }

  Status ScanAll(const std::string& after_id,
                 const std::function<bool(Transaction)>& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    std::string start = TxnKey(after_id);
    it->Seek(start);
    if (!after_id.empty() && it->Valid() && it->key().ToString() == start) it->Next();
    for (; it->Valid() && it->key().starts_with("t/"); it->Next()) {
      Result<Transaction> txn = DecodeRecord(it->value().ToString());
      if (!txn.ok()) return txn.status();
      if (!fn(std::move(txn).value())) break;
    }
    return FromLevelDb(it->status(), "decision log scan");
  }

  Result<int64_t> DeleteCompletedBefore(int64_t cutoff_unix_ms) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    std::string limit = CompletedKey(cutoff_unix_ms, "");
    int64_t deleted = 0;
    leveldb::WriteBatch batch;
    for (it->Seek("c/"); it->Valid() && it->key().starts_with("c/"); it->Next()) {
      std::string key = it->key().ToString();
      if (key >= limit) break;
      std::string id = key.substr(2 + 16 + 1);
      batch.Delete(key);
      batch.Delete(TxnKey(id));
      std::string idem;
      if (db_->Get(leveldb::ReadOptions(), IdemReverseKey(id), &idem).ok()) {
        batch.Delete(IdemKey(idem));
        batch.Delete(IdemReverseKey(id));
      }
      ++deleted;
      if (deleted % 1000 == 0) {
        VERDICT_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "retention delete"));
        batch.Clear();
      }
    }
    VERDICT_RETURN_IF_ERROR(FromLevelDb(it->status(), "decision log scan"));
    VERDICT_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "retention delete"));
    return deleted;
  }

 private:
  std::unique_ptr<leveldb::Cache> cache_;  // must outlive db_
  std::unique_ptr<leveldb::DB> db_;
};

}  // namespace

Result<std::unique_ptr<DecisionLog>> OpenLevelDbDecisionLog(const std::string& dir,
                                                            const LevelDbLogOptions& options) {
  if (dir.empty()) return Status::InvalidArgument("decision log directory is empty");
  std::unique_ptr<leveldb::Cache> cache(leveldb::NewLRUCache(options.block_cache_bytes));
  leveldb::Options lo;
  lo.create_if_missing = true;
  lo.paranoid_checks = true;
  lo.block_cache = cache.get();
  lo.write_buffer_size = options.write_buffer_bytes;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(lo, dir, &raw);
  if (!s.ok()) return Status::IoError("cannot open decision log in " + dir + ": " + s.ToString());
  std::unique_ptr<leveldb::DB> db(raw);
  std::string format;
  s = db->Get(leveldb::ReadOptions(), kFormatKey, &format);
  if (s.IsNotFound()) {
    leveldb::WriteOptions wo;
    wo.sync = true;
    s = db->Put(wo, kFormatKey, kFormatValue);
    if (!s.ok()) return Status::IoError("cannot initialize decision log in " + dir + ": " + s.ToString());
  } else if (!s.ok()) {
    return Status::IoError("cannot read decision log in " + dir + ": " + s.ToString());
  } else if (format != kFormatValue) {
    return Status::InvalidArgument("decision log in " + dir + " has format " + format +
                                   "; this verdictd reads format " + kFormatValue);
  }
  return std::unique_ptr<DecisionLog>(new LevelDbDecisionLog(std::move(db), std::move(cache)));
}

}  // namespace verdict::coordinator
