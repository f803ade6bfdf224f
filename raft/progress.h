// Per-follower replication state kept by the leader (etcd's tracker package), and the
// membership with its quorum rules.
//
// A follower's Progress is in one of three states:
//   kProbe     - the leader does not know where the follower's log ends. It sends one
//                append at a time and waits for the answer (msg_app_flow_paused).
//   kReplicate - the follower accepted appends; the leader streams entries optimistically
//                (next advances on send), bounded by the inflight window.
//   kSnapshot  - the follower needs a snapshot; nothing is sent until it is reported done.
#ifndef KVD_RAFT_PROGRESS_H_
#define KVD_RAFT_PROGRESS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/raftpb/raft.pb.h"

namespace kvd::raft {

// A ring buffer of the last index of each append message in flight to one follower. The
// leader stops sending when it is full and frees slots as the follower acknowledges.
class Inflights {
 public:
  explicit Inflights(size_t capacity) : buffer_(capacity) {}
  // REQUIRES: !Full() and index greater than every index already added.
  void Add(uint64_t index);
  // Frees every inflight message whose last index is <= index.
  void FreeLE(uint64_t index);
  bool Full() const { return count_ == buffer_.size(); }
  size_t Count() const { return count_; }
  void Reset() { start_ = count_ = 0; }

 private:
  std::vector<uint64_t> buffer_;
  size_t start_ = 0;
  size_t count_ = 0;
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* ProgressStateName(ProgressState s);

struct Progress {
  Progress(uint64_t next_index, size_t max_inflight, bool learner)
      : next(next_index), inflights(max_inflight), is_learner(learner) {}

  // Forget everything learned about the follower (new term): probe from next_index.
  void Reset(uint64_t next_index);
  void ResetState(ProgressState s);
  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);
  // The follower acknowledged up to n. Returns true if that was news.
  bool MaybeUpdate(uint64_t n);
  // The follower rejected an append at `rejected`; match_hint is where to probe next.
  // Returns false if the rejection is stale.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);
  bool IsPaused() const;
  std::string DebugString() const;

  // Invariant: match < next. Entries up to match are known to be on the follower.
  uint64_t match = 0;
  uint64_t next;
  ProgressState state = ProgressState::kProbe;
  // In kSnapshot: index of the snapshot being sent.
  uint64_t pending_snapshot = 0;
  // Heard from since the last check-quorum round (the leader's own entry is always true).
  bool recent_active = false;
  // In kProbe: an append was sent and no answer came yet, so do not send another.
  bool msg_app_flow_paused = false;
  Inflights inflights;
  bool is_learner;
};

enum class VoteResult { kPending, kLost, kWon };

// The membership and every member's Progress. kvd changes membership one member at a time
// (see raft/rawnode.h), so a configuration is a single voter set with simple majorities.
class ProgressTracker {
 public:
  explicit ProgressTracker(size_t max_inflight) : max_inflight_(max_inflight) {}

  // Members. Iteration order is by id, so every node behaves the same given the same input.
  std::map<uint64_t, Progress>& progress() { return progress_; }
  const std::map<uint64_t, Progress>& progress() const { return progress_; }
  Progress* Get(uint64_t id);
  const std::set<uint64_t>& voters() const { return voters_; }
  const std::set<uint64_t>& learners() const { return learners_; }
  bool IsVoter(uint64_t id) const { return voters_.count(id) > 0; }
  size_t Quorum() const { return voters_.size() / 2 + 1; }
  size_t max_inflight() const { return max_inflight_; }

  void AddVoter(uint64_t id, uint64_t next);
  void AddLearner(uint64_t id, uint64_t next);
  void Remove(uint64_t id);
  raftpb::ConfState ConfState() const;

  // The highest index stored on a quorum of voters.
  uint64_t Committed() const;
  // Whether a quorum of voters was recently active.
  bool QuorumActive() const;
  // Whether `ids` holds a quorum of voters.
  bool HasQuorum(const std::set<uint64_t>& ids) const;

  void ResetVotes() { votes_.clear(); }
  void RecordVote(uint64_t id, bool granted);
  VoteResult TallyVotes(size_t* granted, size_t* rejected) const;

 private:
  size_t max_inflight_;
  std::set<uint64_t> voters_;
  std::set<uint64_t> learners_;
  // Invariant: keys == voters_ ∪ learners_, and voters_ ∩ learners_ = ∅.
  std::map<uint64_t, Progress> progress_;
  std::map<uint64_t, bool> votes_;
};

}  // namespace kvd::raft

#endif  // KVD_RAFT_PROGRESS_H_
