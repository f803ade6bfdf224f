#include "raft/log.h"

#include <algorithm>
#include <string>
#include <utility>

#include "raft/errors.h"
#include "raft/util.h"

namespace kvd::raft {
namespace {

template <typename T>
T MustOk(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::string msg = std::string(what) + ": " + v.status().ToString();
    CheckFailed(__FILE__, __LINE__, "storage error", msg.c_str());
  }
  return *std::move(v);
}

}  // namespace

// ---------------------------------------------------------------------------- Unstable

std::optional<uint64_t> Unstable::MaybeFirstIndex() const {
  if (snapshot_) return snapshot_->metadata().index() + 1;
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_) return snapshot_->metadata().index();
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeTerm(uint64_t i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->metadata().index() == i) return snapshot_->metadata().term();
    return std::nullopt;
  }
  std::optional<uint64_t> last = MaybeLastIndex();
  if (!last || i > *last) return std::nullopt;
  if (entries_.empty()) return snapshot_->metadata().term();  // i == snapshot index.
  return entries_[i - offset_].term();
}

void Unstable::StableTo(uint64_t i, uint64_t t) {
  std::optional<uint64_t> gt = MaybeTerm(i);
  if (!gt || *gt != t || i < offset_) return;
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset_));
  offset_ = i + 1;
}

void Unstable::StableSnapTo(uint64_t i) {
  if (snapshot_ && snapshot_->metadata().index() == i) snapshot_.reset();
}

void Unstable::Restore(const raftpb::Snapshot& snap) {
  offset_ = snap.metadata().index() + 1;
  entries_.clear();
  snapshot_ = snap;
}

void Unstable::TruncateAndAppend(std::vector<raftpb::Entry> ents) {
  const uint64_t after = ents[0].index();
  if (after == offset_ + entries_.size()) {
    // Plain append.
    for (auto& e : ents) entries_.push_back(std::move(e));
  } else if (after <= offset_) {
    // Replace the whole unstable tail; the stable part after `after` is superseded too.
    offset_ = after;
    entries_ = std::move(ents);
  } else {
    entries_.resize(after - offset_);
    for (auto& e : ents) entries_.push_back(std::move(e));
  }
}

std::vector<raftpb::Entry> Unstable::Slice(uint64_t lo, uint64_t hi) const {
  RAFT_CHECK(offset_ <= lo && lo <= hi && hi <= offset_ + entries_.size());
  return std::vector<raftpb::Entry>(entries_.begin() + static_cast<std::ptrdiff_t>(lo - offset_),
                                    entries_.begin() + static_cast<std::ptrdiff_t>(hi - offset_));
}

// ----------------------------------------------------------------------------- RaftLog

RaftLog::RaftLog(const Storage* storage, uint64_t max_next_ents_size_bytes)
    : storage_(storage), max_next_ents_size_bytes_(max_next_ents_size_bytes) {
  RAFT_CHECK(storage != nullptr);
  const uint64_t first = MustOk(storage->FirstIndex(), "FirstIndex");
  const uint64_t last = MustOk(storage->LastIndex(), "LastIndex");
  unstable_.set_offset(last + 1);
  // Everything up to the snapshot is committed and applied by definition.
  committed_ = first - 1;
  applied_ = first - 1;
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                             std::vector<raftpb::Entry> ents) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + ents.size();
  const uint64_t ci = FindConflict(ents);
  if (ci != 0) {
    RAFT_CHECK_MSG(ci > committed_, "entry conflicts with a committed entry");
    const uint64_t skip = ci - (index + 1);
    ents.erase(ents.begin(), ents.begin() + static_cast<std::ptrdiff_t>(skip));
    Append(std::move(ents));
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::Append(std::vector<raftpb::Entry> ents) {
  if (ents.empty()) return LastIndex();
  const uint64_t after = ents[0].index() - 1;
  RAFT_CHECK_MSG(after >= committed_, "append would truncate committed entries");
  unstable_.TruncateAndAppend(std::move(ents));
  return LastIndex();
}

uint64_t RaftLog::FindConflict(const std::vector<raftpb::Entry>& ents) const {
  for (const auto& e : ents) {
    if (!MatchTerm(e.index(), e.term())) return e.index();
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  for (;;) {
    absl::StatusOr<uint64_t> t = Term(index);
    if (!t.ok()) return {index, 0};
    if (*t <= term) return {index, *t};
    if (index == 0) return {0, 0};
    --index;
  }
}

std::vector<raftpb::Entry> RaftLog::NextCommittedEntries() const {
  const uint64_t off = std::max(applied_ + 1, FirstIndex());
  if (committed_ + 1 <= off) return {};
  return MustOk(Slice(off, committed_ + 1, max_next_ents_size_bytes_), "next committed");
}

bool RaftLog::HasNextCommittedEntries() const {
  return committed_ + 1 > std::max(applied_ + 1, FirstIndex());
}

absl::StatusOr<raftpb::Snapshot> RaftLog::Snapshot() const {
  if (unstable_.snapshot()) return *unstable_.snapshot();
  return storage_->Snapshot();
}

uint64_t RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  return MustOk(storage_->FirstIndex(), "FirstIndex");
}

uint64_t RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  return MustOk(storage_->LastIndex(), "LastIndex");
}

uint64_t RaftLog::LastTerm() const { return MustOk(Term(LastIndex()), "LastTerm"); }

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  // The valid range is [dummy, last]: the entry before the first one keeps its term.
  const uint64_t dummy = FirstIndex() - 1;
  if (i < dummy) return ErrCompacted();
  if (i > LastIndex()) return ErrUnavailable();
  if (auto t = unstable_.MaybeTerm(i)) return *t;
  absl::StatusOr<uint64_t> t = storage_->Term(i);
  if (t.ok() || IsErrCompacted(t.status()) || IsErrUnavailable(t.status())) return t;
  return MustOk(std::move(t), "Term");
}

uint64_t RaftLog::ZeroTermOnOutOfRange(uint64_t i) const {
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() ? *t : 0;
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t t) const {
  absl::StatusOr<uint64_t> got = Term(i);
  return got.ok() && *got == t;
}

bool RaftLog::IsUpToDate(uint64_t last_index, uint64_t term) const {
  const uint64_t my_term = LastTerm();
  return term > my_term || (term == my_term && last_index >= LastIndex());
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLog::EntriesFrom(uint64_t i,
                                                                uint64_t max_bytes) const {
  if (i > LastIndex()) return std::vector<raftpb::Entry>();
  return Slice(i, LastIndex() + 1, max_bytes);
}

absl::Status RaftLog::AppendEntriesTo(
    uint64_t i, uint64_t max_bytes, google::protobuf::RepeatedPtrField<raftpb::Entry>* out) const {
  const uint64_t last = LastIndex();
  if (i > last) return absl::OkStatus();
  if (i < FirstIndex()) return ErrCompacted();
  const uint64_t uoff = unstable_.offset();
  if (i < uoff) {
    // Stable part (and anything after it) through the general path.
    absl::StatusOr<std::vector<raftpb::Entry>> ents = Slice(i, last + 1, max_bytes);
    if (!ents.ok()) return ents.status();
    out->Reserve(static_cast<int>(ents->size()));
    for (raftpb::Entry& e : *ents) out->Add(std::move(e));
    return absl::OkStatus();
  }
  const std::vector<raftpb::Entry>& u = unstable_.entries();
  uint64_t bytes = 0;
  for (uint64_t k = i; k <= last; ++k) {
    const raftpb::Entry& e = u[k - uoff];
    bytes += e.ByteSizeLong();
    if (k > i && bytes > max_bytes) break;
    *out->Add() = e;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi,
                                                          uint64_t max_bytes) const {
  RAFT_CHECK_MSG(lo <= hi, "invalid slice");
  if (lo < FirstIndex()) return ErrCompacted();
  RAFT_CHECK_MSG(hi <= LastIndex() + 1, "slice out of bound");
  if (lo == hi) return std::vector<raftpb::Entry>();
  std::vector<raftpb::Entry> out;
  const uint64_t uoff = unstable_.offset();
  if (lo < uoff) {
    absl::StatusOr<std::vector<raftpb::Entry>> stored =
        storage_->Entries(lo, std::min(hi, uoff), max_bytes);
    if (!stored.ok()) {
      if (IsErrCompacted(stored.status())) return stored.status();
      MustOk(std::move(stored), "Entries");
    }
    out = *std::move(stored);
    // Storage stopped early because of max_bytes: do not add unstable entries after a gap.
    if (out.size() < std::min(hi, uoff) - lo) return out;
  }
  if (hi > uoff) {
    std::vector<raftpb::Entry> u = unstable_.Slice(std::max(lo, uoff), hi);
    if (out.empty()) {
      out = std::move(u);
    } else {
      for (auto& e : u) out.push_back(std::move(e));
    }
  }
  // Limit by size, always returning at least one entry.
  uint64_t bytes = 0;
  size_t n = 0;
  for (; n < out.size(); ++n) {
    bytes += out[n].ByteSizeLong();
    if (n > 0 && bytes > max_bytes) break;
  }
  out.resize(n);
  return out;
}

void RaftLog::CommitTo(uint64_t tocommit) {
  if (tocommit <= committed_) return;  // Never decrease the commit index.
  RAFT_CHECK_MSG(tocommit <= LastIndex(), "commit index beyond the last index");
  committed_ = tocommit;
}

bool RaftLog::MaybeCommit(uint64_t max_index, uint64_t term) {
  if (max_index > committed_ && ZeroTermOnOutOfRange(max_index) == term) {
    CommitTo(max_index);
    return true;
  }
  return false;
}

void RaftLog::AppliedTo(uint64_t i) {
  if (i == 0) return;
  RAFT_CHECK_MSG(committed_ >= i && i >= applied_, "applied out of range");
  applied_ = i;
}

void RaftLog::Restore(const raftpb::Snapshot& snap) {
  committed_ = snap.metadata().index();
  unstable_.Restore(snap);
}

}  // namespace kvd::raft
