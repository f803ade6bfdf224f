#include "storage/mvcc/kv_store.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "storage/check.h"

namespace kvd::storage::mvcc {
namespace {

// meta column family keys.
constexpr char kMetaRevision[] = "revision";           // BE64: current main revision
constexpr char kMetaCompactRev[] = "compact_rev";      // BE64: reads below fail
constexpr char kMetaCompactedRev[] = "compacted_rev";  // BE64: physically removed up to
constexpr char kMetaAppliedIndex[] = "applied_index";  // BE64: raft index of the last apply

// lease column family: 'k' ‖ BE64(lease) ‖ user_key → "" for every key attached to a lease.
std::string LeaseKeyIndex(int64_t lease, std::string_view user_key) {
  std::string out("k");
  PutBigEndian64(&out, static_cast<uint64_t>(lease));
  out.append(user_key);
  return out;
}

std::string EncodeBigEndian(uint64_t v) {
  std::string out;
  PutBigEndian64(&out, v);
  return out;
}

absl::StatusOr<uint64_t> ReadMetaInt(Engine* engine, const char* key, uint64_t fallback) {
  absl::StatusOr<std::string> value = engine->Get(Cf::kMeta, key);
  if (absl::IsNotFound(value.status())) return fallback;
  if (!value.ok()) return value.status();
  if (value->size() != 8) {
    return absl::DataLossError(absl::StrCat("meta key '", key, "' is corrupt"));
  }
  return GetBigEndian64(value->data());
}

absl::Status CorruptKey(const char* where) {
  return absl::DataLossError(absl::StrCat("corrupt MVCC record found during ", where));
}

// Debian's abseil has its own string_view: heterogeneous lookups in its maps take that.
absl::string_view AbslView(std::string_view v) { return absl::string_view(v.data(), v.size()); }

bool StartsWith(const rocksdb::Slice& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s.data(), prefix.size()) == prefix;
}

// A live version found by VisitLive. Its views point into the iterator's current entry:
// valid only during the visit.
struct LiveVersion {
  std::string_view prefix;  // escape(user_key) ‖ 0x00 0x01
  int64_t mod_revision;
  ValueRecord record;
};

// Calls visit(version) for every key of range live at rev, in key order, while visit
// returns true. it may be any iterator over the kv column family. Decodes no user key
// (visitors that only count need none).
template <typename Visit>
absl::Status VisitLive(rocksdb::Iterator* it, const KeyRange& range, int64_t rev, Visit&& visit) {
  std::string upper;
  if (range.single()) {
    upper = KeySuccessorPrefix(range.key());
    it->Seek(SeekKeyAt(range.key(), rev));
  } else {
    if (!range.unbounded()) upper = KeyPrefix(range.end());
    it->Seek(KeyPrefix(range.key()));
  }
  std::string seek;  // reused: a key to seek to
  while (it->Valid()) {
    rocksdb::Slice raw_key = it->key();
    std::string_view encoded(raw_key.data(), raw_key.size());
    if (!upper.empty() && encoded.compare(upper) >= 0) break;
    Revision version;
    size_t prefix_len = 0;
    if (!SplitVersionKey(encoded, &prefix_len, &version)) return CorruptKey("range");
    if (version.main > rev) {
      // Newer than the read revision: jump to this key's newest version at or below rev,
      // or past the key if it has none.
      seek.assign(encoded.data(), prefix_len);
      PutBigEndian64(&seek, ~static_cast<uint64_t>(rev));
      PutBigEndian64(&seek, 0);
      it->Seek(seek);
      continue;
    }
    LiveVersion live;
    live.prefix = encoded.substr(0, prefix_len);
    live.mod_revision = version.main;
    rocksdb::Slice raw = it->value();
    if (!DecodeValueRecord(std::string_view(raw.data(), raw.size()), &live.record)) {
      return CorruptKey("range");
    }
    if (!live.record.tombstone && !visit(live)) break;
    // A single key has no other version to visit: the first one at or below rev decides.
    if (range.single()) break;
    // Older versions of this key follow; step over them. (live's views die with Next.)
    seek.assign(encoded.data(), prefix_len);
    it->Next();
    if (it->Valid() && StartsWith(it->key(), seek)) {
      seek.back() = static_cast<char>(seek.back() + 1);
      it->Seek(seek);
    }
  }
  return FromRocks(it->status());
}

mvccpb::KeyValue MakeKeyValue(std::string_view user_key, int64_t mod_revision,
                              const ValueRecord& record) {
  mvccpb::KeyValue kv;
  kv.set_key(user_key.data(), user_key.size());
  kv.set_create_revision(record.create_revision);
  kv.set_mod_revision(mod_revision);
  kv.set_version(record.version);
  kv.set_lease(record.lease);
  kv.set_value(record.value.data(), record.value.size());
  return kv;
}

// The shared body of every range read.
absl::StatusOr<RangeResult> RangeOn(rocksdb::Iterator* it, const KeyRange& range,
                                    const RangeOptions& options, int64_t current_rev,
                                    int64_t compact_rev) {
  if (options.rev > current_rev) return errors::FutureRevision();
  int64_t rev = options.rev > 0 ? options.rev : current_rev;
  if (rev < compact_rev) return errors::Compacted();
  RangeResult result;
  result.rev = current_rev;
  std::string user_key;
  absl::Status s = VisitLive(it, range, rev, [&](const LiveVersion& live) {
    ++result.count;
    if (!options.count_only &&
        (options.limit <= 0 || static_cast<int64_t>(result.kvs.size()) < options.limit)) {
      UnescapeKeyPrefix(live.prefix, &user_key);
      result.kvs.push_back(MakeKeyValue(user_key, live.mod_revision, live.record));
    }
    return true;
  });
  if (!s.ok()) return s;
  return result;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// KeyRange

KeyRange KeyRange::FromRequest(std::string_view key, std::string_view range_end) {
  if (range_end.empty()) return KeyRange(key, std::nullopt);
  if (range_end == std::string_view("\0", 1)) return KeyRange(key, std::string_view());
  return KeyRange(key, range_end);
}

bool KeyRange::Contains(std::string_view user_key) const {
  if (single()) return user_key == key_;
  if (user_key < key_) return false;
  return unbounded() || user_key < *end_;
}

// ---------------------------------------------------------------------------------------
// ReadTxn

ReadTxn::ReadTxn(const KvStore* store, const rocksdb::Snapshot* snapshot, int64_t rev,
                 int64_t compact_rev)
    : store_(store), snapshot_(snapshot), rev_(rev), compact_rev_(compact_rev) {}

ReadTxn::~ReadTxn() { store_->engine_->db()->ReleaseSnapshot(snapshot_); }

absl::StatusOr<RangeResult> ReadTxn::Range(const KeyRange& range,
                                           const RangeOptions& options) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(
      store_->engine_->db()->NewIterator(ro, store_->engine_->cf(Cf::kKv)));
  return RangeOn(it.get(), range, options, rev_, compact_rev_);
}

namespace {

// Keys of lease in the lease family as iterator it sees them.
absl::StatusOr<std::vector<std::string>> LeaseKeys(rocksdb::Iterator* it, int64_t lease) {
  std::string prefix = LeaseKeyIndex(lease, "");
  std::vector<std::string> keys;
  for (it->Seek(prefix); it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    keys.emplace_back(it->key().data() + prefix.size(), it->key().size() - prefix.size());
  }
  if (absl::Status s = FromRocks(it->status()); !s.ok()) return s;
  return keys;
}

}  // namespace

absl::StatusOr<std::vector<mvccpb::Event>> ReadTxn::Events(int64_t from_rev,
                                                           size_t max_events) const {
  if (from_rev < compact_rev_) return errors::Compacted();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  rocksdb::DB* db = store_->engine_->db();
  std::unique_ptr<rocksdb::Iterator> index(db->NewIterator(ro, store_->engine_->cf(Cf::kRevIndex)));
  std::vector<mvccpb::Event> events;
  std::string user_key;
  for (index->Seek(RevIndexKey(Revision{from_rev, 0})); index->Valid(); index->Next()) {
    Revision rev = DecodeRevIndexKey(std::string_view(index->key().data(), index->key().size()));
    if (rev.main > rev_) break;
    if (events.size() >= max_events && events.back().kv().mod_revision() != rev.main) break;
    bool tombstone = false;
    std::string_view key;
    rocksdb::Slice v = index->value();
    if (!DecodeRevIndexValue(std::string_view(v.data(), v.size()), &tombstone, &key)) {
      return CorruptKey("history read");
    }
    mvccpb::Event& event = events.emplace_back();
    if (tombstone) {
      event.set_type(mvccpb::Event::DELETE);
      event.mutable_kv()->set_key(key.data(), key.size());
      event.mutable_kv()->set_mod_revision(rev.main);
      continue;
    }
    std::string record_bytes;
    rocksdb::Status s =
        db->Get(ro, store_->engine_->cf(Cf::kKv), VersionKey(key, rev), &record_bytes);
    if (!s.ok()) return absl::DataLossError("history entry without its version: " + s.ToString());
    ValueRecord record;
    if (!DecodeValueRecord(record_bytes, &record)) return CorruptKey("history read");
    event.set_type(mvccpb::Event::PUT);
    *event.mutable_kv() = MakeKeyValue(key, rev.main, record);
  }
  if (absl::Status s = FromRocks(index->status()); !s.ok()) return s;
  return events;
}

absl::StatusOr<std::vector<std::string>> ReadTxn::KeysOfLease(int64_t lease) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(
      store_->engine_->db()->NewIterator(ro, store_->engine_->cf(Cf::kLease)));
  return LeaseKeys(it.get(), lease);
}

// ---------------------------------------------------------------------------------------
// ApplyBatch

ApplyBatch::ApplyBatch(KvStore* store)
    : store_(store),
      batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
      begin_rev_(store->current_rev()),
      compact_rev_(store->compact_rev()) {}

ApplyBatch::~ApplyBatch() = default;

void ApplyBatch::BeginTxn() {
  KVD_CHECK(!txn_open_);
  txn_open_ = true;
  txn_changes_ = 0;
}

int64_t ApplyBatch::EndTxn() {
  KVD_CHECK(txn_open_);
  txn_open_ = false;
  if (txn_changes_ > 0) ++begin_rev_;
  txn_changes_ = 0;
  return begin_rev_;
}

absl::StatusOr<RangeResult> ApplyBatch::Range(const KeyRange& range,
                                              const RangeOptions& options) const {
  std::unique_ptr<rocksdb::Iterator> it(batch_.NewIteratorWithBase(
      store_->engine_->cf(Cf::kKv),
      store_->engine_->db()->NewIterator(rocksdb::ReadOptions(), store_->engine_->cf(Cf::kKv))));
  return RangeOn(it.get(), range, options, view_rev(), compact_rev_);
}

std::optional<LatestVersion> ApplyBatch::Current(std::string_view user_key) {
  if (auto it = latest_.find(AbslView(user_key)); it != latest_.end()) return it->second;
  // Not written by this batch: the committed state is the truth.
  if (std::optional<std::optional<LatestVersion>> cached = store_->CachedLatest(user_key)) {
    return *cached;
  }
  absl::StatusOr<RangeResult> r = Range(KeyRange::Single(user_key), RangeOptions{});
  // Reading the current revision cannot fail on revision bounds; a corrupt record cannot
  // be written over safely.
  KVD_CHECK_OK(r.status());
  std::optional<LatestVersion> latest;
  if (!r->kvs.empty()) {
    const mvccpb::KeyValue& kv = r->kvs.front();
    latest = LatestVersion{kv.create_revision(), kv.version(), kv.lease()};
  }
  latest_.insert_or_assign(AbslView(user_key), latest);
  return latest;
}

void ApplyBatch::WriteVersion(std::string_view user_key, const ValueRecord& record) {
  Revision rev{begin_rev_ + 1, txn_changes_};
  std::string value;
  EncodeValueRecord(&value, record);
  batch_.Put(store_->engine_->cf(Cf::kKv), VersionKey(user_key, rev), value);
  batch_.Put(store_->engine_->cf(Cf::kRevIndex), RevIndexKey(rev),
             RevIndexValue(record.tombstone, user_key));
  ++txn_changes_;
}

int64_t ApplyBatch::Put(std::string_view key, std::string_view value, int64_t lease) {
  KVD_CHECK(txn_open_);
  std::optional<LatestVersion> prev = Current(key);
  int64_t rev = begin_rev_ + 1;
  ValueRecord record;
  record.create_revision = prev ? prev->create_revision : rev;
  record.version = prev ? prev->version + 1 : 1;
  record.lease = lease;
  record.value = value;
  WriteVersion(key, record);
  latest_.insert_or_assign(AbslView(key),
                           LatestVersion{record.create_revision, record.version, lease});

  rocksdb::ColumnFamilyHandle* lease_cf = store_->engine_->cf(Cf::kLease);
  int64_t old_lease = prev ? prev->lease : 0;
  if (old_lease != 0 && old_lease != lease) batch_.Delete(lease_cf, LeaseKeyIndex(old_lease, key));
  if (lease != 0 && old_lease != lease) batch_.Put(lease_cf, LeaseKeyIndex(lease, key), "");

  mvccpb::Event& event = events_.emplace_back();
  event.set_type(mvccpb::Event::PUT);
  *event.mutable_kv() = MakeKeyValue(key, rev, record);
  return rev;
}

std::pair<int64_t, int64_t> ApplyBatch::DeleteRange(const KeyRange& range) {
  KVD_CHECK(txn_open_);
  absl::StatusOr<RangeResult> live = Range(range, RangeOptions{});
  KVD_CHECK_OK(live.status());
  rocksdb::ColumnFamilyHandle* lease_cf = store_->engine_->cf(Cf::kLease);
  for (const mvccpb::KeyValue& kv : live->kvs) {
    ValueRecord tombstone;
    tombstone.tombstone = true;
    WriteVersion(kv.key(), tombstone);
    if (kv.lease() != 0) batch_.Delete(lease_cf, LeaseKeyIndex(kv.lease(), kv.key()));
    latest_.insert_or_assign(kv.key(), std::nullopt);
    mvccpb::Event& event = events_.emplace_back();
    event.set_type(mvccpb::Event::DELETE);
    event.mutable_kv()->set_key(kv.key());
    event.mutable_kv()->set_mod_revision(begin_rev_ + 1);
  }
  int64_t deleted = static_cast<int64_t>(live->kvs.size());
  return {deleted, view_rev()};
}

std::vector<std::string> ApplyBatch::KeysOfLease(int64_t lease) const {
  rocksdb::ColumnFamilyHandle* cf = store_->engine_->cf(Cf::kLease);
  std::unique_ptr<rocksdb::Iterator> it(batch_.NewIteratorWithBase(
      cf, store_->engine_->db()->NewIterator(rocksdb::ReadOptions(), cf)));
  absl::StatusOr<std::vector<std::string>> keys = LeaseKeys(it.get(), lease);
  KVD_CHECK_OK(keys.status());
  return std::move(*keys);
}

void ApplyBatch::PutAux(Cf cf, std::string_view key, std::string_view value) {
  KVD_CHECK(cf != Cf::kKv && cf != Cf::kRevIndex);
  batch_.Put(store_->engine_->cf(cf), rocksdb::Slice(key.data(), key.size()),
             rocksdb::Slice(value.data(), value.size()));
}

void ApplyBatch::DeleteAux(Cf cf, std::string_view key) {
  KVD_CHECK(cf != Cf::kKv && cf != Cf::kRevIndex);
  batch_.Delete(store_->engine_->cf(cf), rocksdb::Slice(key.data(), key.size()));
}

absl::StatusOr<std::optional<std::string>> ApplyBatch::GetAux(Cf cf, std::string_view key) const {
  std::string value;
  rocksdb::Status s = batch_.GetFromBatchAndDB(store_->engine_->db(), rocksdb::ReadOptions(),
                                               store_->engine_->cf(cf),
                                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s);
  return std::optional<std::string>(std::move(value));
}

absl::Status ApplyBatch::Compact(int64_t rev) {
  KVD_CHECK(!txn_open_);
  if (rev <= compact_rev_) return errors::Compacted();
  if (rev > begin_rev_) return errors::FutureRevision();
  compact_rev_ = rev;
  new_compact_rev_ = rev;
  return absl::OkStatus();
}

absl::Status ApplyBatch::Commit(bool sync) {
  KVD_CHECK(!txn_open_ && !committed_);
  committed_ = true;
  rocksdb::ColumnFamilyHandle* meta = store_->engine_->cf(Cf::kMeta);
  rocksdb::WriteBatch* wb = batch_.GetWriteBatch();
  wb->Put(meta, kMetaRevision, EncodeBigEndian(static_cast<uint64_t>(begin_rev_)));
  if (new_compact_rev_) {
    wb->Put(meta, kMetaCompactRev, EncodeBigEndian(static_cast<uint64_t>(*new_compact_rev_)));
  }
  uint64_t applied = applied_index_.value_or(store_->applied_index());
  if (applied_index_) wb->Put(meta, kMetaAppliedIndex, EncodeBigEndian(applied));
  absl::Status written = sync ? store_->engine_->Write(wb, /*sync=*/true)
                              : store_->engine_->WriteUnlogged(wb);
  if (!written.ok()) return written;
  store_->MergeLatest(latest_);
  store_->Publish(begin_rev_, compact_rev_, applied);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// KvStore

absl::StatusOr<std::unique_ptr<KvStore>> KvStore::Open(Engine* engine) {
  std::unique_ptr<KvStore> store(new KvStore(engine));
  if (absl::Status s = store->Reload(); !s.ok()) return s;
  return store;
}

absl::Status KvStore::Reload() {
  // A store never compacted has compact revision -1, as etcd's: compacting at 0 succeeds
  // once.
  constexpr uint64_t kNever = ~uint64_t{0};
  absl::StatusOr<uint64_t> rev = ReadMetaInt(engine_, kMetaRevision, 1);
  absl::StatusOr<uint64_t> compact = ReadMetaInt(engine_, kMetaCompactRev, kNever);
  absl::StatusOr<uint64_t> compacted = ReadMetaInt(engine_, kMetaCompactedRev, 0);
  absl::StatusOr<uint64_t> applied = ReadMetaInt(engine_, kMetaAppliedIndex, 0);
  for (const absl::Status& s :
       {rev.status(), compact.status(), compacted.status(), applied.status()}) {
    if (!s.ok()) return s;
  }
  int64_t compact_rev = *compact == kNever ? -1 : static_cast<int64_t>(*compact);
  if (static_cast<int64_t>(*compacted) > std::max<int64_t>(compact_rev, 0) ||
      compact_rev > static_cast<int64_t>(*rev)) {
    return absl::DataLossError(absl::StrCat("inconsistent revisions in meta: revision ", *rev,
                                            ", compact ", compact_rev, ", compacted ", *compacted));
  }
  {
    absl::MutexLock lock(&latest_mu_);
    latest_.clear();
  }
  absl::MutexLock lock(&mu_);
  current_rev_ = static_cast<int64_t>(*rev);
  compact_rev_ = compact_rev;
  compacted_rev_ = static_cast<int64_t>(*compacted);
  applied_index_ = *applied;
  return absl::OkStatus();
}

int64_t KvStore::current_rev() const {
  absl::MutexLock lock(&mu_);
  return current_rev_;
}

int64_t KvStore::compact_rev() const {
  absl::MutexLock lock(&mu_);
  return compact_rev_;
}

int64_t KvStore::compacted_rev() const {
  absl::MutexLock lock(&mu_);
  return compacted_rev_;
}

uint64_t KvStore::applied_index() const {
  absl::MutexLock lock(&mu_);
  return applied_index_;
}

std::unique_ptr<ReadTxn> KvStore::Read() const {
  absl::MutexLock lock(&mu_);
  // Taken under mu_: the snapshot holds at least every batch published so far.
  const rocksdb::Snapshot* snapshot = engine_->db()->GetSnapshot();
  return std::unique_ptr<ReadTxn>(new ReadTxn(this, snapshot, current_rev_, compact_rev_));
}

std::unique_ptr<ApplyBatch> KvStore::NewApplyBatch() {
  return std::unique_ptr<ApplyBatch>(new ApplyBatch(this));
}

void KvStore::Publish(int64_t rev, int64_t compact_rev, uint64_t applied_index) {
  absl::MutexLock lock(&mu_);
  current_rev_ = rev;
  compact_rev_ = compact_rev;
  applied_index_ = applied_index;
}

std::optional<std::optional<LatestVersion>> KvStore::CachedLatest(std::string_view key) const {
  absl::MutexLock lock(&latest_mu_);
  auto it = latest_.find(AbslView(key));
  if (it == latest_.end()) return std::nullopt;
  return it->second;
}

void KvStore::MergeLatest(LatestVersions& batch) {
  absl::MutexLock lock(&latest_mu_);
  if (latest_.size() + batch.size() > kMaxLatest) latest_.clear();
  if (latest_.empty()) {
    latest_.swap(batch);
    return;
  }
  for (auto& [key, latest] : batch) latest_.insert_or_assign(key, latest);
}

absl::StatusOr<bool> KvStore::CompactStep(int64_t max_revisions) {
  absl::MutexLock step_lock(&compact_mu_);
  int64_t target, done;
  {
    absl::MutexLock lock(&mu_);
    target = compact_rev_;
    done = compacted_rev_;
  }
  if (done >= target) return true;
  int64_t end = std::min(target, done + std::max<int64_t>(max_revisions, 1));

  rocksdb::DB* db = engine_->db();
  // The keys changed in (done, end]: only they can have versions that became invisible.
  absl::flat_hash_set<std::string> keys;
  {
    std::string upper = RevIndexKey(Revision{end + 1, 0});
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, engine_->cf(Cf::kRevIndex)));
    for (it->Seek(RevIndexKey(Revision{done + 1, 0})); it->Valid(); it->Next()) {
      bool tombstone = false;
      std::string_view user_key;
      rocksdb::Slice v = it->value();
      if (!DecodeRevIndexValue(std::string_view(v.data(), v.size()), &tombstone, &user_key)) {
        return CorruptKey("compaction");
      }
      keys.emplace(user_key);
    }
    if (absl::Status s = FromRocks(it->status()); !s.ok()) return s;
  }

  // For each such key keep the newest version at or below target (unless it is a
  // tombstone) and remove every older one, with its history entry.
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(
      db->NewIterator(rocksdb::ReadOptions(), engine_->cf(Cf::kKv)));
  std::string decoded_key;
  for (const std::string& key : keys) {
    std::string prefix = KeyPrefix(key);
    it->Seek(SeekKeyAt(key, target));
    bool newest = true;
    for (; it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
      Revision rev;
      rocksdb::Slice k = it->key();
      if (!DecodeVersionKey(std::string_view(k.data(), k.size()), &decoded_key, &rev)) {
        return CorruptKey("compaction");
      }
      if (newest) {
        newest = false;
        ValueRecord record;
        rocksdb::Slice v = it->value();
        if (!DecodeValueRecord(std::string_view(v.data(), v.size()), &record)) {
          return CorruptKey("compaction");
        }
        if (!record.tombstone) continue;
      }
      wb.Delete(engine_->cf(Cf::kKv), k);
      wb.Delete(engine_->cf(Cf::kRevIndex), RevIndexKey(rev));
    }
    if (absl::Status s = FromRocks(it->status()); !s.ok()) return s;
  }
  wb.Put(engine_->cf(Cf::kMeta), kMetaCompactedRev, EncodeBigEndian(static_cast<uint64_t>(end)));
  // Unlogged, like the applied state: after a crash the step is redone from the
  // compacted_rev of the last flush.
  if (absl::Status s = engine_->WriteUnlogged(&wb); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  compacted_rev_ = end;
  return end >= compact_rev_;
}

}  // namespace kvd::storage::mvcc
