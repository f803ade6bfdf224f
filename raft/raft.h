// Raft: the consensus state machine behind RawNode. Not a public entry point: the server
// uses raft/rawnode.h. Tests and the simulator read its state through RawNode::raft().
//
// Structure (after etcd-io/raft and the Raft dissertation, Ongaro 2014):
//   - Step(m) first applies the term rules of §5.1 (a higher term makes us a follower, a
//     lower one is ignored or answered so the sender learns), answers votes (§5.2, §5.4.1,
//     §9.6), then dispatches to the role's step function.
//   - Role dispatch swaps `step_` and `tick_` on BecomeFollower/Candidate/PreCandidate/
//     Leader, so each role's behaviour reads in one place.
//   - Output goes to msgs_ and read_states_, drained by RawNode::GetReady().
#ifndef KVD_RAFT_RAFT_H_
#define KVD_RAFT_RAFT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "api/raftpb/raft.pb.h"
#include "raft/config.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/ready.h"
#include "raft/util.h"

namespace kvd::raft {

// Context of a MsgVote sent because of a leadership transfer: voters ignore their leader
// lease for it.
inline constexpr char kCampaignTransfer[] = "CampaignTransfer";

enum class CampaignType { kPreElection, kElection, kTransfer };

class Raft {
 public:
  // REQUIRES: cfg.Validate().ok().
  explicit Raft(const Config& cfg);

  absl::Status Step(raftpb::Message m);
  void Tick() { (this->*tick_)(); }

  // Membership: apply one committed conf change. Returns the new ConfState.
  raftpb::ConfState ApplyConfChange(const raftpb::ConfChange& cc);
  // Called by RawNode::Advance once the application persisted up to (index, term).
  void OnStable(uint64_t index, uint64_t term);
  void OnApplied(uint64_t index, uint64_t applied_payload_bytes);
  // GetReady handed out these committed entries; their conf changes are pending until
  // the application calls ApplyConfChange for each, in order.
  void OnConfChangesHandedOut(const std::vector<raftpb::Entry>& committed);
  void ForgetLeader();

  SoftState soft_state() const { return SoftState{lead_, state_}; }
  raftpb::HardState hard_state() const;

  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  StateType state() const { return state_; }
  bool is_learner() const { return is_learner_; }
  bool promotable() const;
  const RaftLog& log() const { return log_; }
  RaftLog& mutable_log() { return log_; }
  const ProgressTracker& tracker() const { return trk_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  int election_timeout() const { return election_timeout_; }

  std::vector<raftpb::Message>& msgs() { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }

 private:
  using StepFn = absl::Status (Raft::*)(raftpb::Message&);
  using TickFn = void (Raft::*)();

  // Roles.
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomeCandidate();
  void BecomePreCandidate();
  void BecomeLeader();
  void Reset(uint64_t term);
  void ResetRandomizedElectionTimeout();

  absl::Status StepLeader(raftpb::Message& m);
  absl::Status HandlePropose(raftpb::Message& m);
  void HandleAppendResponse(const raftpb::Message& m, Progress& pr);
  void HandleHeartbeatResponse(const raftpb::Message& m, Progress& pr);
  void HandleTransferLeader(const raftpb::Message& m, const Progress& pr);
  absl::Status StepCandidate(raftpb::Message& m);
  absl::Status StepFollower(raftpb::Message& m);
  void TickElection();
  void TickHeartbeat();
  bool PastElectionTimeout() const { return election_elapsed_ >= randomized_election_timeout_; }

  // Elections.
  void Hup(CampaignType t);
  void Campaign(CampaignType t);
  VoteResult Poll(uint64_t id, raftpb::MessageType t, bool granted);
  bool HasUnappliedConfChanges() const;

  // Replication (leader).
  void Send(raftpb::Message m);
  void SendAppend(uint64_t to) { MaybeSendAppend(to, true); }
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  void SendEmptyAppend(uint64_t to);
  void SendHeartbeat(uint64_t to, const std::string& ctx);
  void BcastAppend();
  void BcastHeartbeat();
  void BcastHeartbeatWithCtx(const std::string& ctx);
  bool MaybeCommit();
  bool AppendEntries(std::vector<raftpb::Entry>& es);
  bool CommittedEntryInCurrentTerm() const;
  void SendTimeoutNow(uint64_t to);
  void AbortLeaderTransfer() { lead_transferee_ = kNone; }
  void AfterCommit();

  // Follower side of replication.
  void HandleAppendEntries(raftpb::Message& m);
  void HandleHeartbeat(raftpb::Message& m);
  void HandleSnapshot(raftpb::Message& m);
  bool Restore(const raftpb::Snapshot& s);

  // ReadIndex.
  void HandleReadIndex(raftpb::Message& m);
  void RespondToReadIndex(const raftpb::Message& req, uint64_t index);
  void ReleasePendingReadIndexMessages();

  // Membership.
  void RestoreConfState(const raftpb::ConfState& cs);
  void SwitchToConfig();

  const uint64_t id_;
  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  RaftLog log_;
  ProgressTracker trk_;
  StateType state_ = StateType::kFollower;
  // Whether this node is a learner in the current configuration (it never campaigns).
  bool is_learner_ = false;
  uint64_t lead_ = kNone;
  // While != kNone, the leader is handing leadership to this node and drops proposals.
  uint64_t lead_transferee_ = kNone;
  // Index of the latest conf change the leader appended. A new one is accepted only once
  // the log is applied past it (one membership change in flight at a time).
  uint64_t pending_conf_index_ = 0;
  // Payload bytes of entries the leader appended this term and not yet applied.
  uint64_t uncommitted_size_ = 0;
  // Indices of conf change entries handed to the application (Ready::committed_entries)
  // whose ApplyConfChange has not been called yet, oldest first. The application may
  // apply asynchronously and call Advance first; until a change reaches the tracker this
  // node neither campaigns nor accepts another conf change, as if it were unapplied.
  std::deque<uint64_t> conf_changes_awaiting_apply_;
  // Conf changes at or below this index were superseded by a restored snapshot's
  // ConfState: ApplyConfChange for them is a no-op.
  uint64_t conf_superseded_through_ = 0;
  bool ConfChangeAwaitingApply() const {
    return !conf_changes_awaiting_apply_.empty() &&
           conf_changes_awaiting_apply_.back() > conf_superseded_through_;
  }

  // ReadIndex requests waiting for a heartbeat quorum, in arrival order.
  struct ReadIndexStatus {
    raftpb::Message req;
    uint64_t index = 0;
    std::set<uint64_t> acks;
  };
  std::map<std::string, ReadIndexStatus> pending_reads_;
  std::deque<std::string> read_queue_;
  // ReadIndex requests received before the leader committed an entry of its term.
  std::vector<raftpb::Message> pending_read_index_messages_;

  // Ticks since the last reset. Leader: since the last check-quorum round. Follower and
  // candidate: since the last valid message from a leader or the start of the campaign.
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  const int heartbeat_timeout_;
  const int election_timeout_;
  // Drawn in [election_timeout_, 2*election_timeout_) on every Reset.
  int randomized_election_timeout_ = 0;

  const bool check_quorum_;
  const bool pre_vote_;
  const ReadOnlyOption read_only_option_;
  const bool disable_proposal_forwarding_;
  const uint64_t max_msg_size_;
  const uint64_t max_uncommitted_size_;
  const TestingKnobs knobs_;
  Rng rng_;

  StepFn step_ = &Raft::StepFollower;
  TickFn tick_ = &Raft::TickElection;

  std::vector<raftpb::Message> msgs_;
  std::vector<ReadState> read_states_;
};

}  // namespace kvd::raft

#endif  // KVD_RAFT_RAFT_H_
