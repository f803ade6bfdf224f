#include "raft/memory_storage.h"

#include <utility>

#include "raft/errors.h"
#include "raft/util.h"

namespace kvd::raft {

MemoryStorage::MemoryStorage() : ents_(1) {}

absl::StatusOr<PersistedState> MemoryStorage::InitialState() const {
  return PersistedState{hard_state_, conf_state_};
}

absl::StatusOr<std::vector<raftpb::Entry>> MemoryStorage::Entries(uint64_t lo, uint64_t hi,
                                                                  uint64_t max_bytes) const {
  RAFT_CHECK(lo < hi);
  const uint64_t offset = ents_[0].index();
  if (lo <= offset) return ErrCompacted();
  if (hi > last_index() + 1) return ErrUnavailable();
  std::vector<raftpb::Entry> out;
  uint64_t bytes = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const raftpb::Entry& e = ents_[i - offset];
    bytes += e.ByteSizeLong();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<uint64_t> MemoryStorage::Term(uint64_t i) const {
  const uint64_t offset = ents_[0].index();
  if (i < offset) return ErrCompacted();
  if (i - offset >= ents_.size()) return ErrUnavailable();
  return ents_[i - offset].term();
}

absl::StatusOr<uint64_t> MemoryStorage::FirstIndex() const { return first_index(); }
absl::StatusOr<uint64_t> MemoryStorage::LastIndex() const { return last_index(); }
absl::StatusOr<raftpb::Snapshot> MemoryStorage::Snapshot() const { return snapshot_; }

absl::Status MemoryStorage::ApplySnapshot(const raftpb::Snapshot& snap) {
  if (snapshot_.metadata().index() >= snap.metadata().index()) return ErrSnapOutOfDate();
  snapshot_ = snap;
  conf_state_ = snap.metadata().conf_state();
  ents_.assign(1, raftpb::Entry());
  ents_[0].set_index(snap.metadata().index());
  ents_[0].set_term(snap.metadata().term());
  return absl::OkStatus();
}

absl::StatusOr<raftpb::Snapshot> MemoryStorage::CreateSnapshot(uint64_t i,
                                                               const raftpb::ConfState* cs,
                                                               std::string data) {
  if (i <= snapshot_.metadata().index()) return ErrSnapOutOfDate();
  const uint64_t offset = ents_[0].index();
  RAFT_CHECK_MSG(i > offset && i <= last_index(), "snapshot index out of the log");
  snapshot_.mutable_metadata()->set_index(i);
  snapshot_.mutable_metadata()->set_term(ents_[i - offset].term());
  if (cs != nullptr) *snapshot_.mutable_metadata()->mutable_conf_state() = *cs;
  conf_state_ = snapshot_.metadata().conf_state();
  snapshot_.set_data(std::move(data));
  return snapshot_;
}

absl::Status MemoryStorage::Compact(uint64_t compact_index) {
  const uint64_t offset = ents_[0].index();
  if (compact_index <= offset) return ErrCompacted();
  RAFT_CHECK_MSG(compact_index <= last_index(), "compact beyond the last index");
  const uint64_t k = compact_index - offset;
  std::vector<raftpb::Entry> kept;
  kept.reserve(ents_.size() - k);
  kept.emplace_back();
  kept[0].set_index(ents_[k].index());
  kept[0].set_term(ents_[k].term());
  for (uint64_t j = k + 1; j < ents_.size(); ++j) kept.push_back(std::move(ents_[j]));
  ents_ = std::move(kept);
  return absl::OkStatus();
}

template <typename It>
absl::Status MemoryStorage::AppendRange(It begin, It end) {
  if (begin == end) return absl::OkStatus();
  const uint64_t first = first_index();
  const uint64_t last_new = (end - 1)->index();
  if (last_new < first) return absl::OkStatus();  // Entirely compacted already.
  if (begin->index() < first) begin += static_cast<std::ptrdiff_t>(first - begin->index());
  const uint64_t offset = begin->index() - ents_[0].index();
  RAFT_CHECK_MSG(offset <= ents_.size(), "missing log entries before an append");
  ents_.resize(offset);  // Truncate the suffix being overwritten (no-op when appending).
  for (It it = begin; it != end; ++it) ents_.push_back(*it);
  return absl::OkStatus();
}

absl::Status MemoryStorage::Append(const std::vector<raftpb::Entry>& entries) {
  return AppendRange(entries.begin(), entries.end());
}

absl::Status MemoryStorage::Append(
    const google::protobuf::RepeatedPtrField<raftpb::Entry>& entries) {
  return AppendRange(entries.begin(), entries.end());
}

}  // namespace kvd::raft
