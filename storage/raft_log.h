// The member's durable raft state: raft::Storage on the engine's raft_log and raft_state
// column families.
//
// On disk:
//   raft_log    BE64(index) → raftpb::Entry, for every index in [first_index, last_index]
//   raft_state  "hard_state"  → raftpb::HardState
//               "log_start"   → raftpb::SnapshotMetadata: the entry just before first_index
//                               (its index, term and the membership as of it). The log
//                               starts after it: after bootstrap, compaction or a snapshot.
//               "member_id"   → BE64: who this member is (never replicated)
//
// The membership raft starts from (InitialState().conf_state) is the one recorded with the
// applied state (meta "conf_state", written by the apply thread in the same batch as the
// applied index), so raft and the state machine always agree on where they resume.
//
// Crash behaviour: Persist() is one RocksDB write, synced when the Ready says so; RocksDB's
// WAL makes it atomic, so after a crash the log is exactly as of some completed Persist().
// A change of the commit index alone is kept in memory and written with the next write
// (raft recovers the commit index from the quorum; Node raises it to the applied index).
// Open() checks the log: contiguous indices, non-decreasing terms, every record parses, and
// the hard state's commit index within the log. A log that fails refuses to start with a
// message naming the first bad index.
//
// Threads: Persist, Compact and the raft::Storage reads run on the raft thread; Snapshot()
// and the accessors may be called from others (a mutex guards the in-memory bounds).
#ifndef KVD_STORAGE_RAFT_LOG_H_
#define KVD_STORAGE_RAFT_LOG_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/raftpb/raft.pb.h"
#include "raft/ready.h"
#include "raft/storage.h"
#include "storage/engine.h"

namespace kvd::storage {

class RaftLog final : public raft::Storage {
 public:
  // Loads and checks the log. A member that has never been bootstrapped has an empty log
  // (first_index 1, last_index 0) and an empty hard state.
  static absl::StatusOr<std::unique_ptr<RaftLog>> Open(Engine* engine);

  // raft::Storage.
  absl::StatusOr<raft::PersistedState> InitialState() const override;
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  absl::StatusOr<uint64_t> FirstIndex() const override;
  absl::StatusOr<uint64_t> LastIndex() const override;
  // A snapshot of the state as of the applied index (metadata only: the state itself
  // travels as files made when it is sent, see server/transport/transport.h), with the
  // membership as of that index; the log start before anything was applied past it.
  absl::StatusOr<raftpb::Snapshot> Snapshot() const override;

  // Step 1 of raft/ready.h: hard state, entries (truncating what they overwrite) and
  // snapshot metadata in one write, synced if rd.must_sync or a snapshot is installed.
  // With a snapshot, snapshot_dir names its received state files: recorded in the same
  // write as the pending install (storage/snapshot.h), so a crash before the state is
  // installed finishes the install at start-up instead of leaving the state behind the log.
  absl::Status Persist(const raft::Ready& rd, const std::string& snapshot_dir = "");

  // Starts the log of a new cluster at index/term with the given membership (every
  // initial member does the same, so their logs agree). REQUIRES: the log is empty.
  absl::Status Bootstrap(uint64_t index, uint64_t term, const raftpb::ConfState& conf_state);

  // Drops the entries up to and including index, remembering its term and conf_state as
  // the log start. REQUIRES: index <= the applied index. No-op if already compacted.
  absl::Status Compact(uint64_t index, const raftpb::ConfState& conf_state);

  // Testing only (kvd --kvd-plant-bug=no-fsync): Persist never syncs, so entries and
  // votes acknowledged to peers can be lost by a power loss.
  void set_plant_no_fsync(bool on) { plant_no_fsync_ = on; }

  // This member's id (0 until set). Kept here because it is local, never replicated.
  absl::StatusOr<uint64_t> MemberId() const;
  absl::Status SetMemberId(uint64_t id);

  raftpb::SnapshotMetadata log_start() const ABSL_LOCKS_EXCLUDED(mu_);
  bool empty() const { return last_index() < first_index(); }
  uint64_t first_index() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t last_index() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit RaftLog(Engine* engine) : engine_(engine) {}
  absl::Status Load();
  absl::StatusOr<raftpb::Entry> ReadEntry(uint64_t index) const;
  // Index of cache_.front(); entries [cache_first_, last_] are cached when cache_ is non-empty.
  void CacheAppend(const raftpb::Entry& e);
  void CacheTruncateFrom(uint64_t index);

  Engine* const engine_;
  bool plant_no_fsync_ = false;
  mutable absl::Mutex mu_;
  raftpb::SnapshotMetadata log_start_ ABSL_GUARDED_BY(mu_);
  raftpb::HardState hard_state_ ABSL_GUARDED_BY(mu_);
  uint64_t last_ ABSL_GUARDED_BY(mu_) = 0;
  // The newest entries, for replication and apply without reading RocksDB.
  std::deque<raftpb::Entry> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t cache_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kvd::storage

#endif  // KVD_STORAGE_RAFT_LOG_H_
