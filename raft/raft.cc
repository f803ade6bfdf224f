#include "raft/raft.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/errors.h"

namespace kvd::raft {

using raftpb::Entry;
using raftpb::Message;
using raftpb::MessageType;

namespace {

MessageType VoteRespType(MessageType t) {
  RAFT_CHECK_MSG(t == raftpb::MSG_VOTE || t == raftpb::MSG_PRE_VOTE, "not a vote message");
  return t == raftpb::MSG_VOTE ? raftpb::MSG_VOTE_RESP : raftpb::MSG_PRE_VOTE_RESP;
}

uint64_t PayloadSize(const Entry& e) { return e.data().size(); }

bool IsConfChangeEntry(const Entry& e) {
  return e.type() == raftpb::ENTRY_CONF_CHANGE || e.type() == raftpb::ENTRY_CONF_CHANGE_V2;
}

}  // namespace

Raft::Raft(const Config& cfg)
    : id_(cfg.id),
      log_(cfg.storage, cfg.max_committed_size_per_ready == 0 ? cfg.max_size_per_msg
                                                              : cfg.max_committed_size_per_ready),
      trk_(cfg.max_inflight_msgs),
      heartbeat_timeout_(cfg.heartbeat_tick),
      election_timeout_(cfg.election_tick),
      check_quorum_(cfg.check_quorum),
      pre_vote_(cfg.pre_vote),
      read_only_option_(cfg.read_only_option),
      disable_proposal_forwarding_(cfg.disable_proposal_forwarding),
      max_msg_size_(cfg.max_size_per_msg),
      max_uncommitted_size_(cfg.max_uncommitted_entries_size),
      knobs_(cfg.testing),
      rng_(cfg.seed ^ (cfg.id * 0x9e3779b97f4a7c15ULL)) {
  absl::StatusOr<PersistedState> st = cfg.storage->InitialState();
  RAFT_CHECK_MSG(st.ok(), "storage InitialState failed");
  RestoreConfState(st->conf_state);
  const raftpb::HardState& hs = st->hard_state;
  if (!IsEmptyHardState(hs)) {
    RAFT_CHECK_MSG(hs.commit() >= log_.committed() && hs.commit() <= log_.LastIndex(),
                   "hard state commit out of range");
    log_.CommitTo(hs.commit());
    term_ = hs.term();
    vote_ = hs.vote();
  }
  if (cfg.applied > 0) {
    RAFT_CHECK_MSG(cfg.applied <= log_.committed(), "applied index beyond commit index");
    log_.AppliedTo(cfg.applied);
  }
  BecomeFollower(term_, kNone);
}

raftpb::HardState Raft::hard_state() const {
  raftpb::HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

bool Raft::promotable() const { return trk_.IsVoter(id_); }

// ------------------------------------------------------------------------------ roles

void Raft::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  trk_.ResetVotes();
  const uint64_t last = log_.LastIndex();
  for (auto& [id, pr] : trk_.progress()) {
    pr.Reset(last + 1);
    if (id == id_) pr.match = last;
  }
  pending_conf_index_ = 0;
  uncommitted_size_ = 0;
  // Outstanding reads are dropped with the term: the caller times out and retries.
  pending_reads_.clear();
  read_queue_.clear();
  pending_read_index_messages_.clear();
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      election_timeout_ + static_cast<int>(rng_.Uniform(static_cast<uint64_t>(election_timeout_)));
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  step_ = &Raft::StepFollower;
  tick_ = &Raft::TickElection;
  Reset(term);
  lead_ = lead;
  state_ = StateType::kFollower;
}

void Raft::BecomeCandidate() {
  RAFT_CHECK_MSG(state_ != StateType::kLeader, "invalid transition leader -> candidate");
  step_ = &Raft::StepCandidate;
  tick_ = &Raft::TickElection;
  Reset(term_ + 1);
  vote_ = id_;
  state_ = StateType::kCandidate;
}

void Raft::BecomePreCandidate() {
  RAFT_CHECK_MSG(state_ != StateType::kLeader, "invalid transition leader -> pre-candidate");
  // Pre-candidates change neither term nor vote: a lost pre-election leaves no trace.
  step_ = &Raft::StepCandidate;
  tick_ = &Raft::TickElection;
  trk_.ResetVotes();
  lead_ = kNone;
  state_ = StateType::kPreCandidate;
}

void Raft::BecomeLeader() {
  RAFT_CHECK_MSG(state_ != StateType::kFollower, "invalid transition follower -> leader");
  step_ = &Raft::StepLeader;
  tick_ = &Raft::TickHeartbeat;
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  Progress* self = trk_.Get(id_);
  self->BecomeReplicate();
  self->recent_active = true;
  // Entries from earlier terms may hold an unapplied conf change; no new one until the
  // log is applied up to here (§4.1 with the fix of Ongaro's raft-dev post 2015-07).
  pending_conf_index_ = log_.LastIndex();
  // Commit an empty entry of our term: it commits everything before it (§5.4.2) and
  // unblocks ReadIndex and membership changes (§6.4, §4.1).
  std::vector<Entry> noop(1);
  RAFT_CHECK(AppendEntries(noop));
}

// ------------------------------------------------------------------------------- tick

void Raft::TickElection() {
  ++election_elapsed_;
  if (promotable() && PastElectionTimeout()) {
    election_elapsed_ = 0;
    Message m;
    m.set_type(raftpb::MSG_HUP);
    m.set_from(id_);
    (void)Step(std::move(m));
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_) {
      Message m;
      m.set_type(raftpb::MSG_CHECK_QUORUM);
      m.set_from(id_);
      (void)Step(std::move(m));
    }
    // A transfer that did not finish within an election timeout is abandoned.
    if (state_ == StateType::kLeader && lead_transferee_ != kNone) AbortLeaderTransfer();
  }
  if (state_ != StateType::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.set_type(raftpb::MSG_BEAT);
    m.set_from(id_);
    (void)Step(std::move(m));
  }
}

// -------------------------------------------------------------------------- elections

bool Raft::HasUnappliedConfChanges() const {
  if (log_.applied() >= log_.committed()) return false;
  const uint64_t lo = std::max(log_.applied() + 1, log_.FirstIndex());
  if (lo > log_.committed()) return false;
  absl::StatusOr<std::vector<Entry>> ents = log_.Slice(lo, log_.committed() + 1, kNoLimit);
  RAFT_CHECK_MSG(ents.ok(), "unapplied entries must be available");
  for (const Entry& e : *ents) {
    if (IsConfChangeEntry(e)) return true;
  }
  return false;
}

void Raft::Hup(CampaignType t) {
  if (state_ == StateType::kLeader) return;
  if (!promotable()) return;
  // A conf change that is committed but not applied may remove us or change the quorum;
  // campaigning before applying it could use the wrong configuration.
  if (HasUnappliedConfChanges() || ConfChangeAwaitingApply()) return;
  Campaign(t);
}

void Raft::Campaign(CampaignType t) {
  if (!promotable()) return;
  uint64_t term;
  MessageType vote_msg;
  if (t == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_msg = raftpb::MSG_PRE_VOTE;
    // A pre-vote asks about the term we would use, without adopting it.
    term = term_ + 1;
  } else {
    BecomeCandidate();
    vote_msg = raftpb::MSG_VOTE;
    term = term_;
  }
  if (Poll(id_, VoteRespType(vote_msg), true) == VoteResult::kWon) {
    // Single-voter configuration: we won at once.
    if (t == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  const uint64_t last_index = log_.LastIndex();
  const uint64_t last_term = log_.LastTerm();
  for (uint64_t id : trk_.voters()) {
    if (id == id_) continue;
    Message m;
    m.set_type(vote_msg);
    m.set_to(id);
    m.set_term(term);
    m.set_index(last_index);
    m.set_log_term(last_term);
    if (t == CampaignType::kTransfer) m.set_context(kCampaignTransfer);
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(uint64_t id, MessageType t, bool granted) {
  trk_.RecordVote(id, granted);
  return trk_.TallyVotes(nullptr, nullptr);
}

// ------------------------------------------------------------------------------- step

absl::Status Raft::Step(Message m) {
  // §5.1: terms act as a logical clock.
  if (m.term() == 0) {
    // Local message (or a forwarded proposal / read index).
  } else if (m.term() > term_) {
    if (m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE) {
      const bool force = m.context() == kCampaignTransfer;
      const bool in_lease =
          check_quorum_ && lead_ != kNone && election_elapsed_ < election_timeout_;
      // §9.6 / §4.2.3: while we hear from a leader, a vote request is a disruption (a
      // removed or partitioned node), not a reason to give up the term.
      if (!force && in_lease) return absl::OkStatus();
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Never change our term in response to a pre-vote.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // A granted pre-vote carries the future term; we adopt it only if we win.
    } else if (m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT ||
               m.type() == raftpb::MSG_SNAP) {
      BecomeFollower(m.term(), m.from());
    } else {
      BecomeFollower(m.term(), kNone);
    }
  } else if (m.term() < term_) {
    if ((check_quorum_ || pre_vote_) &&
        (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP)) {
      // A stale leader (e.g. just rejoined after a partition) would otherwise never learn
      // of the new term: with check-quorum or pre-vote nobody else raises it. Answer so it
      // steps down.
      Message r;
      r.set_to(m.from());
      r.set_type(raftpb::MSG_APP_RESP);
      Send(std::move(r));
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Reject so that the pre-candidate learns our term instead of retrying forever.
      Message r;
      r.set_to(m.from());
      r.set_term(term_);
      r.set_type(raftpb::MSG_PRE_VOTE_RESP);
      r.set_reject(true);
      Send(std::move(r));
    }
    // Any other stale message is ignored.
    return absl::OkStatus();
  }

  switch (m.type()) {
    case raftpb::MSG_HUP:
      Hup(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return absl::OkStatus();
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE: {
      // We can vote if we already voted for this candidate (a duplicate request), if we
      // have not voted and know no leader in this term, or for a pre-vote of a future term.
      const bool can_vote = vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
                            (m.type() == raftpb::MSG_PRE_VOTE && m.term() > term_) ||
                            knobs_.vote_twice_in_term;
      // §5.4.1: only for a candidate whose log is at least as up to date as ours.
      if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {
        Message r;
        r.set_to(m.from());
        // The response carries the candidate's term so it is not dropped as stale; for a
        // pre-vote we have not adopted that term.
        r.set_term(m.term());
        r.set_type(VoteRespType(m.type()));
        Send(std::move(r));
        if (m.type() == raftpb::MSG_VOTE) {
          election_elapsed_ = 0;
          vote_ = m.from();
        }
      } else {
        Message r;
        r.set_to(m.from());
        r.set_term(term_);
        r.set_type(VoteRespType(m.type()));
        r.set_reject(true);
        Send(std::move(r));
      }
      return absl::OkStatus();
    }
    default:
      return (this->*step_)(m);
  }
}

absl::Status Raft::StepLeader(Message& m) {
  // Messages that need no progress of the sender.
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      BcastHeartbeat();
      return absl::OkStatus();
    case raftpb::MSG_CHECK_QUORUM:
      if (!trk_.QuorumActive()) {
        // We cannot reach a quorum: another leader may exist; stop serving.
        BecomeFollower(term_, kNone);
      }
      for (auto& [id, pr] : trk_.progress()) pr.recent_active = (id == id_);
      return absl::OkStatus();
    case raftpb::MSG_PROP:
      return HandlePropose(m);
    case raftpb::MSG_READ_INDEX:
      HandleReadIndex(m);
      return absl::OkStatus();
    default:
      break;
  }

  Progress* pr = trk_.Get(m.from());
  if (pr == nullptr) return absl::OkStatus();  // Not (or no longer) a member.
  switch (m.type()) {
    case raftpb::MSG_APP_RESP:
      HandleAppendResponse(m, *pr);
      return absl::OkStatus();
    case raftpb::MSG_HEARTBEAT_RESP:
      HandleHeartbeatResponse(m, *pr);
      return absl::OkStatus();
    case raftpb::MSG_SNAP_STATUS:
      if (pr->state != ProgressState::kSnapshot) return absl::OkStatus();
      if (m.reject()) pr->pending_snapshot = 0;
      // Whether it worked or not, wait for the follower's next answer before sending more.
      pr->BecomeProbe();
      pr->msg_app_flow_paused = true;
      return absl::OkStatus();
    case raftpb::MSG_UNREACHABLE:
      // Optimistic replication to an unreachable peer only loses messages; probe instead.
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      return absl::OkStatus();
    case raftpb::MSG_TRANSFER_LEADER:
      HandleTransferLeader(m, *pr);
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

absl::Status Raft::HandlePropose(Message& m) {
  RAFT_CHECK_MSG(m.entries_size() > 0, "empty proposal");
  if (trk_.Get(id_) == nullptr || trk_.Get(id_)->is_learner) {
    return ErrProposalDropped("this node is no longer a voter");
  }
  if (lead_transferee_ != kNone) return ErrProposalDropped("leadership transfer in progress");
  std::vector<Entry> es;
  es.reserve(m.entries_size());
  for (Entry& e : *m.mutable_entries()) {
    if (IsConfChangeEntry(e)) {
      // The single-server change rules (see rawnode.h).
      if (pending_conf_index_ > log_.applied() || ConfChangeAwaitingApply()) {
        return ErrProposalDropped("a membership change is already in progress");
      }
      if (!CommittedEntryInCurrentTerm()) {
        return ErrProposalDropped("the leader has not committed an entry in its term");
      }
    }
    es.push_back(std::move(e));
  }
  for (size_t i = 0; i < es.size(); ++i) {
    if (IsConfChangeEntry(es[i])) pending_conf_index_ = log_.LastIndex() + 1 + i;
  }
  if (!AppendEntries(es)) return ErrProposalDropped("too many uncommitted entries");
  BcastAppend();
  return absl::OkStatus();
}

void Raft::HandleAppendResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  if (m.reject()) {
    // Fast backtracking (§5.3's optimisation, etcd's variant): the follower told us the
    // largest index <= reject_hint where its term is <= log_term; skip to the largest
    // index in our log with a term <= that term.
    uint64_t next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      next_probe = log_.FindConflictByTerm(m.reject_hint(), m.log_term()).first;
    }
    if (pr.MaybeDecrTo(m.index(), next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from());
    }
    return;
  }
  const bool old_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index())) return;  // Stale or duplicate acknowledgement.
  if (pr.state == ProgressState::kProbe) {
    pr.BecomeReplicate();
  } else if (pr.state == ProgressState::kSnapshot && pr.match + 1 >= log_.FirstIndex()) {
    // The follower caught up through the snapshot (or otherwise) and the log has what it
    // needs next: replicate from here.
    pr.BecomeProbe();
    pr.BecomeReplicate();
  } else if (pr.state == ProgressState::kReplicate) {
    pr.inflights.FreeLE(m.index());
  }
  if (MaybeCommit()) {
    AfterCommit();
  } else if (old_paused) {
    // The follower was paused and now has room: send what it is missing.
    SendAppend(m.from());
  }
  // Pipelining: keep sending while the window allows and there is something new.
  while (MaybeSendAppend(m.from(), false)) {
  }
  if (m.from() == lead_transferee_ && pr.match == log_.LastIndex()) SendTimeoutNow(m.from());
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  pr.msg_app_flow_paused = false;
  if (pr.match < log_.LastIndex()) {
    if (pr.state == ProgressState::kReplicate && pr.inflights.Full()) {
      // Every message in the window may have been lost. An empty append at next-1 makes
      // the follower reject if it lacks those entries, which resets us to probe.
      SendEmptyAppend(m.from());
    } else {
      SendAppend(m.from());
    }
  }
  if (read_only_option_ != ReadOnlyOption::kSafe || m.context().empty()) return;
  auto it = pending_reads_.find(m.context());
  if (it == pending_reads_.end()) return;
  it->second.acks.insert(m.from());
  if (!trk_.HasQuorum(it->second.acks)) return;
  // Leadership is confirmed as of this heartbeat round: every read queued up to and
  // including this one may be served at its recorded index.
  std::vector<ReadIndexStatus> done;
  while (!read_queue_.empty()) {
    std::string ctx = std::move(read_queue_.front());
    read_queue_.pop_front();
    auto st = pending_reads_.find(ctx);
    const bool last = ctx == m.context();
    if (st != pending_reads_.end()) {
      done.push_back(std::move(st->second));
      pending_reads_.erase(st);
    }
    if (last) break;
  }
  for (const ReadIndexStatus& rs : done) RespondToReadIndex(rs.req, rs.index);
}

void Raft::HandleTransferLeader(const Message& m, const Progress& pr) {
  if (pr.is_learner) return;
  const uint64_t transferee = m.from();
  if (lead_transferee_ != kNone) {
    if (lead_transferee_ == transferee) return;  // Already under way.
    AbortLeaderTransfer();
  }
  if (transferee == id_) return;  // Already the leader.
  // The transfer must finish within an election timeout (TickHeartbeat aborts it).
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  if (pr.match == log_.LastIndex()) {
    SendTimeoutNow(transferee);
  } else {
    SendAppend(transferee);  // Catch it up first; HandleAppendResponse sends TimeoutNow.
  }
}

absl::Status Raft::StepCandidate(Message& m) {
  // A pre-candidate counts pre-votes, a candidate counts votes; the other kind is stale.
  const MessageType my_vote_resp =
      state_ == StateType::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      return ErrProposalDropped("no leader (election in progress)");
    case raftpb::MSG_APP:
      BecomeFollower(m.term(), m.from());  // §5.2: a leader of our term exists.
      HandleAppendEntries(m);
      return absl::OkStatus();
    case raftpb::MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      HandleHeartbeat(m);
      return absl::OkStatus();
    case raftpb::MSG_SNAP:
      BecomeFollower(m.term(), m.from());
      HandleSnapshot(m);
      return absl::OkStatus();
    case raftpb::MSG_READ_INDEX:
      return ErrProposalDropped("no leader (election in progress)");
    case raftpb::MSG_TIMEOUT_NOW:
      return absl::OkStatus();  // Already campaigning.
    default:
      break;
  }
  if (m.type() == my_vote_resp) {
    switch (Poll(m.from(), m.type(), !m.reject())) {
      case VoteResult::kWon:
        if (state_ == StateType::kPreCandidate) {
          Campaign(CampaignType::kElection);
        } else {
          BecomeLeader();
          BcastAppend();
        }
        break;
      case VoteResult::kLost:
        // A rejecting pre-vote response of a higher term already made us a follower of
        // that term in Step; otherwise stay in our term.
        BecomeFollower(term_, kNone);
        break;
      case VoteResult::kPending:
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status Raft::StepFollower(Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP:
      if (lead_ == kNone) return ErrProposalDropped("no leader");
      if (disable_proposal_forwarding_) {
        return ErrProposalDropped("not the leader and forwarding is disabled");
      }
      m.set_to(lead_);
      Send(std::move(m));
      return absl::OkStatus();
    case raftpb::MSG_APP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleAppendEntries(m);
      return absl::OkStatus();
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleHeartbeat(m);
      return absl::OkStatus();
    case raftpb::MSG_SNAP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleSnapshot(m);
      return absl::OkStatus();
    case raftpb::MSG_TRANSFER_LEADER:
      if (lead_ == kNone) return ErrProposalDropped("no leader to transfer from");
      m.set_to(lead_);
      Send(std::move(m));
      return absl::OkStatus();
    case raftpb::MSG_TIMEOUT_NOW:
      // The leader handed over: campaign at once, skipping pre-vote and leases.
      Hup(CampaignType::kTransfer);
      return absl::OkStatus();
    case raftpb::MSG_READ_INDEX:
      if (lead_ == kNone) return ErrProposalDropped("no leader");
      m.set_to(lead_);
      Send(std::move(m));
      return absl::OkStatus();
    case raftpb::MSG_READ_INDEX_RESP:
      if (m.entries_size() != 1) return absl::OkStatus();
      read_states_.push_back(ReadState{m.index(), m.entries(0).data()});
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

// ------------------------------------------------------------------------ replication

void Raft::Send(Message m) {
  if (m.from() == kNone) m.set_from(id_);
  const MessageType t = m.type();
  if (t == raftpb::MSG_VOTE || t == raftpb::MSG_VOTE_RESP || t == raftpb::MSG_PRE_VOTE ||
      t == raftpb::MSG_PRE_VOTE_RESP) {
    RAFT_CHECK_MSG(m.term() != 0, "vote messages must carry a term");
  } else {
    RAFT_CHECK_MSG(m.term() == 0, "term is set by Send");
    // Proposals and read requests forwarded to the leader stay "local" (term 0).
    if (t != raftpb::MSG_PROP && t != raftpb::MSG_READ_INDEX) m.set_term(term_);
  }
  msgs_.push_back(std::move(m));
}

bool Raft::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress* pr = trk_.Get(to);
  if (pr == nullptr || pr->IsPaused()) return false;
  Message m;
  m.set_to(to);
  absl::StatusOr<uint64_t> term = log_.Term(pr->next - 1);
  absl::Status ents = term.ok() ? log_.AppendEntriesTo(pr->next, max_msg_size_, m.mutable_entries())
                                : absl::OkStatus();
  if (term.ok() && ents.ok() && m.entries_size() == 0 && !send_if_empty) return false;
  if (!term.ok() || !ents.ok()) {
    // The entries the follower needs were compacted: send a snapshot instead.
    if (!pr->recent_active) return false;  // Do not push a snapshot into the void.
    absl::StatusOr<raftpb::Snapshot> snap = log_.Snapshot();
    if (!snap.ok()) {
      RAFT_CHECK_MSG(IsErrSnapshotTemporarilyUnavailable(snap.status()), "snapshot failed");
      return false;
    }
    RAFT_CHECK_MSG(!IsEmptySnapshot(*snap), "need a non-empty snapshot");
    m.clear_entries();
    m.set_type(raftpb::MSG_SNAP);
    pr->BecomeSnapshot(snap->metadata().index());
    *m.mutable_snapshot() = *std::move(snap);
    Send(std::move(m));
    return true;
  }
  m.set_type(raftpb::MSG_APP);
  m.set_index(pr->next - 1);
  m.set_log_term(*term);
  m.set_commit(log_.committed());
  if (m.entries_size() > 0) {
    const uint64_t last = m.entries(m.entries_size() - 1).index();
    if (pr->state == ProgressState::kReplicate) {
      pr->next = last + 1;  // Optimistic: assume it arrives.
      pr->inflights.Add(last);
    }
  }
  // In probe, one message at a time until the follower answers.
  if (pr->state == ProgressState::kProbe) pr->msg_app_flow_paused = true;
  Send(std::move(m));
  return true;
}

void Raft::SendEmptyAppend(uint64_t to) {
  Progress* pr = trk_.Get(to);
  absl::StatusOr<uint64_t> term = log_.Term(pr->next - 1);
  if (!term.ok()) {
    // What the follower needs next was compacted: it will need a snapshot.
    pr->BecomeProbe();
    SendAppend(to);
    return;
  }
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_APP);
  m.set_index(pr->next - 1);
  m.set_log_term(*term);
  m.set_commit(log_.committed());
  Send(std::move(m));
}

void Raft::SendHeartbeat(uint64_t to, const std::string& ctx) {
  // Never tell a follower to commit beyond what it is known to have: it could not check
  // that those entries match ours.
  const uint64_t commit = std::min(trk_.Get(to)->match, log_.committed());
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_commit(commit);
  m.set_context(ctx);
  Send(std::move(m));
}

void Raft::BcastAppend() {
  for (auto& [id, pr] : trk_.progress()) {
    if (id != id_) SendAppend(id);
  }
}

void Raft::BcastHeartbeat() {
  BcastHeartbeatWithCtx(read_queue_.empty() ? std::string() : read_queue_.back());
}

void Raft::BcastHeartbeatWithCtx(const std::string& ctx) {
  for (auto& [id, pr] : trk_.progress()) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

bool Raft::MaybeCommit() {
  uint64_t index = trk_.Committed();
  if (knobs_.commit_without_quorum) index = std::max(index, trk_.Get(id_)->match);
  return log_.MaybeCommit(index, term_);
}

void Raft::AfterCommit() {
  ReleasePendingReadIndexMessages();
  BcastAppend();
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.ZeroTermOnOutOfRange(log_.committed()) == term_;
}

bool Raft::AppendEntries(std::vector<Entry>& es) {
  uint64_t payload = 0;
  for (const Entry& e : es) payload += PayloadSize(e);
  // Always admit something when nothing is outstanding, so that one large entry can pass.
  if (max_uncommitted_size_ > 0 && uncommitted_size_ > 0 && payload > 0 &&
      uncommitted_size_ + payload > max_uncommitted_size_) {
    return false;
  }
  uncommitted_size_ += payload;
  const uint64_t li = log_.LastIndex();
  for (size_t i = 0; i < es.size(); ++i) {
    es[i].set_term(term_);
    es[i].set_index(li + 1 + i);
  }
  log_.Append(std::move(es));
  es.clear();
  // Our own acknowledgement is counted once the entries are stable (OnStable), so that a
  // leader that sends before it persists never commits on the strength of its own memory.
  if (knobs_.commit_without_quorum) {
    trk_.Get(id_)->MaybeUpdate(log_.LastIndex());
    MaybeCommit();
  }
  return true;
}

void Raft::SendTimeoutNow(uint64_t to) {
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  Send(std::move(m));
}

void Raft::OnStable(uint64_t index, uint64_t term) {
  log_.StableTo(index, term);
  if (state_ != StateType::kLeader || term != term_ || !log_.MatchTerm(index, term)) return;
  Progress* self = trk_.Get(id_);
  if (self == nullptr) return;
  if (self->MaybeUpdate(index) && MaybeCommit()) AfterCommit();
}

void Raft::OnApplied(uint64_t index, uint64_t applied_payload_bytes) {
  log_.AppliedTo(index);
  uncommitted_size_ -= std::min(uncommitted_size_, applied_payload_bytes);
}

void Raft::HandleAppendEntries(Message& m) {
  if (m.index() < log_.committed()) {
    // Everything up to our commit index matches the leader already (Log Matching).
    Message r;
    r.set_to(m.from());
    r.set_type(raftpb::MSG_APP_RESP);
    r.set_index(log_.committed());
    Send(std::move(r));
    return;
  }
  std::vector<Entry> ents;
  ents.reserve(m.entries_size());
  for (Entry& e : *m.mutable_entries()) ents.push_back(std::move(e));
  std::optional<uint64_t> last_new =
      log_.MaybeAppend(m.index(), m.log_term(), m.commit(), std::move(ents));
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_APP_RESP);
  if (last_new) {
    r.set_index(*last_new);
  } else {
    // Reject, and help the leader skip a whole term of mismatching entries: report the
    // largest index <= m.index() whose term is <= m.log_term().
    const uint64_t hint_index = std::min(m.index(), log_.LastIndex());
    auto [hi, ht] = log_.FindConflictByTerm(hint_index, m.log_term());
    r.set_index(m.index());
    r.set_reject(true);
    r.set_reject_hint(hi);
    r.set_log_term(ht);
  }
  Send(std::move(r));
}

void Raft::HandleHeartbeat(Message& m) {
  log_.CommitTo(m.commit());
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_HEARTBEAT_RESP);
  r.set_context(m.context());
  Send(std::move(r));
}

void Raft::HandleSnapshot(Message& m) {
  Message r;
  r.set_to(m.from());
  r.set_type(raftpb::MSG_APP_RESP);
  if (Restore(m.snapshot())) {
    r.set_index(log_.LastIndex());
  } else {
    r.set_index(log_.committed());
  }
  Send(std::move(r));
}

bool Raft::Restore(const raftpb::Snapshot& s) {
  const auto& md = s.metadata();
  if (md.index() <= log_.committed()) return false;
  if (state_ != StateType::kFollower) {
    // Only a leader of our term sends snapshots and we became its follower in Step; this
    // is a defensive check that no two leaders exist.
    RAFT_CHECK_MSG(false, "snapshot received while not a follower");
  }
  // A snapshot that does not include us is not for us (we were removed, or it is stale
  // relative to our own addition): ignore it.
  bool found = false;
  for (uint64_t id : md.conf_state().voters()) found |= (id == id_);
  for (uint64_t id : md.conf_state().learners()) found |= (id == id_);
  if (!found) return false;
  if (log_.MatchTerm(md.index(), md.term())) {
    // We already have the snapshot's last entry: just fast-forward the commit index.
    log_.CommitTo(md.index());
    return false;
  }
  log_.Restore(s);
  RestoreConfState(md.conf_state());
  conf_superseded_through_ = md.index();
  return true;
}

// -------------------------------------------------------------------------- ReadIndex

void Raft::HandleReadIndex(Message& m) {
  if (trk_.voters().size() <= 1) {
    // A single voter is always up to date.
    RespondToReadIndex(m, log_.committed());
    return;
  }
  // §6.4: a new leader does not know its commit index until it commits an entry of its
  // own term; defer the read until then.
  if (!CommittedEntryInCurrentTerm()) {
    pending_read_index_messages_.push_back(std::move(m));
    return;
  }
  if (read_only_option_ == ReadOnlyOption::kLeaseBased) {
    RespondToReadIndex(m, log_.committed());
    return;
  }
  const std::string ctx = m.entries(0).data();
  if (pending_reads_.count(ctx) > 0) return;  // The same request is already pending.
  ReadIndexStatus& st = pending_reads_[ctx];
  st.index = log_.committed();
  st.acks.insert(id_);
  st.req = std::move(m);
  read_queue_.push_back(ctx);
  BcastHeartbeatWithCtx(ctx);
}

void Raft::RespondToReadIndex(const Message& req, uint64_t index) {
  if (req.from() == kNone || req.from() == id_) {
    read_states_.push_back(ReadState{index, req.entries(0).data()});
    return;
  }
  Message r;
  r.set_to(req.from());
  r.set_type(raftpb::MSG_READ_INDEX_RESP);
  r.set_index(index);
  *r.mutable_entries() = req.entries();
  Send(std::move(r));
}

void Raft::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty() || !CommittedEntryInCurrentTerm()) return;
  std::vector<Message> msgs = std::move(pending_read_index_messages_);
  pending_read_index_messages_.clear();
  for (Message& m : msgs) HandleReadIndex(m);
}

void Raft::ForgetLeader() {
  if (state_ == StateType::kFollower) lead_ = kNone;
}

// ------------------------------------------------------------------------- membership

void Raft::RestoreConfState(const raftpb::ConfState& cs) {
  RAFT_CHECK_MSG(cs.voters_outgoing_size() == 0 && cs.learners_next_size() == 0,
                 "joint configurations are not supported");
  trk_ = ProgressTracker(trk_.max_inflight());
  const uint64_t next = log_.LastIndex() + 1;
  for (uint64_t id : cs.voters()) trk_.AddVoter(id, next);
  for (uint64_t id : cs.learners()) trk_.AddLearner(id, next);
  SwitchToConfig();
}

void Raft::OnConfChangesHandedOut(const std::vector<Entry>& committed) {
  for (const Entry& e : committed) {
    if (IsConfChangeEntry(e)) conf_changes_awaiting_apply_.push_back(e.index());
  }
}

raftpb::ConfState Raft::ApplyConfChange(const raftpb::ConfChange& cc) {
  if (!conf_changes_awaiting_apply_.empty()) {
    const uint64_t index = conf_changes_awaiting_apply_.front();
    conf_changes_awaiting_apply_.pop_front();
    // A snapshot installed since this entry was handed out already includes its effect.
    if (index <= conf_superseded_through_) return trk_.ConfState();
  }
  const uint64_t id = cc.node_id();
  const uint64_t next = log_.LastIndex() + 1;
  switch (cc.type()) {
    case raftpb::CONF_CHANGE_ADD_NODE:
      trk_.AddVoter(id, next);
      break;
    case raftpb::CONF_CHANGE_ADD_LEARNER_NODE:
      // Demoting the last voter would leave no quorum at all; ignore such a change.
      if (!(trk_.IsVoter(id) && trk_.voters().size() == 1)) trk_.AddLearner(id, next);
      break;
    case raftpb::CONF_CHANGE_REMOVE_NODE:
      if (!(trk_.IsVoter(id) && trk_.voters().size() == 1)) trk_.Remove(id);
      break;
    case raftpb::CONF_CHANGE_UPDATE_NODE:
    default:
      break;  // Addresses are the application's business.
  }
  SwitchToConfig();
  return trk_.ConfState();
}

void Raft::SwitchToConfig() {
  const Progress* self = trk_.Get(id_);
  is_learner_ = self != nullptr && self->is_learner;
  if (state_ != StateType::kLeader) return;
  if (!promotable()) {
    // We were removed or demoted. Tell the others what is committed, then step down so
    // that a remaining voter takes over after an election timeout.
    BcastAppend();
    BecomeFollower(term_, kNone);
    return;
  }
  // The quorum changed: something may now be committed, and new members need the log.
  if (MaybeCommit()) {
    AfterCommit();
  } else {
    for (auto& [id, pr] : trk_.progress()) {
      if (id != id_) MaybeSendAppend(id, false);
    }
  }
  if (lead_transferee_ != kNone && !trk_.IsVoter(lead_transferee_)) AbortLeaderTransfer();
}

// --------------------------------------------------------------------- free functions

const char* StateTypeName(StateType s) {
  switch (s) {
    case StateType::kFollower:
      return "follower";
    case StateType::kCandidate:
      return "candidate";
    case StateType::kLeader:
      return "leader";
    case StateType::kPreCandidate:
      return "pre-candidate";
  }
  return "?";
}

bool IsEmptyHardState(const raftpb::HardState& hs) {
  return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
}

bool IsEmptySnapshot(const raftpb::Snapshot& s) { return s.metadata().index() == 0; }

bool IsLocalMessage(MessageType t) {
  return t == raftpb::MSG_HUP || t == raftpb::MSG_BEAT || t == raftpb::MSG_UNREACHABLE ||
         t == raftpb::MSG_SNAP_STATUS || t == raftpb::MSG_CHECK_QUORUM;
}

bool IsResponseMessage(MessageType t) {
  return t == raftpb::MSG_APP_RESP || t == raftpb::MSG_VOTE_RESP ||
         t == raftpb::MSG_HEARTBEAT_RESP || t == raftpb::MSG_UNREACHABLE ||
         t == raftpb::MSG_PRE_VOTE_RESP;
}

std::string DescribeMessage(const Message& m) {
  std::string s = absl::StrCat(m.from(), "->", m.to(), " ", raftpb::MessageType_Name(m.type()),
                               " term=", m.term(), " log_term=", m.log_term(), " index=", m.index(),
                               " commit=", m.commit());
  if (m.reject()) absl::StrAppend(&s, " reject hint=", m.reject_hint());
  if (m.entries_size() > 0) {
    absl::StrAppend(&s, " entries=[", m.entries(0).index(), "..",
                    m.entries(m.entries_size() - 1).index(), "]");
  }
  if (m.has_snapshot() && m.snapshot().metadata().index() > 0) {
    absl::StrAppend(&s, " snap=", m.snapshot().metadata().index(), "@",
                    m.snapshot().metadata().term());
  }
  return s;
}

}  // namespace kvd::raft
