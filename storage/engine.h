// The node's one RocksDB instance and its column families.
//
// Layout (one column family per concern, so each can be tuned, scanned and compacted on
// its own):
//
//   raft_log   raft entries, key = BE64(index)                       (storage/raft_log.h)
//   raft_state hard state, conf state, snapshot metadata             (storage/raft_log.h)
//   kv         MVCC versions, key = escape(user_key) ‖ ~main ‖ ~sub (storage/mvcc/key_codec.h)
//   rev_index  BE64(main) ‖ BE64(sub) → flags ‖ user key: history in revision order
//   lease      'k' ‖ BE64(lease) ‖ key → "": keys attached to each lease (kept by the MVCC
//              store); 'l' ‖ BE64(lease) → lease record (kept by the lessor)
//   auth       users, roles, auth enabled flag and revision
//   meta       format marker, applied index, current and compact revisions, member ids
//
// Crash behaviour: RocksDB's write-ahead log makes each Write() atomic. Write(sync=true)
// returns only after the batch is on stable storage (fsync of the WAL); Write(sync=false)
// may be lost by a machine crash, but never partially (an incomplete record at the WAL's
// end, a write cut short, is discarded on recovery: kTolerateCorruptedTailRecords). A
// complete WAL record that fails its checksum refuses to open (Open says "Corruption"):
// it may hold a synced vote or entry, which a raft member must not forget. Every block
// carries a checksum that reads verify.
//
// The applied state (everything but raft_log and raft_state) is written without the WAL
// (WriteUnlogged): it is derived from the raft log, which is synced, so writing it to the
// WAL too would only double the bytes written per entry. Memtables are flushed atomically
// across all column families (atomic_flush), so after a crash the state is exactly as of
// the last flush (applied index included) and the log replays what came after; the log
// is compacted only up to an applied index known flushed (StartFlush/FlushDone).
#ifndef KVD_STORAGE_ENGINE_H_
#define KVD_STORAGE_ENGINE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace kvd::storage {

enum class Cf : int {
  kRaftLog = 0,
  kRaftState,
  kKv,
  kRevIndex,
  kLease,
  kAuth,
  kMeta,
};
inline constexpr int kCfCount = 7;

struct EngineOptions {
  // Directory of the RocksDB instance; created when missing (with its parents).
  std::string path;
  // Shared block cache for all column families.
  size_t block_cache_bytes = 64 << 20;
  // Free space kept on the data dir's file system. RocksDB cannot be trusted to fail
  // cleanly once the disk is full (a failed WAL append can trip its own assertions), so a
  // write that would start with less free space than this stops the process first, saying
  // why; memtable flushes and compactions need room of this order too.
  int64_t reserve_bytes = 64 << 20;
};

// Converts a RocksDB status into the closest absl status, keeping its text.
absl::Status FromRocks(const rocksdb::Status& s);

class Engine {
 public:
  // Opens or creates the store at options.path.
  //
  // Refuses, with a message that says why, a directory that holds something other than a
  // kvd store (an etcd data dir, another program's files), a store written by an
  // incompatible format version, and a store whose files fail their checksums.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Cf which) const { return handles_[static_cast<int>(which)]; }

  // Atomically applies batch; with sync, returns after it is durable. A write that fails
  // for lack of space or an I/O error stops the process (fail-stop, with the cause on
  // stderr): see engine.cc.
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);
  // Atomically applies batch to the memtables only: visible at once, durable after the
  // next flush (see the top of this file). Same failure behaviour as Write.
  absl::Status WriteUnlogged(rocksdb::WriteBatch* batch);

  // Starts an atomic flush of every column family's memtable and returns without waiting:
  // everything written before the call is on disk once FlushDone() says so.
  absl::Status StartFlush();
  // Whether no memtable awaits its flush (every StartFlush before this call has finished).
  bool FlushDone() const;

  // Reads one key; NotFound when absent.
  absl::StatusOr<std::string> Get(Cf which, const rocksdb::Slice& key) const;

  // Live bytes on disk (SST + WAL), for Status.db_size.
  int64_t SizeBytes() const;
  // Estimated bytes of live data, for Status.db_size_in_use.
  int64_t LiveDataBytes() const;

  // Compacts every column family fully (Maintenance.Defragment).
  absl::Status CompactAll();

  const std::string& path() const { return path_; }

 private:
  Engine() = default;

  absl::Status WriteWith(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch);

  std::string path_;
  int64_t reserve_bytes_ = 0;
  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, kCfCount> handles_{};
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
};

// Big-endian fixed-width integers: byte order equals numeric order.
void PutBigEndian64(std::string* dst, uint64_t v);
uint64_t GetBigEndian64(const char* p);

}  // namespace kvd::storage

#endif  // KVD_STORAGE_ENGINE_H_
