// Storage: the only way raft/ sees durable state.
//
// raft/ never writes through this interface. The application persists what a Ready asks it
// to (raft/ready.h) and then makes it visible here; raft/ reads it back when it needs
// entries that are no longer in its in-memory (unstable) tail, the term of an old entry,
// or a snapshot to send to a follower that is too far behind.
//
// The interface is split in two concerns, as etcd's own TODO suggests:
//   LogStorage   - the stable log: a contiguous run of entries [FirstIndex(), LastIndex()],
//                  preceded by the entry at FirstIndex()-1 whose term is still known (it is
//                  the last entry of the latest snapshot, or index 0 term 0 at the start).
//   StateStorage - the hard state and membership at start-up, and the latest snapshot.
// Storage is both; storage/ implements it on RocksDB and raft/memory_storage.h in memory.
//
// Errors. Methods return only OK or one of the well-known errors of raft/errors.h named on
// the method. Any other error (an I/O failure) is treated by raft/ as fatal: the node
// stops (RAFT_CHECK), exactly as it would on an fsync failure. A Storage that can fail
// transiently must retry internally or crash itself with a better message.
//
// Threading: raft/ calls these methods from the thread that drives the RawNode. If the
// application appends from another thread, the implementation must synchronise.
#ifndef KVD_RAFT_STORAGE_H_
#define KVD_RAFT_STORAGE_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/raftpb/raft.pb.h"

namespace kvd::raft {

// Pass as max_bytes for "no limit".
inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  // Entries in the half-open range [lo, hi), at most max_bytes of them (by serialized
  // size), but always at least one entry if any is in range.
  // REQUIRES: lo < hi.
  // Errors: ErrCompacted if lo < FirstIndex();
  //         ErrUnavailable if hi > LastIndex()+1.
  virtual absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                             uint64_t max_bytes) const = 0;

  // Term of the entry at index i, for i in [FirstIndex()-1, LastIndex()]. The term of
  // FirstIndex()-1 is kept after compaction for the log matching check.
  // Errors: ErrCompacted if i < FirstIndex()-1; ErrUnavailable if i > LastIndex().
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;

  // Index of the first entry that Entries() can return. Entries before it were compacted
  // into the snapshot. On an empty log this is snapshot index + 1 (1 at the very start).
  virtual absl::StatusOr<uint64_t> FirstIndex() const = 0;

  // Index of the last entry. On an empty log this is FirstIndex()-1.
  virtual absl::StatusOr<uint64_t> LastIndex() const = 0;
};

// What a node starts from: the last persisted HardState and the membership AS OF
// Config::applied. raft/ re-delivers committed entries after `applied` (including conf
// changes, which the application applies again through RawNode::ApplyConfChange), so the
// two must describe the same point: persist the ConfState returned by ApplyConfChange in
// the same write as the applied index.
struct PersistedState {
  raftpb::HardState hard_state;
  raftpb::ConfState conf_state;
};

class StateStorage {
 public:
  virtual ~StateStorage() = default;

  // Called once when a RawNode is created.
  virtual absl::StatusOr<PersistedState> InitialState() const = 0;

  // The most recent snapshot. raft/ calls this to send a snapshot to a follower whose next
  // entry was compacted. Its metadata index must be >= FirstIndex()-1.
  // A follower ignores a snapshot whose ConfState does not name it, so a member that
  // joined after the last snapshot needs a newer one: produce snapshots after membership
  // changes (or on demand here).
  // Errors: ErrSnapshotTemporarilyUnavailable if a snapshot is being produced; raft/ pauses
  // that follower and retries on a later heartbeat response.
  virtual absl::StatusOr<raftpb::Snapshot> Snapshot() const = 0;
};

class Storage : public LogStorage, public StateStorage {};

}  // namespace kvd::raft

#endif  // KVD_RAFT_STORAGE_H_
