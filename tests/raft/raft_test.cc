// Tests of the consensus core (raft/raft.cc), one protocol feature per test, each tied to
// the rule of the Raft paper / dissertation it checks. Scenario-style tests that tell a
// longer story live in scenario_test.cc.
#include "raft/raft.h"

#include <algorithm>
#include <set>

#include "gtest/gtest.h"
#include "raft/errors.h"
#include "tests/raft/test_cluster.h"

namespace kvd::raft {
namespace {

using testing::LogTerms;
using testing::TestCluster;

int CountMessages(const TestCluster& c, raftpb::MessageType t, uint64_t from, uint64_t to,
                  bool with_entries_only = false) {
  int n = 0;
  for (const auto& m : c.trace()) {
    if (m.type() == t && (from == 0 || m.from() == from) && (to == 0 || m.to() == to) &&
        (!with_entries_only || m.entries_size() > 0)) {
      ++n;
    }
  }
  return n;
}

// ------------------------------------------------------------------ elections (§5.2)

TEST(ElectionTest, RandomizedTimeoutIsInRangeAndDiffersAcrossNodes) {
  std::set<int> seen;
  for (uint64_t id = 1; id <= 20; ++id) {
    MemoryStorage s;
    raftpb::ConfState cs;
    cs.add_voters(id);
    s.SetConfState(cs);
    Config c;
    c.id = id;
    c.storage = &s;
    c.election_tick = 10;
    c.seed = 7;
    auto rn = RawNode::Create(c);
    ASSERT_TRUE(rn.ok());
    const int t = (*rn)->raft().randomized_election_timeout();
    EXPECT_GE(t, 10);
    EXPECT_LT(t, 20);
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 3u) << "election timeouts are not randomized";
}

TEST(ElectionTest, FollowerCampaignsOnlyAfterItsTimeout) {
  TestCluster c(3);
  const int timeout = c.raft(1).randomized_election_timeout();
  c.Isolate(1);
  c.Tick(1, timeout - 1);
  EXPECT_EQ(c.raft(1).state(), StateType::kFollower);
  c.Tick(1, 1);
  EXPECT_EQ(c.raft(1).state(), StateType::kCandidate);
  EXPECT_EQ(c.raft(1).term(), 1u);
  EXPECT_EQ(c.raft(1).vote(), 1u);
}

TEST(ElectionTest, CandidateWithMajorityBecomesLeader) {
  TestCluster c(5);
  c.Campaign(1);
  EXPECT_EQ(c.raft(1).state(), StateType::kLeader);
  for (uint64_t id = 2; id <= 5; ++id) {
    EXPECT_EQ(c.raft(id).state(), StateType::kFollower);
    EXPECT_EQ(c.raft(id).lead(), 1u);
    EXPECT_EQ(c.raft(id).term(), 1u);
  }
}

TEST(ElectionTest, CandidateWithoutMajorityDoesNotWin) {
  TestCluster c(5);
  c.Cut(1, 3);
  c.Cut(1, 4);
  c.Cut(1, 5);
  c.Campaign(1);
  EXPECT_EQ(c.raft(1).state(), StateType::kCandidate);
}

TEST(ElectionTest, VoterRejectsCandidateWithStaleLog) {
  // §5.4.1: a vote is granted only to a candidate whose log is at least as up to date.
  TestCluster c(3);
  c.SetLog(1, {1}, 1);
  c.SetLog(2, {1, 2}, 2);
  c.SetLog(3, {1, 2}, 2);
  c.Campaign(1);
  EXPECT_NE(c.raft(1).state(), StateType::kLeader);
  c.Campaign(2);
  EXPECT_EQ(c.raft(2).state(), StateType::kLeader);
}

TEST(ElectionTest, AtMostOneVotePerTerm) {
  TestCluster c(3);
  raftpb::Message v;
  v.set_type(raftpb::MSG_VOTE);
  v.set_term(5);
  v.set_from(2);
  v.set_to(1);
  ASSERT_TRUE(c.node(1).Step(v).ok());
  v.set_from(3);
  ASSERT_TRUE(c.node(1).Step(v).ok());
  Ready rd = c.node(1).GetReady();
  ASSERT_EQ(rd.messages.size(), 2u);
  EXPECT_FALSE(rd.messages[0].reject());  // Granted to 2...
  EXPECT_TRUE(rd.messages[1].reject());   // ...so refused to 3 in the same term.
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote(), 2u);
  c.node(1).Advance();
}

TEST(ElectionTest, PlantedDoubleVoteKnobGrantsTwice) {
  TestCluster c(3, [](Config& cfg) { cfg.testing.vote_twice_in_term = true; });
  raftpb::Message v;
  v.set_type(raftpb::MSG_VOTE);
  v.set_term(5);
  v.set_from(2);
  v.set_to(1);
  ASSERT_TRUE(c.node(1).Step(v).ok());
  v.set_from(3);
  ASSERT_TRUE(c.node(1).Step(v).ok());
  Ready rd = c.node(1).GetReady();
  ASSERT_EQ(rd.messages.size(), 2u);
  EXPECT_FALSE(rd.messages[1].reject());
  c.node(1).Advance();
}

// ---------------------------------------------------------------- pre-vote (§9.6)

TEST(PreVoteTest, IsolatedNodeDoesNotInflateItsTerm) {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = true; });
  c.Campaign(1);
  c.Isolate(3);
  c.Tick(3, 100);
  EXPECT_EQ(c.raft(3).state(), StateType::kPreCandidate);
  EXPECT_EQ(c.raft(3).term(), 1u);
}

TEST(PreVoteTest, PreVoteThenVoteWins) {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = true; });
  c.Campaign(1);
  EXPECT_EQ(c.raft(1).state(), StateType::kLeader);
  EXPECT_EQ(c.raft(1).term(), 1u);
  EXPECT_GT(CountMessages(c, raftpb::MSG_PRE_VOTE, 1, 0), 0);
  EXPECT_GT(CountMessages(c, raftpb::MSG_VOTE, 1, 0), 0);
}

// ------------------------------------------------------------ check quorum (§6.2)

TEST(CheckQuorumTest, LeaderThatCannotReachQuorumStepsDown) {
  TestCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.Campaign(1);
  c.Isolate(1);
  c.Tick(1, c.raft(1).election_timeout());
  EXPECT_EQ(c.raft(1).state(), StateType::kLeader);  // One round may still count.
  c.Tick(1, c.raft(1).election_timeout());
  EXPECT_EQ(c.raft(1).state(), StateType::kFollower);
  EXPECT_TRUE(IsErrProposalDropped(c.Propose(1, "x")));
}

TEST(CheckQuorumTest, FollowersInLeaseIgnoreDisruptiveVotes) {
  TestCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.Campaign(1);
  // Node 3 cannot hear the leader but can reach the others.
  c.CutOneWay(1, 3);
  c.Tick(3, 2 * c.raft(3).election_timeout());
  EXPECT_GE(c.raft(3).term(), 2u);
  // The others still hear from 1 and ignored 3's requests: 1 leads in term 1.
  EXPECT_EQ(c.raft(1).state(), StateType::kLeader);
  EXPECT_EQ(c.raft(2).term(), 1u);
}

TEST(CheckQuorumTest, ForgetLeaderEndsTheLeaseEarly) {
  TestCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.Campaign(1);
  c.Isolate(1);
  // Node 2 is in its lease: it refuses to help 3 campaign.
  c.Campaign(3);
  EXPECT_NE(c.raft(3).state(), StateType::kLeader);
  // Told that the leader is gone, it votes at once.
  c.node(2).ForgetLeader();
  c.Campaign(3);
  EXPECT_EQ(c.raft(3).state(), StateType::kLeader);
}

// ------------------------------------------------------------ replication (§5.3)

TEST(ReplicationTest, ProposalsCommitAndApplyEverywhereInOrder) {
  TestCluster c(3);
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "a").ok());
  ASSERT_TRUE(c.Propose(2, "b").ok());  // Forwarded by the follower.
  ASSERT_TRUE(c.Propose(1, "c").ok());
  c.TickAll(1);  // A heartbeat carries the final commit index.
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(c.test_node(id).applied, (std::vector<std::string>{"a", "b", "c"})) << id;
  }
}

TEST(ReplicationTest, FollowerWithoutLeaderOrForwardingDropsProposals) {
  TestCluster c(3);
  absl::Status s = c.Propose(2, "x");
  EXPECT_TRUE(IsErrProposalDropped(s)) << s;
  TestCluster d(3, [](Config& cfg) { cfg.disable_proposal_forwarding = true; });
  d.Campaign(1);
  EXPECT_TRUE(IsErrProposalDropped(d.Propose(2, "x")));
  EXPECT_TRUE(d.Propose(1, "x").ok());
}

TEST(ReplicationTest, LeaderOverwritesConflictingFollowerEntries) {
  TestCluster c(3);
  c.SetLog(1, {1, 1, 3, 3}, 3);
  c.SetLog(2, {1, 1, 3, 3}, 3);
  c.SetLog(3, {1, 2, 2, 2, 2, 2}, 2);
  c.Campaign(1);
  ASSERT_EQ(c.raft(1).state(), StateType::kLeader);
  EXPECT_EQ(LogTerms(c.storage(3)), LogTerms(c.storage(1)));
}

TEST(ReplicationTest, FastBacktrackingSkipsWholeTerms) {
  // The follower's 50 divergent entries are skipped in one or two round trips, not 50.
  std::vector<uint64_t> leader_log = {1}, follower_log = {1};
  for (int i = 0; i < 50; ++i) {
    leader_log.push_back(3);
    follower_log.push_back(2);
  }
  TestCluster c(3);
  c.SetLog(1, leader_log, 3);
  c.SetLog(2, leader_log, 3);
  c.SetLog(3, follower_log, 2);
  c.Campaign(1);
  ASSERT_EQ(c.raft(1).state(), StateType::kLeader);
  int rejects = 0;
  for (const auto& m : c.trace()) {
    if (m.type() == raftpb::MSG_APP_RESP && m.from() == 3 && m.reject()) ++rejects;
  }
  EXPECT_LE(rejects, 2);
  EXPECT_EQ(LogTerms(c.storage(3)), LogTerms(c.storage(1)));
}

TEST(ReplicationTest, InflightWindowBoundsUnacknowledgedAppends) {
  TestCluster c(3, [](Config& cfg) { cfg.max_inflight_msgs = 2; });
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "warm-up").ok());  // Both followers are in the replicate state now.
  c.CutOneWay(2, 1);                          // Node 2's acknowledgements are lost.
  c.ClearTrace();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(c.Propose(1, "p").ok());
  EXPECT_EQ(CountMessages(c, raftpb::MSG_APP, 1, 2, true), 2);  // The window.
  EXPECT_EQ(CountMessages(c, raftpb::MSG_APP, 1, 3, true), 6);  // Pipelined, one per batch.
  // When the window frees up, one append carries everything that queued up.
  c.Recover();
  c.ClearTrace();
  c.TickAll(1);
  EXPECT_EQ(c.test_node(2).applied.size(), 7u);
}

TEST(ReplicationTest, ProposalsBatchIntoOneReadyAndOneAppend) {
  TestCluster c(3, [](Config& cfg) { cfg.max_inflight_msgs = 1; });
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "first").ok());
  // Ten proposals arrive before the node's loop runs: one Ready persists them together.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.node(1).Propose("batched").ok());
  Ready rd = c.node(1).GetReady();
  EXPECT_EQ(rd.entries.size(), 10u);
  // The window (1) allows one append per follower right away...
  int apps_to_2 = 0;
  for (const auto& m : rd.messages) {
    if (m.type() == raftpb::MSG_APP && m.to() == 2) {
      ++apps_to_2;
      EXPECT_EQ(m.entries_size(), 1);
    }
  }
  EXPECT_EQ(apps_to_2, 1);
  ASSERT_TRUE(c.storage(1).Append(rd.entries).ok());
  if (rd.hard_state) c.storage(1).SetHardState(*rd.hard_state);
  for (auto& m : rd.messages) (void)c.node(m.to()).Step(m);
  c.node(1).Advance();
  c.ClearTrace();
  c.Stabilize();
  // ...and the nine that queued behind it travel together in the next one.
  int apps_with_nine = 0;
  for (const auto& m : c.trace()) {
    if (m.type() == raftpb::MSG_APP && m.to() == 2 && m.entries_size() > 0) {
      EXPECT_EQ(m.entries_size(), 9);
      ++apps_with_nine;
    }
  }
  EXPECT_EQ(apps_with_nine, 1);
  c.TickAll(1);
  EXPECT_EQ(c.test_node(3).applied.size(), 11u);
}

TEST(ReplicationTest, FollowerProgressMovesBetweenProbeReplicateAndSnapshot) {
  TestCluster c(3);
  c.Campaign(1);
  auto state_of = [&](uint64_t id) { return c.node(1).GetStatus().progress.at(id).state; };
  // Acknowledged appends turn the initial probe into optimistic replication.
  EXPECT_EQ(state_of(2), ProgressState::kReplicate);
  // An unreachable follower falls back to probing.
  c.node(1).ReportUnreachable(3);
  EXPECT_EQ(state_of(3), ProgressState::kProbe);
  // A follower that needs compacted entries gets a snapshot and waits for it.
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose(1, "x").ok());
  const uint64_t applied = c.test_node(1).applied_index;
  ASSERT_TRUE(c.storage(1).CreateSnapshot(applied, &c.test_node(1).conf, "s").ok());
  ASSERT_TRUE(c.storage(1).Compact(applied).ok());
  c.Recover();
  c.DropType(raftpb::MSG_SNAP);  // The snapshot is "in transfer".
  c.TickAll(1);
  EXPECT_EQ(state_of(3), ProgressState::kSnapshot);
  // A failed transfer returns it to probing, and the next attempt succeeds.
  c.node(1).ReportSnapshot(3, false);
  EXPECT_EQ(state_of(3), ProgressState::kProbe);
  c.Recover();
  c.TickAll(2);
  EXPECT_EQ(state_of(3), ProgressState::kReplicate);
  EXPECT_EQ(c.test_node(3).applied_index, c.test_node(1).applied_index);
}

TEST(ReplicationTest, UncommittedSizeLimitDropsProposals) {
  TestCluster c(3, [](Config& cfg) { cfg.max_uncommitted_entries_size = 10; });
  c.Campaign(1);
  c.Isolate(1);  // Nothing commits.
  EXPECT_TRUE(c.Propose(1, "12345678").ok());
  EXPECT_TRUE(IsErrProposalDropped(c.Propose(1, "12345678")));
  c.Recover();
  c.TickAll(2);
  EXPECT_TRUE(c.Propose(1, "12345678").ok());  // Room again once applied.
}

// ------------------------------------------------------------- snapshots (§7)

TEST(SnapshotTest, FollowerTooFarBehindGetsASnapshot) {
  TestCluster c(3);
  c.Campaign(1);
  c.Isolate(3);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.Propose(1, "e" + std::to_string(i)).ok());
  // The leader's application snapshots at its applied index and compacts its log.
  const uint64_t applied = c.test_node(1).applied_index;
  ASSERT_TRUE(c.storage(1).CreateSnapshot(applied, &c.test_node(1).conf, "state").ok());
  ASSERT_TRUE(c.storage(1).Compact(applied).ok());
  c.Recover();
  c.ClearTrace();
  c.TickAll(3);
  EXPECT_EQ(CountMessages(c, raftpb::MSG_SNAP, 1, 3), 1);
  EXPECT_EQ(c.test_node(3).applied_index, c.test_node(1).applied_index);
  EXPECT_EQ(c.storage(3).Snapshot()->data(), "state");
  ASSERT_TRUE(c.Propose(1, "after").ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(3).applied.back(), "after");
}

TEST(SnapshotTest, TemporarilyUnavailableSnapshotIsRetried) {
  // Storage that has no snapshot ready the first few times it is asked.
  class FlakySnapshots : public Storage {
   public:
    explicit FlakySnapshots(MemoryStorage* s) : s_(s) {}
    absl::StatusOr<PersistedState> InitialState() const override { return s_->InitialState(); }
    absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                       uint64_t max) const override {
      return s_->Entries(lo, hi, max);
    }
    absl::StatusOr<uint64_t> Term(uint64_t i) const override { return s_->Term(i); }
    absl::StatusOr<uint64_t> FirstIndex() const override { return s_->FirstIndex(); }
    absl::StatusOr<uint64_t> LastIndex() const override { return s_->LastIndex(); }
    absl::StatusOr<raftpb::Snapshot> Snapshot() const override {
      if (++calls_ <= 2) return ErrSnapshotTemporarilyUnavailable();
      return s_->Snapshot();
    }
    mutable int calls_ = 0;

   private:
    MemoryStorage* s_;
  };
  MemoryStorage ms;
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  ms.SetConfState(cs);
  std::vector<raftpb::Entry> ents;
  for (uint64_t i = 1; i <= 5; ++i) {
    raftpb::Entry e;
    e.set_index(i);
    e.set_term(1);
    ents.push_back(e);
  }
  ASSERT_TRUE(ms.Append(ents).ok());
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_commit(5);
  ms.SetHardState(hs);
  ASSERT_TRUE(ms.CreateSnapshot(5, &cs, "s").ok());
  ASSERT_TRUE(ms.Compact(5).ok());
  FlakySnapshots flaky(&ms);
  Config cfg;
  cfg.id = 1;
  cfg.storage = &flaky;
  cfg.applied = 5;
  auto leader = RawNode::Create(cfg);
  ASSERT_TRUE(leader.ok());
  ASSERT_TRUE((*leader)->Campaign().ok());
  // Node 2 grants the vote (fake it), then rejects the probe since it has nothing.
  raftpb::Message vote;
  vote.set_type(raftpb::MSG_VOTE_RESP);
  vote.set_from(2);
  vote.set_to(1);
  vote.set_term(2);
  ASSERT_TRUE((*leader)->Step(vote).ok());
  ASSERT_EQ((*leader)->raft().state(), StateType::kLeader);
  bool sent_snap = false;
  for (int round = 0; round < 5 && !sent_snap; ++round) {
    raftpb::Message resp;
    resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
    resp.set_from(2);
    resp.set_to(1);
    resp.set_term(2);
    ASSERT_TRUE((*leader)->Step(resp).ok());
    raftpb::Message rej;
    rej.set_type(raftpb::MSG_APP_RESP);
    rej.set_from(2);
    rej.set_to(1);
    rej.set_term(2);
    rej.set_reject(true);
    rej.set_index((*leader)->raft().tracker().progress().at(2).next - 1);
    rej.set_reject_hint(0);
    ASSERT_TRUE((*leader)->Step(rej).ok());
    Ready rd = (*leader)->GetReady();
    for (const auto& m : rd.messages) sent_snap |= m.type() == raftpb::MSG_SNAP;
    ASSERT_TRUE(ms.Append(rd.entries).ok());
    (*leader)->Advance();
  }
  EXPECT_TRUE(sent_snap);
  EXPECT_GE(flaky.calls_, 3);
}

// ----------------------------------------------------------------- ReadIndex (§6.4)

TEST(ReadIndexTest, AnswersAfterAHeartbeatQuorum) {
  TestCluster c(3);
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "x").ok());
  c.DropType(raftpb::MSG_HEARTBEAT_RESP);
  ASSERT_TRUE(c.node(1).ReadIndex("ctx1").ok());
  c.Stabilize();
  EXPECT_TRUE(c.test_node(1).read_states.empty());
  c.Recover();
  c.TickAll(1);  // The next heartbeat round carries the pending request's context.
  ASSERT_EQ(c.test_node(1).read_states.size(), 1u);
  EXPECT_EQ(c.test_node(1).read_states[0].request_ctx, "ctx1");
  EXPECT_EQ(c.test_node(1).read_states[0].index, c.raft(1).log().committed());
}

TEST(ReadIndexTest, FollowerReadIsForwardedAndAnswered) {
  TestCluster c(3);
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "x").ok());
  ASSERT_TRUE(c.node(3).ReadIndex("f").ok());
  c.Stabilize();
  ASSERT_EQ(c.test_node(3).read_states.size(), 1u);
  EXPECT_GE(c.test_node(3).read_states[0].index, 2u);
}

TEST(ReadIndexTest, NewLeaderWaitsForAnEntryOfItsTerm) {
  TestCluster c(3);
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "x").ok());
  // Node 2 wins term 2, but its no-op is not acknowledged yet.
  c.DropType(raftpb::MSG_APP_RESP);
  c.Campaign(2);
  ASSERT_EQ(c.raft(2).state(), StateType::kLeader);
  ASSERT_TRUE(c.node(2).ReadIndex("early").ok());
  c.Stabilize();
  EXPECT_TRUE(c.test_node(2).read_states.empty());
  c.Recover();
  c.TickAll(2);
  ASSERT_EQ(c.test_node(2).read_states.size(), 1u);
  EXPECT_EQ(c.test_node(2).read_states[0].index, c.raft(2).log().committed());
}

TEST(ReadIndexTest, LeaseBasedReadAnswersWithoutARound) {
  TestCluster c(3, [](Config& cfg) {
    cfg.check_quorum = true;
    cfg.read_only_option = ReadOnlyOption::kLeaseBased;
  });
  c.Campaign(1);
  c.DropType(raftpb::MSG_HEARTBEAT_RESP);
  ASSERT_TRUE(c.node(1).ReadIndex("lease").ok());
  c.Stabilize();
  EXPECT_EQ(c.test_node(1).read_states.size(), 1u);
}

// ------------------------------------------------------ leadership transfer (§3.10)

TEST(TransferTest, TransfersToUpToDateFollower) {
  TestCluster c(3);
  c.Campaign(1);
  ASSERT_TRUE(c.node(1).TransferLeader(2).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(2).state(), StateType::kLeader);
  EXPECT_EQ(c.raft(2).term(), 2u);
  EXPECT_EQ(c.raft(1).lead(), 2u);
}

TEST(TransferTest, RequestThroughFollowerIsForwarded) {
  TestCluster c(3);
  c.Campaign(1);
  ASSERT_TRUE(c.node(3).TransferLeader(3).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(3).state(), StateType::kLeader);
}

TEST(TransferTest, AbortsAfterAnElectionTimeoutAndAcceptsProposalsAgain) {
  TestCluster c(3);
  c.Campaign(1);
  c.Isolate(3);
  ASSERT_TRUE(c.node(1).TransferLeader(3).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).lead_transferee(), 3u);
  absl::Status s = c.Propose(1, "during");
  EXPECT_TRUE(IsErrProposalDropped(s));
  EXPECT_NE(s.message().find("transfer"), std::string::npos);
  c.Tick(1, c.raft(1).election_timeout());
  EXPECT_EQ(c.raft(1).lead_transferee(), kNone);
  EXPECT_TRUE(c.Propose(1, "after").ok());
}

TEST(TransferTest, TimeoutNowCampaignIgnoresLeases) {
  TestCluster c(3, [](Config& cfg) {
    cfg.check_quorum = true;
    cfg.pre_vote = true;
  });
  c.Campaign(1);
  ASSERT_TRUE(c.node(1).TransferLeader(2).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(2).state(), StateType::kLeader);
}

// ------------------------------------------------------------------- learners

TEST(LearnerTest, LearnerReplicatesButNeverVotesOrCampaigns) {
  TestCluster c(3, {}, {4});
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "x").ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(4).applied, std::vector<std::string>{"x"});
  EXPECT_TRUE(c.raft(4).is_learner());
  c.Isolate(4);
  c.Tick(4, 100);
  EXPECT_EQ(c.raft(4).state(), StateType::kFollower);
  EXPECT_EQ(c.raft(4).term(), 1u);
  // Quorum is 2 of the 3 voters: the learner does not count.
  c.Recover();
  c.Isolate(2);
  c.Isolate(3);
  ASSERT_TRUE(c.Propose(1, "y").ok());
  EXPECT_EQ(c.raft(1).log().committed(), 2u);
}

// --------------------------------------------------------- membership (§4.1)

TEST(MembershipTest, OnlyOneChangeAtATime) {
  TestCluster c(3);
  c.Campaign(1);
  c.TickAll(1);
  c.AddNewNode(4);
  c.Isolate(2);
  c.Isolate(3);  // The first change cannot commit.
  EXPECT_TRUE(c.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 4).ok());
  absl::Status s = c.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_NODE, 5);
  EXPECT_TRUE(IsErrProposalDropped(s)) << s;
  c.Recover();
  c.TickAll(2);
  EXPECT_TRUE(c.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_NODE, 4).ok());
}

TEST(MembershipTest, NoChangeBeforeLeaderCommitsInItsTerm) {
  TestCluster c(3);
  c.DropType(raftpb::MSG_APP_RESP);
  c.Campaign(1);
  ASSERT_EQ(c.raft(1).state(), StateType::kLeader);
  EXPECT_TRUE(IsErrProposalDropped(c.ProposeConfChange(1, raftpb::CONF_CHANGE_REMOVE_NODE, 3)));
  c.Recover();
  c.TickAll(1);
  EXPECT_TRUE(c.ProposeConfChange(1, raftpb::CONF_CHANGE_REMOVE_NODE, 3).ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(1).conf.voters_size(), 2);
}

TEST(MembershipTest, ConfChangeV2WithSeveralChangesIsRejected) {
  TestCluster c(3);
  c.Campaign(1);
  raftpb::ConfChangeV2 cc;
  cc.add_changes()->set_node_id(4);
  cc.add_changes()->set_node_id(5);
  EXPECT_EQ(c.node(1).ProposeConfChange(cc).code(), absl::StatusCode::kInvalidArgument);
  raftpb::ConfChangeV2 one;
  one.add_changes()->set_node_id(4);
  one.mutable_changes(0)->set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
  c.AddNewNode(4);
  EXPECT_TRUE(c.node(1).ProposeConfChange(one).ok());
  c.Stabilize();
  c.TickAll(1);
  EXPECT_EQ(c.test_node(1).conf.learners_size(), 1);
  EXPECT_TRUE(c.raft(4).is_learner());
}

TEST(MembershipTest, AddedVoterChangesTheQuorum) {
  TestCluster c(1);
  c.Campaign(1);
  ASSERT_EQ(c.raft(1).state(), StateType::kLeader);
  c.AddNewNode(2);
  ASSERT_TRUE(c.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_NODE, 2).ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(2).conf.voters_size(), 2);
  // With two voters a commit needs both.
  c.Isolate(2);
  ASSERT_TRUE(c.Propose(1, "needs-both").ok());
  EXPECT_TRUE(c.test_node(1).applied.empty());
  c.Recover();
  c.TickAll(1);
  EXPECT_EQ(c.test_node(1).applied, std::vector<std::string>{"needs-both"});
}

}  // namespace
}  // namespace kvd::raft
