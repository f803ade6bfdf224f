// RawNode: the public face of raft/. Single-threaded, deterministic, no I/O.
//
// The driver (server/'s raft thread, or the simulator) owns a RawNode and:
//   - calls Tick() at a fixed interval (the unit of election_tick and heartbeat_tick);
//   - feeds every message from a peer to Step();
//   - turns client requests into Propose(), ProposeConfChange(), ReadIndex(),
//     TransferLeader();
//   - whenever HasReady(), takes GetReady(), handles it as raft/ready.h says, and calls
//     Advance().
//
// Lifecycle.
//   - New cluster: every initial member starts with a Storage whose InitialState holds the
//     initial ConfState (MemoryStorage: ApplySnapshot of a snapshot at index 1, term 1,
//     with that ConfState; a durable Storage writes the equivalent once).
//   - Joining member: starts with an empty Storage (no ConfState) after the leader
//     committed its addition; it learns the log and membership from the leader's
//     snapshot, which must name it (see Storage::Snapshot).
//   - Restart: Config::applied = the applied index persisted with the state machine.
//   - Removal: a removed leader steps down when it applies its own removal; the
//     application should stop a removed member shortly after it applies the removal
//     (etcd's stopWithDelay), not at once, so a removed leader can still tell the others
//     the removal committed.
//
// Errors. Propose/ProposeConfChange/ReadIndex/TransferLeader return ErrProposalDropped
// (raft/errors.h) when the request cannot be accepted right now (no leader, transfer in
// progress, a membership change pending, ...): the caller fails the request with a
// retryable error. OK only means "accepted for replication": the entry may still be lost
// if leadership changes before it commits; the application learns the outcome by seeing
// (or not) the entry among committed entries. Step returns ErrStepLocalMsg /
// ErrStepPeerNotFound for messages that must not come from the network; they are dropped.
//
// Membership changes: ONE MEMBER AT A TIME (the dissertation's §4.1 single-server change),
// not joint consensus. A ConfChange takes effect when the application applies it
// (ApplyConfChange), like etcd's ConfChange v1. Safety rules enforced by the leader:
//   1. at most one change is pending: a new one is refused until the log is applied past
//      the previous one (pending_conf_index);
//   2. a leader proposes a change only after committing an entry of its own term (this
//      closes the known single-server-change bug, raft-dev 2015-07);
//   3. a node does not campaign while a committed conf change is not applied yet.
// Any two consecutive configurations differ by one voter, so their majorities overlap.
// Why not joint consensus: every change kvd needs (add/remove a member, promote a learner)
// is a single-member change, and this keeps the quorum logic a single majority that the
// simulator exercises under faults. ConfChangeV2 is accepted when it carries exactly one
// change with the AUTO transition, so clients written for v2 keep working.
// Operational caveat (as in etcd): removing a member while another is down or lagging can
// leave too few live voters for the new quorum; the server should check, as etcd's
// --strict-reconfig-check does, before proposing.
#ifndef KVD_RAFT_RAWNODE_H_
#define KVD_RAFT_RAWNODE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/raftpb/raft.pb.h"
#include "raft/config.h"
#include "raft/errors.h"
#include "raft/progress.h"
#include "raft/ready.h"
#include "raft/storage.h"

namespace kvd::raft {

class Raft;

struct PeerStatus {
  uint64_t match = 0;
  uint64_t next = 0;
  ProgressState state = ProgressState::kProbe;
  bool is_learner = false;
  bool recent_active = false;
  size_t inflight = 0;
};

struct Status {
  uint64_t id = 0;
  raftpb::HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  uint64_t lead_transferee = kNone;
  // Filled only on the leader.
  std::map<uint64_t, PeerStatus> progress;
  raftpb::ConfState conf_state;
  std::string DebugString() const;
};

class RawNode {
 public:
  // Restores the node from cfg.storage (hard state, membership, log). A brand-new cluster
  // is bootstrapped by giving every initial member a storage whose InitialState has the
  // initial ConfState (e.g. MemoryStorage::ApplySnapshot of an index-1 snapshot).
  // Errors: kInvalidArgument if cfg is invalid.
  static absl::StatusOr<std::unique_ptr<RawNode>> Create(const Config& cfg);
  ~RawNode();

  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // Advances the logical clock by one tick.
  void Tick();
  // Starts an election now (tests, or an operator's "campaign").
  absl::Status Campaign();
  // Proposes data to be appended to the log.
  absl::Status Propose(absl::string_view data);
  // Proposes several entries at once, in order: one message, so a leader sends them to
  // each follower in one append, and a follower forwards them in one message. Either all
  // are accepted or all are dropped.
  absl::Status ProposeBatch(const std::vector<std::string>& data);
  // Proposes a membership change. See the class comment for the rules.
  absl::Status ProposeConfChange(const raftpb::ConfChange& cc);
  absl::Status ProposeConfChange(const raftpb::ConfChangeV2& cc);
  // Applies a committed conf change entry's change (step 3 of raft/ready.h). Returns the
  // configuration to record with the applied index.
  raftpb::ConfState ApplyConfChange(const raftpb::ConfChange& cc);
  raftpb::ConfState ApplyConfChange(const raftpb::ConfChangeV2& cc);
  // Feeds a message received from a peer.
  absl::Status Step(raftpb::Message m);
  // Asks for a linearizable read point. The answer arrives as a ReadState with the same
  // request_ctx in a later Ready (never if leadership is lost meanwhile: time out and
  // retry). request_ctx must be unique among outstanding requests.
  absl::Status ReadIndex(absl::string_view request_ctx);
  // Asks the leader to hand leadership to transferee (forwarded if we are a follower).
  absl::Status TransferLeader(uint64_t transferee);
  // The transport could not deliver to id; the leader slows down replication to it.
  void ReportUnreachable(uint64_t id);
  // Outcome of sending a snapshot (MSG_SNAP) to id.
  void ReportSnapshot(uint64_t id, bool ok);
  // A follower forgets its leader (used when the application knows it is gone) so it may
  // vote earlier under check_quorum.
  void ForgetLeader();

  // Whether GetReady() has work. False while a Ready is outstanding (before Advance).
  bool HasReady() const;
  // etcd's Ready(); named GetReady because the struct is called Ready.
  // REQUIRES: no Ready outstanding (Advance called after the previous one).
  Ready GetReady();
  // Acknowledges that the last Ready was handled (steps 1-3 of raft/ready.h).
  void Advance();

  // etcd's Status(): id, hard state, soft state, applied, and per-peer progress on the
  // leader (which allocates; for a per-request "who leads" check use GetSoftState()).
  ::kvd::raft::Status GetStatus() const;
  SoftState GetSoftState() const;

  // Read-only access to the state machine, for tests, the simulator and Status dumps.
  const Raft& raft() const { return *raft_; }

 private:
  explicit RawNode(std::unique_ptr<Raft> r);
  bool HasReadyInternal() const;

  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_state_;
  raftpb::HardState prev_hard_state_;
  // What the outstanding Ready handed out, for Advance. Valid while ready_outstanding_.
  bool ready_outstanding_ = false;
  uint64_t ready_last_entry_index_ = 0;
  uint64_t ready_last_entry_term_ = 0;
  uint64_t ready_last_committed_index_ = 0;
  uint64_t ready_committed_payload_bytes_ = 0;
  uint64_t ready_snapshot_index_ = 0;
};

}  // namespace kvd::raft

#endif  // KVD_RAFT_RAWNODE_H_
