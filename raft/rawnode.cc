#include "raft/rawnode.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/raft.h"
#include "raft/util.h"

namespace kvd::raft {

absl::Status Config::Validate() const {
  if (id == kNone) return absl::InvalidArgumentError("raft config: id must not be 0");
  if (heartbeat_tick <= 0) {
    return absl::InvalidArgumentError("raft config: heartbeat_tick must be > 0");
  }
  if (election_tick <= heartbeat_tick) {
    return absl::InvalidArgumentError("raft config: election_tick must be > heartbeat_tick");
  }
  if (storage == nullptr) return absl::InvalidArgumentError("raft config: storage is null");
  if (max_inflight_msgs == 0) {
    return absl::InvalidArgumentError("raft config: max_inflight_msgs must be > 0");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return absl::InvalidArgumentError("raft config: lease-based reads require check_quorum");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RawNode>> RawNode::Create(const Config& cfg) {
  if (absl::Status s = cfg.Validate(); !s.ok()) return s;
  return std::unique_ptr<RawNode>(new RawNode(std::make_unique<Raft>(cfg)));
}

RawNode::RawNode(std::unique_ptr<Raft> r) : raft_(std::move(r)) {
  prev_soft_state_ = raft_->soft_state();
  prev_hard_state_ = raft_->hard_state();
}

RawNode::~RawNode() = default;

void RawNode::Tick() { raft_->Tick(); }

absl::Status RawNode::Campaign() {
  raftpb::Message m;
  m.set_type(raftpb::MSG_HUP);
  m.set_from(raft_->id());
  return raft_->Step(std::move(m));
}

absl::Status RawNode::Propose(absl::string_view data) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  m.add_entries()->set_data(data.data(), data.size());
  return raft_->Step(std::move(m));
}

absl::Status RawNode::ProposeBatch(const std::vector<std::string>& data) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  m.mutable_entries()->Reserve(static_cast<int>(data.size()));
  for (const std::string& d : data) m.add_entries()->set_data(d);
  return raft_->Step(std::move(m));
}

absl::Status RawNode::ProposeConfChange(const raftpb::ConfChange& cc) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  raftpb::Entry* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE);
  e->set_data(cc.SerializeAsString());
  return raft_->Step(std::move(m));
}

absl::Status RawNode::ProposeConfChange(const raftpb::ConfChangeV2& cc) {
  if (cc.changes_size() != 1 || cc.transition() != raftpb::CONF_CHANGE_TRANSITION_AUTO) {
    return absl::InvalidArgumentError(
        "raft: only single-member changes are supported (one change, AUTO transition)");
  }
  raftpb::Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  raftpb::Entry* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE_V2);
  e->set_data(cc.SerializeAsString());
  return raft_->Step(std::move(m));
}

raftpb::ConfState RawNode::ApplyConfChange(const raftpb::ConfChange& cc) {
  return raft_->ApplyConfChange(cc);
}

raftpb::ConfState RawNode::ApplyConfChange(const raftpb::ConfChangeV2& cc) {
  if (cc.changes_size() != 1) return raft_->tracker().ConfState();
  raftpb::ConfChange v1;
  v1.set_type(cc.changes(0).type());
  v1.set_node_id(cc.changes(0).node_id());
  return raft_->ApplyConfChange(v1);
}

absl::Status RawNode::Step(raftpb::Message m) {
  if (IsLocalMessage(m.type())) return ErrStepLocalMsg();
  if (IsResponseMessage(m.type()) &&
      raft_->tracker().progress().find(m.from()) == raft_->tracker().progress().end()) {
    return ErrStepPeerNotFound();
  }
  return raft_->Step(std::move(m));
}

absl::Status RawNode::ReadIndex(absl::string_view request_ctx) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_READ_INDEX);
  m.set_from(raft_->id());
  m.add_entries()->set_data(request_ctx.data(), request_ctx.size());
  return raft_->Step(std::move(m));
}

absl::Status RawNode::TransferLeader(uint64_t transferee) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_from(transferee);  // By convention the transferee travels in `from`.
  return raft_->Step(std::move(m));
}

void RawNode::ReportUnreachable(uint64_t id) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_UNREACHABLE);
  m.set_from(id);
  (void)raft_->Step(std::move(m));
}

void RawNode::ReportSnapshot(uint64_t id, bool ok) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP_STATUS);
  m.set_from(id);
  m.set_reject(!ok);
  (void)raft_->Step(std::move(m));
}

void RawNode::ForgetLeader() { raft_->ForgetLeader(); }

bool RawNode::HasReady() const {
  if (ready_outstanding_) return false;
  return HasReadyInternal();
}

bool RawNode::HasReadyInternal() const {
  const Raft& r = *raft_;
  if (!(r.soft_state() == prev_soft_state_)) return true;
  raftpb::HardState hs = r.hard_state();
  if (!IsEmptyHardState(hs) &&
      (hs.term() != prev_hard_state_.term() || hs.vote() != prev_hard_state_.vote() ||
       hs.commit() != prev_hard_state_.commit())) {
    return true;
  }
  if (r.log().UnstableSnapshot().has_value()) return true;
  if (r.log().HasUnstable() || r.log().HasNextCommittedEntries()) return true;
  return !raft_->msgs().empty() || !raft_->read_states().empty();
}

Ready RawNode::GetReady() {
  RAFT_CHECK_MSG(!ready_outstanding_, "Ready() called again before Advance()");
  Raft& r = *raft_;
  Ready rd;
  rd.entries = r.log().UnstableEntries();
  rd.committed_entries = r.log().NextCommittedEntries();
  if (r.log().UnstableSnapshot().has_value()) rd.snapshot = *r.log().UnstableSnapshot();
  const SoftState ss = r.soft_state();
  if (!(ss == prev_soft_state_)) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  const raftpb::HardState hs = r.hard_state();
  if (!IsEmptyHardState(hs) &&
      (hs.term() != prev_hard_state_.term() || hs.vote() != prev_hard_state_.vote() ||
       hs.commit() != prev_hard_state_.commit())) {
    rd.must_sync = hs.term() != prev_hard_state_.term() || hs.vote() != prev_hard_state_.vote();
    rd.hard_state = hs;
    prev_hard_state_ = hs;
  }
  rd.must_sync = rd.must_sync || !rd.entries.empty() || rd.snapshot.has_value();
  rd.messages = std::move(r.msgs());
  r.msgs().clear();
  rd.read_states = std::move(r.read_states());
  r.read_states().clear();

  ready_outstanding_ = true;
  ready_last_entry_index_ = rd.entries.empty() ? 0 : rd.entries.back().index();
  ready_last_entry_term_ = rd.entries.empty() ? 0 : rd.entries.back().term();
  ready_last_committed_index_ =
      rd.committed_entries.empty() ? 0 : rd.committed_entries.back().index();
  ready_committed_payload_bytes_ = 0;
  for (const auto& e : rd.committed_entries) ready_committed_payload_bytes_ += e.data().size();
  r.OnConfChangesHandedOut(rd.committed_entries);
  ready_snapshot_index_ = rd.snapshot ? rd.snapshot->metadata().index() : 0;
  return rd;
}

void RawNode::Advance() {
  RAFT_CHECK_MSG(ready_outstanding_, "Advance() without a Ready");
  ready_outstanding_ = false;
  Raft& r = *raft_;
  if (ready_snapshot_index_ > 0) {
    r.mutable_log().StableSnapTo(ready_snapshot_index_);
    r.OnApplied(ready_snapshot_index_, 0);
  }
  if (ready_last_entry_index_ > 0) r.OnStable(ready_last_entry_index_, ready_last_entry_term_);
  if (ready_last_committed_index_ > 0) {
    r.OnApplied(ready_last_committed_index_, ready_committed_payload_bytes_);
  }
}

SoftState RawNode::GetSoftState() const { return raft_->soft_state(); }

::kvd::raft::Status RawNode::GetStatus() const {
  const Raft& r = *raft_;
  ::kvd::raft::Status st;
  st.id = r.id();
  st.hard_state = r.hard_state();
  st.soft_state = r.soft_state();
  st.applied = r.log().applied();
  st.lead_transferee = r.lead_transferee();
  st.conf_state = r.tracker().ConfState();
  if (r.state() == StateType::kLeader) {
    for (const auto& [id, pr] : r.tracker().progress()) {
      st.progress[id] = PeerStatus{pr.match,      pr.next,          pr.state,
                                   pr.is_learner, pr.recent_active, pr.inflights.Count()};
    }
  }
  return st;
}

std::string Status::DebugString() const {
  std::string s =
      absl::StrCat("id=", id, " term=", hard_state.term(), " vote=", hard_state.vote(),
                   " commit=", hard_state.commit(), " applied=", applied, " lead=", soft_state.lead,
                   " ", StateTypeName(soft_state.raft_state));
  for (const auto& [pid, p] : progress) {
    absl::StrAppend(&s, "\n  ", pid, ": ", ProgressStateName(p.state), " match=", p.match,
                    " next=", p.next, p.is_learner ? " learner" : "");
  }
  return s;
}

}  // namespace kvd::raft
