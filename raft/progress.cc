#include "raft/progress.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "raft/util.h"

namespace kvd::raft {

void Inflights::Add(uint64_t index) {
  RAFT_CHECK_MSG(!Full(), "cannot add into a full inflights");
  size_t next = start_ + count_;
  if (next >= buffer_.size()) next -= buffer_.size();
  buffer_[next] = index;
  ++count_;
}

void Inflights::FreeLE(uint64_t index) {
  while (count_ > 0 && buffer_[start_] <= index) {
    ++start_;
    if (start_ == buffer_.size()) start_ = 0;
    --count_;
  }
  if (count_ == 0) start_ = 0;
}

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "?";
}

void Progress::Reset(uint64_t next_index) {
  ResetState(ProgressState::kProbe);
  match = 0;
  next = next_index;
  recent_active = false;
}

void Progress::ResetState(ProgressState s) {
  msg_app_flow_paused = false;
  pending_snapshot = 0;
  state = s;
  inflights.Reset();
}

void Progress::BecomeProbe() {
  // Coming back from a snapshot, the follower has at least the snapshot: probe after it.
  if (state == ProgressState::kSnapshot) {
    const uint64_t pending = pending_snapshot;
    ResetState(ProgressState::kProbe);
    next = std::max(match + 1, pending + 1);
  } else {
    ResetState(ProgressState::kProbe);
    next = match + 1;
  }
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  ResetState(ProgressState::kSnapshot);
  pending_snapshot = snapshot_index;
}

bool Progress::MaybeUpdate(uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    msg_app_flow_paused = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection at or below match is stale: the follower already has that entry.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe, only the answer to the last probe (at next-1) counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  msg_app_flow_paused = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return msg_app_flow_paused;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::DebugString() const {
  return absl::StrFormat("%s match=%d next=%d%s%s inflight=%d", ProgressStateName(state), match,
                         next, is_learner ? " learner" : "",
                         state == ProgressState::kSnapshot
                             ? absl::StrFormat(" pending_snap=%d", pending_snapshot)
                             : "",
                         inflights.Count());
}

Progress* ProgressTracker::Get(uint64_t id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

void ProgressTracker::AddVoter(uint64_t id, uint64_t next) {
  learners_.erase(id);
  voters_.insert(id);
  auto it = progress_.find(id);
  if (it != progress_.end()) {
    it->second.is_learner = false;
    return;
  }
  Progress pr(next, max_inflight_, false);
  // A new member counts as active so that check-quorum does not step the leader down
  // before it had a chance to hear from it.
  pr.recent_active = true;
  progress_.emplace(id, std::move(pr));
}

void ProgressTracker::AddLearner(uint64_t id, uint64_t next) {
  voters_.erase(id);
  learners_.insert(id);
  auto it = progress_.find(id);
  if (it != progress_.end()) {
    it->second.is_learner = true;
    return;
  }
  Progress pr(next, max_inflight_, true);
  pr.recent_active = true;
  progress_.emplace(id, std::move(pr));
}

void ProgressTracker::Remove(uint64_t id) {
  voters_.erase(id);
  learners_.erase(id);
  progress_.erase(id);
  votes_.erase(id);
}

raftpb::ConfState ProgressTracker::ConfState() const {
  raftpb::ConfState cs;
  for (uint64_t id : voters_) cs.add_voters(id);
  for (uint64_t id : learners_) cs.add_learners(id);
  return cs;
}

uint64_t ProgressTracker::Committed() const {
  if (voters_.empty()) return 0;
  // Sort matches descending; the quorum-th highest is on a majority.
  uint64_t stack[8];
  std::vector<uint64_t> heap;
  uint64_t* m = stack;
  if (voters_.size() > 8) {
    heap.resize(voters_.size());
    m = heap.data();
  }
  size_t n = 0;
  for (uint64_t id : voters_) m[n++] = progress_.at(id).match;
  std::sort(m, m + n, [](uint64_t a, uint64_t b) { return a > b; });
  return m[Quorum() - 1];
}

bool ProgressTracker::QuorumActive() const {
  size_t active = 0;
  for (uint64_t id : voters_) {
    if (progress_.at(id).recent_active) ++active;
  }
  return active >= Quorum();
}

bool ProgressTracker::HasQuorum(const std::set<uint64_t>& ids) const {
  size_t n = 0;
  for (uint64_t id : voters_) n += ids.count(id);
  return n >= Quorum();
}

void ProgressTracker::RecordVote(uint64_t id, bool granted) {
  votes_.emplace(id, granted);  // The first answer counts; duplicates are ignored.
}

VoteResult ProgressTracker::TallyVotes(size_t* granted, size_t* rejected) const {
  size_t g = 0, r = 0;
  for (uint64_t id : voters_) {
    auto it = votes_.find(id);
    if (it == votes_.end()) continue;
    if (it->second)
      ++g;
    else
      ++r;
  }
  if (granted) *granted = g;
  if (rejected) *rejected = r;
  if (g >= Quorum()) return VoteResult::kWon;
  if (voters_.size() - r < Quorum()) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace kvd::raft
