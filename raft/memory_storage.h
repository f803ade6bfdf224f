// MemoryStorage: Storage held in memory, for tests, the simulator and benchmarks.
//
// It models exactly what a node has made durable: the application calls Append,
// SetHardState and ApplySnapshot while handling a Ready (step 1 of raft/ready.h), and
// CreateSnapshot/Compact when it decides to trim the log. Not thread-safe: in kvd the
// single thread that drives the RawNode also owns its storage.
#ifndef KVD_RAFT_MEMORY_STORAGE_H_
#define KVD_RAFT_MEMORY_STORAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "raft/storage.h"

namespace kvd::raft {

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  absl::StatusOr<PersistedState> InitialState() const override;
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  absl::StatusOr<uint64_t> FirstIndex() const override;
  absl::StatusOr<uint64_t> LastIndex() const override;
  absl::StatusOr<raftpb::Snapshot> Snapshot() const override;

  void SetHardState(const raftpb::HardState& hs) { hard_state_ = hs; }
  const raftpb::HardState& hard_state() const { return hard_state_; }

  // Replaces the membership returned by InitialState without touching the log; used to
  // bootstrap a brand-new cluster and by the application after applying a conf change.
  void SetConfState(const raftpb::ConfState& cs) { conf_state_ = cs; }

  // Replaces the whole log by the snapshot. Errors: ErrSnapOutOfDate if the snapshot is
  // not newer than the current one.
  absl::Status ApplySnapshot(const raftpb::Snapshot& snap);

  // Records a snapshot of the application state at index i (which must be an entry this
  // storage holds and <= the applied index). cs, if given, becomes the snapshot's
  // membership (and what InitialState reports from now on, so that a restart with
  // Config::applied = i replays later conf changes on top of it). Does not trim the log.
  // Errors: ErrSnapOutOfDate if i is not newer than the current snapshot.
  absl::StatusOr<raftpb::Snapshot> CreateSnapshot(uint64_t i, const raftpb::ConfState* cs,
                                                  std::string data);

  // Discards entries before compact_index; the entry at compact_index becomes the new
  // "dummy" whose term is still known. REQUIRES: compact_index <= LastIndex().
  // Errors: ErrCompacted if compact_index <= FirstIndex()-1 already.
  absl::Status Compact(uint64_t compact_index);

  // Appends entries, truncating any existing suffix they overwrite. Entries at or below
  // the compaction point are ignored. REQUIRES: entries are contiguous and the first one
  // is at most LastIndex()+1.
  absl::Status Append(const std::vector<raftpb::Entry>& entries);
  absl::Status Append(const google::protobuf::RepeatedPtrField<raftpb::Entry>& entries);

 private:
  uint64_t first_index() const { return ents_[0].index() + 1; }
  uint64_t last_index() const { return ents_[0].index() + ents_.size() - 1; }
  template <typename It>
  absl::Status AppendRange(It begin, It end);

  raftpb::HardState hard_state_;
  raftpb::ConfState conf_state_;
  raftpb::Snapshot snapshot_;
  // ents_[0] is a dummy holding the index and term of the last compacted entry (0, 0 at
  // the start); ents_[k] is the entry at index ents_[0].index() + k. Never empty.
  std::vector<raftpb::Entry> ents_;
};

}  // namespace kvd::raft

#endif  // KVD_RAFT_MEMORY_STORAGE_H_
