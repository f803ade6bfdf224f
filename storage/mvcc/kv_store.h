// The MVCC key space: etcd's data model on RocksDB.
//
// Every mutating request gets the next main revision; the changes inside it are numbered
// by sub revision. Each key keeps its history: create_revision (start of the current
// incarnation), mod_revision, version (puts since creation) and lease; a delete writes a
// tombstone. Reads name a revision (0 = current) and see the store exactly as it was then,
// unless compaction has removed that history (etcd's "required revision has been
// compacted").
//
// Threads: reads (Read()) run on any thread, each on a RocksDB snapshot. Writes run on one
// thread (the applier) through an ApplyBatch, which groups many requests into one atomic
// RocksDB write together with the raft applied index: after a crash the store is exactly
// as of some applied index, never between two. Physical compaction runs in bounded steps
// (CompactStep) on a background thread, concurrently with both.
//
// Memory and start-up time do not depend on the number of keys: there is no in-memory
// index; Open() reads a few meta keys.
#ifndef KVD_STORAGE_MVCC_KV_STORE_H_
#define KVD_STORAGE_MVCC_KV_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/mvccpb/kv.pb.h"
#include "rocksdb/utilities/write_batch_with_index.h"
#include "storage/engine.h"
#include "storage/mvcc/key_codec.h"

namespace kvd::storage::mvcc {

// The keys a request names, in etcd's terms: range_end empty means the single key;
// range_end "\0" means every key >= key; otherwise the half-open range [key, range_end).
class KeyRange {
 public:
  static KeyRange FromRequest(std::string_view key, std::string_view range_end);
  static KeyRange Single(std::string_view key) { return KeyRange(key, std::nullopt); }

  std::string_view key() const { return key_; }
  bool single() const { return !end_.has_value(); }
  // Unbounded above (range_end was "\0").
  bool unbounded() const { return end_.has_value() && end_->empty(); }
  // REQUIRES: !single() && !unbounded().
  std::string_view end() const { return *end_; }

  bool Contains(std::string_view user_key) const;

 private:
  KeyRange(std::string_view key, std::optional<std::string_view> end) : key_(key), end_(end) {}
  std::string_view key_;
  std::optional<std::string_view> end_;  // nullopt: single key; "": unbounded
};

struct RangeOptions {
  // At most this many keys in kvs (0: no limit); count still counts them all.
  int64_t limit = 0;
  // Revision to read at; 0 means the view's current revision.
  int64_t rev = 0;
  // Count only: kvs stays empty.
  bool count_only = false;
};

struct RangeResult {
  std::vector<mvccpb::KeyValue> kvs;
  // Keys in the range at the read revision, regardless of limit.
  int64_t count = 0;
  // The view's current revision (not the revision read at), as etcd reports it.
  int64_t rev = 0;
};

class KvStore;

// What a write needs of a key's newest version (nullopt where used: the key does not
// exist).
struct LatestVersion {
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};
using LatestVersions = absl::flat_hash_map<std::string, std::optional<LatestVersion>>;

// What a request reads through: a committed snapshot (ReadTxn) or an open request inside an
// ApplyBatch, which also sees the batch's own writes.
class KvView {
 public:
  virtual ~KvView() = default;
  // The revision the view reads at when a request names none.
  virtual int64_t view_rev() const = 0;
  // Reads below this revision fail with errors::Compacted().
  virtual int64_t view_compact_rev() const = 0;
  // Errors: errors::FutureRevision() if options.rev > view_rev(); errors::Compacted() if
  // 0 < options.rev < view_compact_rev(); DataLoss on a corrupt record.
  virtual absl::StatusOr<RangeResult> Range(const KeyRange& range,
                                            const RangeOptions& options) const = 0;
};

// A consistent, read-only view of the committed store. Cheap; hold it briefly (it pins a
// RocksDB snapshot).
class ReadTxn final : public KvView {
 public:
  ~ReadTxn() override;
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

  int64_t view_rev() const override { return rev_; }
  int64_t view_compact_rev() const override { return compact_rev_; }
  absl::StatusOr<RangeResult> Range(const KeyRange& range,
                                    const RangeOptions& options) const override;

  // The history after a revision: every change with main revision in [from_rev, rev()],
  // in revision order, at most max_events of them (but never splitting one revision's
  // changes). A DELETE event's kv holds the key and mod_revision only.
  // Errors: errors::Compacted() if from_rev < compact_rev(); DataLoss on corruption.
  absl::StatusOr<std::vector<mvccpb::Event>> Events(int64_t from_rev, size_t max_events) const;

  // The keys attached to a lease (any order).
  absl::StatusOr<std::vector<std::string>> KeysOfLease(int64_t lease) const;

 private:
  friend class KvStore;
  ReadTxn(const KvStore* store, const rocksdb::Snapshot* snapshot, int64_t rev,
          int64_t compact_rev);

  const KvStore* store_;
  const rocksdb::Snapshot* snapshot_;
  int64_t rev_;
  int64_t compact_rev_;
};

// Applies a sequence of requests as one atomic write. Each request is bracketed by
// BeginTxn()/EndTxn() and gets at most one main revision; requests later in the batch see
// the writes of earlier ones. Nothing is visible to readers until Commit().
// Not thread-safe; at most one ApplyBatch exists at a time (KvStore::NewApplyBatch).
class ApplyBatch final : public KvView {
 public:
  ~ApplyBatch() override;
  ApplyBatch(const ApplyBatch&) = delete;
  ApplyBatch& operator=(const ApplyBatch&) = delete;

  // Starts a request. REQUIRES: no request open.
  void BeginTxn();
  // The revision the open request reads at: the revision before it, plus one once it has
  // changed something (as etcd's write txn reports it).
  int64_t view_rev() const override { return begin_rev_ + (txn_changes_ > 0 ? 1 : 0); }
  int64_t view_compact_rev() const override { return compact_rev_; }
  // Reads inside the open request, seeing every write before it in this batch.
  absl::StatusOr<RangeResult> Range(const KeyRange& range,
                                    const RangeOptions& options) const override;
  // Writes key = value under lease (0: none). Returns the request's revision.
  int64_t Put(std::string_view key, std::string_view value, int64_t lease);
  // Deletes every live key in range. Returns {deleted, revision}; revision is the
  // request's new revision if anything in it changed, else the current one.
  std::pair<int64_t, int64_t> DeleteRange(const KeyRange& range);
  // Ends the request; returns the store revision after it.
  int64_t EndTxn();

  // Records a compaction at rev: reads below rev fail from now on; the old versions are
  // removed by KvStore::CompactStep. Errors: errors::Compacted() if rev <= the current
  // compact revision, errors::FutureRevision() if rev > the current revision.
  // REQUIRES: no request open.
  absl::Status Compact(int64_t rev);

  // The keys attached to a lease, as the open request sees them.
  std::vector<std::string> KeysOfLease(int64_t lease) const;

  // State kept beside the key space (lease records, auth), written atomically with the
  // batch. Reads of it go to the engine; the batch's own aux writes are visible to
  // GetAux.
  void PutAux(Cf cf, std::string_view key, std::string_view value);
  void DeleteAux(Cf cf, std::string_view key);
  absl::StatusOr<std::optional<std::string>> GetAux(Cf cf, std::string_view key) const;

  // The raft index this batch brings the store to; stored with the batch.
  void SetAppliedIndex(uint64_t index) { applied_index_ = index; }

  // Changes made by this batch, in revision order (for watchers).
  const std::vector<mvccpb::Event>& events() const { return events_; }
  int64_t rev() const { return begin_rev_; }

  // Writes the batch atomically and publishes it to readers. With sync it is durable on
  // return; without, it skips the WAL and is durable after the engine's next flush (a
  // crash before that loses it whole: Engine::WriteUnlogged).
  // REQUIRES: no request open. After Commit the batch is spent.
  absl::Status Commit(bool sync);

 private:
  friend class KvStore;
  explicit ApplyBatch(KvStore* store);

  // The newest version of user_key as the open request sees it, or nullopt if the key does
  // not exist (never written, or deleted). From latest_ or the store's cache when they
  // know the key, else read (one Seek) and remembered in latest_.
  std::optional<LatestVersion> Current(std::string_view user_key);
  void WriteVersion(std::string_view user_key, const ValueRecord& record);

  KvStore* store_;
  mutable rocksdb::WriteBatchWithIndex batch_;  // mutable: iterating it is a read
  bool txn_open_ = false;
  int64_t begin_rev_;  // revision before the open request (or the batch's last)
  int64_t txn_changes_ = 0;
  int64_t compact_rev_;
  std::optional<int64_t> new_compact_rev_;
  std::optional<uint64_t> applied_index_;
  std::vector<mvccpb::Event> events_;
  // The newest version, as of this batch, of every key it wrote or Current() read.
  LatestVersions latest_;
  bool committed_ = false;
};

class KvStore {
 public:
  // Loads revisions and the applied index from engine. REQUIRES: engine outlives the store.
  static absl::StatusOr<std::unique_ptr<KvStore>> Open(Engine* engine);

  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // Re-reads the revisions and the applied index from the engine, as Open does: after the
  // replicated state was replaced underneath the store (storage/snapshot.h). REQUIRES: no
  // ApplyBatch open and no CompactStep running.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  int64_t current_rev() const ABSL_LOCKS_EXCLUDED(mu_);
  // Reads below this fail; physical removal may lag behind (compacted_rev()).
  int64_t compact_rev() const ABSL_LOCKS_EXCLUDED(mu_);
  // Old versions up to here are physically gone.
  int64_t compacted_rev() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t applied_index() const ABSL_LOCKS_EXCLUDED(mu_);

  std::unique_ptr<ReadTxn> Read() const ABSL_LOCKS_EXCLUDED(mu_);

  // REQUIRES: the previous batch was committed or destroyed.
  std::unique_ptr<ApplyBatch> NewApplyBatch();

  // Removes, for up to max_revisions revisions of history past compacted_rev(), every
  // version that no read at or above compact_rev() can see. Returns true when compaction
  // has caught up with compact_rev(). Safe to run beside reads and one ApplyBatch.
  absl::StatusOr<bool> CompactStep(int64_t max_revisions);

  Engine* engine() const { return engine_; }

 private:
  friend class ApplyBatch;
  friend class ReadTxn;
  explicit KvStore(Engine* engine) : engine_(engine) {}

  // Publishes a committed batch to readers.
  void Publish(int64_t rev, int64_t compact_rev, uint64_t applied_index) ABSL_LOCKS_EXCLUDED(mu_);

  // The cache of newest versions (ApplyBatch::Current): nullopt if the cache does not
  // know key; merged from each committed batch.
  std::optional<std::optional<LatestVersion>> CachedLatest(std::string_view key) const
      ABSL_LOCKS_EXCLUDED(latest_mu_);
  void MergeLatest(LatestVersions& batch) ABSL_LOCKS_EXCLUDED(latest_mu_);

  Engine* const engine_;
  mutable absl::Mutex mu_;
  int64_t current_rev_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t compact_rev_ ABSL_GUARDED_BY(mu_) = -1;  // -1: never compacted
  int64_t compacted_rev_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t applied_index_ ABSL_GUARDED_BY(mu_) = 0;
  // Serialises CompactStep callers.
  absl::Mutex compact_mu_;
  // The newest version of recently written or read keys, so that a Put costs no Seek (the
  // only writer of versions is the applier; compaction never removes a key's newest
  // version unless it is a tombstone, which the cache holds as "no key"). Emptied when it
  // holds kMaxLatest keys, and by Reload.
  static constexpr size_t kMaxLatest = 1 << 16;
  mutable absl::Mutex latest_mu_;
  LatestVersions latest_ ABSL_GUARDED_BY(latest_mu_);
};

}  // namespace kvd::storage::mvcc

#endif  // KVD_STORAGE_MVCC_KV_STORE_H_
