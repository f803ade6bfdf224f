// Tests of the RawNode surface and the Ready contract of raft/ready.h.
#include "raft/rawnode.h"

#include "gtest/gtest.h"
#include "raft/memory_storage.h"
#include "raft/raft.h"

namespace kvd::raft {
namespace {

struct Single {
  Single() {
    raftpb::ConfState cs;
    cs.add_voters(1);
    storage.SetConfState(cs);
    cfg.id = 1;
    cfg.storage = &storage;
    node = *RawNode::Create(cfg);
  }
  // Handles one Ready the way the contract says; returns it for inspection.
  Ready Handle() {
    Ready rd = node->GetReady();
    if (rd.snapshot) {
      EXPECT_TRUE(storage.ApplySnapshot(*rd.snapshot).ok());
    }
    EXPECT_TRUE(storage.Append(rd.entries).ok());
    if (rd.hard_state) storage.SetHardState(*rd.hard_state);
    node->Advance();
    return rd;
  }
  MemoryStorage storage;
  Config cfg;
  std::unique_ptr<RawNode> node;
};

TEST(ConfigTest, ValidateRejectsBadConfigs) {
  MemoryStorage s;
  Config c;
  c.storage = &s;
  EXPECT_FALSE(RawNode::Create(c).ok());  // id 0
  c.id = 1;
  c.election_tick = 1;
  c.heartbeat_tick = 1;
  EXPECT_FALSE(RawNode::Create(c).ok());
  c.election_tick = 10;
  c.read_only_option = ReadOnlyOption::kLeaseBased;
  EXPECT_FALSE(RawNode::Create(c).ok());  // Leases need check_quorum.
  c.check_quorum = true;
  EXPECT_TRUE(RawNode::Create(c).ok());
}

TEST(RawNodeTest, FreshNodeHasNothingToDo) {
  Single n;
  EXPECT_FALSE(n.node->HasReady());
}

TEST(RawNodeTest, CampaignReadyCarriesHardStateToSyncAndSoftState) {
  Single n;
  ASSERT_TRUE(n.node->Campaign().ok());
  ASSERT_TRUE(n.node->HasReady());
  Ready rd = n.Handle();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 1u);
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_TRUE(rd.must_sync);
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(rd.soft_state->raft_state, StateType::kLeader);
  EXPECT_EQ(rd.entries.size(), 1u);  // The leader's empty entry.
}

TEST(RawNodeTest, LeaderCountsItsOwnEntryOnlyAfterAdvance) {
  Single n;
  ASSERT_TRUE(n.node->Campaign().ok());
  n.Handle();
  ASSERT_TRUE(n.node->Propose("x").ok());
  Ready rd = n.node->GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  for (const auto& e : rd.committed_entries) {
    EXPECT_LT(e.index(), rd.entries[0].index()) << "committed before it was persisted";
  }
  ASSERT_TRUE(n.storage.Append(rd.entries).ok());
  n.node->Advance();
  ASSERT_TRUE(n.node->HasReady());
  Ready next = n.Handle();
  ASSERT_EQ(next.committed_entries.size(), 1u);
  EXPECT_EQ(next.committed_entries[0].data(), "x");
  ASSERT_TRUE(next.hard_state.has_value());
  EXPECT_FALSE(next.must_sync);  // Only the commit index moved.
  EXPECT_FALSE(n.node->HasReady());
}

TEST(RawNodeTest, HasReadyIsFalseWhileAReadyIsOutstanding) {
  Single n;
  ASSERT_TRUE(n.node->Campaign().ok());
  Ready rd = n.node->GetReady();
  EXPECT_FALSE(n.node->HasReady());
  n.node->Advance();
}

TEST(RawNodeTest, StepRejectsLocalAndUnknownPeerMessages) {
  Single n;
  raftpb::Message m;
  m.set_type(raftpb::MSG_HUP);
  EXPECT_TRUE(IsErrStepLocalMsg(n.node->Step(m)));
  m.set_type(raftpb::MSG_APP_RESP);
  m.set_from(9);
  m.set_term(1);
  EXPECT_TRUE(IsErrStepPeerNotFound(n.node->Step(m)));
}

TEST(RawNodeTest, StatusShowsProgressOnlyOnTheLeader) {
  Single n;
  EXPECT_TRUE(n.node->GetStatus().progress.empty());
  ASSERT_TRUE(n.node->Campaign().ok());
  n.Handle();
  ::kvd::raft::Status st = n.node->GetStatus();
  EXPECT_EQ(st.soft_state.raft_state, StateType::kLeader);
  EXPECT_EQ(st.soft_state.lead, 1u);
  ASSERT_EQ(st.progress.size(), 1u);
  EXPECT_EQ(st.progress.at(1).match, 1u);
  EXPECT_EQ(st.conf_state.voters_size(), 1);
  EXPECT_NE(st.DebugString().find("leader"), std::string::npos);
  EXPECT_EQ(n.node->GetSoftState().raft_state, StateType::kLeader);
}

TEST(RawNodeTest, RestartReplaysCommittedButUnappliedEntries) {
  Single n;
  ASSERT_TRUE(n.node->Campaign().ok());
  n.Handle();
  ASSERT_TRUE(n.node->Propose("a").ok());
  n.Handle();
  n.Handle();  // Commits "a" (applied by this Ready).
  ASSERT_EQ(n.storage.hard_state().commit(), 2u);
  // Restart as if the application had applied nothing: everything committed comes back.
  n.cfg.applied = 0;
  n.node = *RawNode::Create(n.cfg);
  ASSERT_TRUE(n.node->HasReady());
  Ready rd = n.Handle();
  ASSERT_EQ(rd.committed_entries.size(), 2u);
  EXPECT_EQ(rd.committed_entries[1].data(), "a");
  // With applied = 2 nothing is replayed.
  n.cfg.applied = 2;
  n.node = *RawNode::Create(n.cfg);
  EXPECT_FALSE(n.node->HasReady());
  EXPECT_EQ(n.node->raft().term(), 1u);
}

TEST(RawNodeTest, CommittedEntriesAreLimitedPerReady) {
  Single n;
  n.cfg.max_committed_size_per_ready = 1;
  n.node = *RawNode::Create(n.cfg);
  ASSERT_TRUE(n.node->Campaign().ok());
  n.Handle();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.node->Propose("x").ok());
  int readies_with_commits = 0;
  while (n.node->HasReady()) {
    Ready rd = n.Handle();
    EXPECT_LE(rd.committed_entries.size(), 1u);
    readies_with_commits += rd.committed_entries.empty() ? 0 : 1;
  }
  EXPECT_EQ(readies_with_commits, 4);  // No-op + 3 proposals, one per Ready.
}

TEST(RawNodeTest, NoCampaignWhileACommittedConfChangeIsUnapplied) {
  MemoryStorage s;
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  s.SetConfState(cs);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
  cc.set_node_id(3);
  std::vector<raftpb::Entry> ents(2);
  ents[0].set_index(1);
  ents[0].set_term(1);
  ents[1].set_index(2);
  ents[1].set_term(1);
  ents[1].set_type(raftpb::ENTRY_CONF_CHANGE);
  ents[1].set_data(cc.SerializeAsString());
  ASSERT_TRUE(s.Append(ents).ok());
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(2);
  s.SetHardState(hs);
  Config cfg;
  cfg.id = 1;
  cfg.storage = &s;
  cfg.applied = 1;
  auto n = *RawNode::Create(cfg);
  // The change (a new voter: quorum 2 of 3 instead of 2 of 2) is committed but not applied:
  // campaigning now would count votes in the wrong configuration.
  for (int i = 0; i < 30; ++i) n->Tick();
  EXPECT_EQ(n->raft().state(), StateType::kFollower);
  // The application applies asynchronously: it calls Advance before ApplyConfChange.
  // Until ApplyConfChange runs the node still must not campaign.
  Ready rd = n->GetReady();
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  n->Advance();
  for (int i = 0; i < 30; ++i) n->Tick();
  EXPECT_EQ(n->raft().state(), StateType::kFollower);
  // Once the change reaches raft, the node campaigns normally.
  raftpb::ConfChange got;
  ASSERT_TRUE(got.ParseFromString(rd.committed_entries[0].data()));
  EXPECT_EQ(n->ApplyConfChange(got).voters_size(), 3);
  for (int i = 0; i < 30; ++i) n->Tick();
  EXPECT_EQ(n->raft().state(), StateType::kCandidate);
}

TEST(RawNodeTest, ConfChangeSupersededByASnapshotIsIgnored) {
  MemoryStorage s;
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  s.SetConfState(cs);
  raftpb::ConfChange add3;
  add3.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
  add3.set_node_id(3);
  std::vector<raftpb::Entry> ents(2);
  ents[0].set_index(1);
  ents[0].set_term(1);
  ents[1].set_index(2);
  ents[1].set_term(1);
  ents[1].set_type(raftpb::ENTRY_CONF_CHANGE);
  ents[1].set_data(add3.SerializeAsString());
  ASSERT_TRUE(s.Append(ents).ok());
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(2);
  s.SetHardState(hs);
  Config cfg;
  cfg.id = 2;
  cfg.storage = &s;
  cfg.applied = 1;
  auto n = *RawNode::Create(cfg);
  // The conf change is handed out; the (asynchronous) application has not applied it yet.
  Ready rd = n->GetReady();
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  n->Advance();
  // Meanwhile the leader sends a snapshot whose membership already moved on (3 came and
  // went).
  raftpb::Message snap;
  snap.set_type(raftpb::MSG_SNAP);
  snap.set_from(1);
  snap.set_to(2);
  snap.set_term(1);
  snap.mutable_snapshot()->mutable_metadata()->set_index(5);
  snap.mutable_snapshot()->mutable_metadata()->set_term(1);
  *snap.mutable_snapshot()->mutable_metadata()->mutable_conf_state() = cs;
  ASSERT_TRUE(n->Step(snap).ok());
  Ready with_snap = n->GetReady();
  ASSERT_TRUE(with_snap.snapshot.has_value());
  ASSERT_TRUE(s.ApplySnapshot(*with_snap.snapshot).ok());
  n->Advance();
  // The late ApplyConfChange for the old entry must not resurrect learner 3.
  raftpb::ConfState after = n->ApplyConfChange(add3);
  EXPECT_EQ(after.learners_size(), 0);
  EXPECT_EQ(after.voters_size(), 2);
  EXPECT_TRUE(n->raft().tracker().learners().empty());
  // And it no longer blocks elections.
  for (int i = 0; i < 30; ++i) n->Tick();
  EXPECT_EQ(n->raft().state(), StateType::kCandidate);
}

TEST(RawNodeTest, LeaderRefusesANewConfChangeUntilThePreviousOneIsApplied) {
  Single n;
  ASSERT_TRUE(n.node->Campaign().ok());
  n.Handle();
  n.Handle();  // The leader's empty entry commits.
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
  cc.set_node_id(2);
  ASSERT_TRUE(n.node->ProposeConfChange(cc).ok());
  n.Handle();             // Persisted...
  Ready rd = n.Handle();  // ...committed and handed out, Advance called...
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  cc.set_node_id(3);  // ...but not applied yet (asynchronous apply).
  EXPECT_TRUE(IsErrProposalDropped(n.node->ProposeConfChange(cc)));
  raftpb::ConfChange first;
  ASSERT_TRUE(first.ParseFromString(rd.committed_entries[0].data()));
  EXPECT_EQ(n.node->ApplyConfChange(first).learners_size(), 1);
  EXPECT_TRUE(n.node->ProposeConfChange(cc).ok());
}

TEST(RawNodeDeathTest, ReadyTwiceWithoutAdvanceDies) {
  Single n;
  ASSERT_TRUE(n.node->Campaign().ok());
  (void)n.node->GetReady();
  EXPECT_DEATH((void)n.node->GetReady(), "before Advance");
}

}  // namespace
}  // namespace kvd::raft
