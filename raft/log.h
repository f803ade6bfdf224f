// RaftLog: the node's view of the replicated log. It stitches together the stable part
// held by Storage and the unstable tail that raft/ has appended but the application has
// not yet persisted (handed out through Ready::entries, dropped on Advance).
//
//   Storage:   [ snapshot | first .. stable_last ]
//   unstable:                 [ offset .. last ]          (may overlap: a new leader's
//                                                           entries replace a stale tail)
//
// Invariants (checked): applied <= committed <= LastIndex(); a committed entry is never
// truncated.
#ifndef KVD_RAFT_LOG_H_
#define KVD_RAFT_LOG_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "api/raftpb/raft.pb.h"
#include "raft/storage.h"

namespace kvd::raft {

// Entries not yet persisted, and possibly a snapshot not yet installed.
class Unstable {
 public:
  // Index of the first entry of a snapshot being installed + 1, if any.
  std::optional<uint64_t> MaybeFirstIndex() const;
  std::optional<uint64_t> MaybeLastIndex() const;
  std::optional<uint64_t> MaybeTerm(uint64_t i) const;

  // The application persisted entries up to (i, t): drop them. Ignored if the entry at i
  // was since replaced by one of another term.
  void StableTo(uint64_t i, uint64_t t);
  void StableSnapTo(uint64_t i);
  void Restore(const raftpb::Snapshot& snap);
  void TruncateAndAppend(std::vector<raftpb::Entry> ents);
  // Entries [lo, hi). REQUIRES: offset <= lo <= hi <= offset + size.
  std::vector<raftpb::Entry> Slice(uint64_t lo, uint64_t hi) const;

  const std::vector<raftpb::Entry>& entries() const { return entries_; }
  const std::optional<raftpb::Snapshot>& snapshot() const { return snapshot_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t o) { offset_ = o; }

 private:
  std::optional<raftpb::Snapshot> snapshot_;
  // entries_[k] has index offset_ + k.
  std::vector<raftpb::Entry> entries_;
  uint64_t offset_ = 0;
};

class RaftLog {
 public:
  // REQUIRES: storage outlives the log.
  explicit RaftLog(const Storage* storage, uint64_t max_next_ents_size_bytes);

  // Follower append (the AppendEntries consistency check): if the entry at `index` has
  // `log_term`, appends `ents` (truncating conflicting entries) and advances the commit
  // index to min(committed, last new index). Returns the last new index, or nullopt if
  // the check failed.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                      std::vector<raftpb::Entry> ents);
  // Appends after truncating any conflicting suffix. Returns the new last index.
  // REQUIRES: ents[0].index() - 1 >= committed.
  uint64_t Append(std::vector<raftpb::Entry> ents);

  // First index among ents whose term conflicts with the log (or that is new), 0 if none.
  uint64_t FindConflict(const std::vector<raftpb::Entry>& ents) const;
  // Fast backtracking: the largest index <= index whose term is <= term, and that term.
  // If the log has nothing at or below `index` that is known, returns (index, 0).
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index, uint64_t term) const;

  std::vector<raftpb::Entry> UnstableEntries() const { return unstable_.entries(); }
  bool HasUnstable() const { return !unstable_.entries().empty(); }
  // Committed entries not yet handed to the application, up to max_next_ents_size_bytes.
  std::vector<raftpb::Entry> NextCommittedEntries() const;
  bool HasNextCommittedEntries() const;
  const std::optional<raftpb::Snapshot>& UnstableSnapshot() const { return unstable_.snapshot(); }
  // The snapshot to send to a follower: the pending unstable one, else Storage's.
  absl::StatusOr<raftpb::Snapshot> Snapshot() const;

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  // Errors: ErrCompacted / ErrUnavailable outside [FirstIndex()-1, LastIndex()].
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  // Term(i), or 0 when i is outside the known range.
  uint64_t ZeroTermOnOutOfRange(uint64_t i) const;
  bool MatchTerm(uint64_t i, uint64_t t) const;
  // Raft's election restriction (§5.4.1): is (last_index, term) at least as up to date?
  bool IsUpToDate(uint64_t last_index, uint64_t term) const;

  // Entries [i, LastIndex()] up to max_bytes. Errors: ErrCompacted.
  absl::StatusOr<std::vector<raftpb::Entry>> EntriesFrom(uint64_t i, uint64_t max_bytes) const;
  // Appends entries [i, LastIndex()] (up to max_bytes, at least one) to *out, copying
  // unstable entries straight into the message. Errors: ErrCompacted.
  absl::Status AppendEntriesTo(uint64_t i, uint64_t max_bytes,
                               google::protobuf::RepeatedPtrField<raftpb::Entry>* out) const;
  // Entries [lo, hi) up to max_bytes. Errors: ErrCompacted.
  absl::StatusOr<std::vector<raftpb::Entry>> Slice(uint64_t lo, uint64_t hi,
                                                   uint64_t max_bytes) const;

  void CommitTo(uint64_t tocommit);
  // Leader commit (§5.4.2): only an entry of the current term is committed by counting.
  bool MaybeCommit(uint64_t max_index, uint64_t term);
  void AppliedTo(uint64_t i);
  void StableTo(uint64_t i, uint64_t t) { unstable_.StableTo(i, t); }
  void StableSnapTo(uint64_t i) { unstable_.StableSnapTo(i); }
  void Restore(const raftpb::Snapshot& snap);

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }

 private:
  const Storage* storage_;
  Unstable unstable_;
  // Highest index known to be stored on a quorum. Invariant: applied_ <= committed_.
  uint64_t committed_ = 0;
  // Highest index the application has applied (acknowledged through Advance).
  uint64_t applied_ = 0;
  uint64_t max_next_ents_size_bytes_;
};

}  // namespace kvd::raft

#endif  // KVD_RAFT_LOG_H_
