// Scenarios a reader can follow: each test tells one story from the Raft paper or from
// operating a cluster, step by step, and checks the outcome Raft promises.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "raft/errors.h"
#include "raft/raft.h"
#include "tests/raft/test_cluster.h"

namespace kvd::raft {
namespace {

using testing::LogTerms;
using testing::TestCluster;

// Campaigns until the node wins (a first attempt may only teach it the current term).
void CampaignUntilLeader(TestCluster& c, uint64_t id) {
  for (int i = 0; i < 4 && c.raft(id).state() != StateType::kLeader; ++i) c.Campaign(id);
  ASSERT_EQ(c.raft(id).state(), StateType::kLeader);
}

// Figure 7 of the Raft paper: when the leader of term 8 comes to power, followers' logs
// may be missing entries (a, b), have extra uncommitted entries (c, d), or both (e, f).
// The leader forces every follower's log to match its own.
TEST(ScenarioTest, Figure7LeaderBringsEveryFollowerLogInLine) {
  const std::vector<uint64_t> leader = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},           // (a) missing one entry
      {1, 1, 1, 4},                          // (b) missing many
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},     // (c) one extra entry of term 6
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},  // (d) extra entries of term 7
      {1, 1, 1, 4, 4, 4, 4},                 // (e) missing and extra
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},     // (f) a leader of terms 2-3 that failed
  };
  for (size_t i = 0; i < followers.size(); ++i) {
    SCOPED_TRACE("follower " + std::string(1, static_cast<char>('a' + i)));
    TestCluster c(3);
    c.SetLog(1, leader, 7);
    c.SetLog(2, followers[i], 7);
    c.SetLog(3, {}, 7);  // A voter with an empty log: it votes for the leader.
    c.Campaign(1);
    ASSERT_EQ(c.raft(1).state(), StateType::kLeader);
    ASSERT_EQ(c.raft(1).term(), 8u);
    c.TickAll(1);
    std::vector<uint64_t> want = leader;
    want.push_back(8);  // The leader's empty entry of term 8.
    EXPECT_EQ(LogTerms(c.storage(2)), want);
    EXPECT_EQ(c.raft(2).log().committed(), 11u);
  }
}

// Figure 8: a leader must not commit an entry of an earlier term by counting replicas.
//   (a) S1 leads term 1 and replicates index 2 only to S2.
//   (b) S1 is cut off; S5 wins term 2 with S3, S4 and appends index 2 (term 2) alone.
//   (c) S5 is cut off; S1 wins term 3 and replicates its index 2 (term 1) to S3: now on
//       a majority, but NOT committed, because it is not of S1's term.
//   (d) S1 is cut off before its own entry spreads; S5 wins term 4 and overwrites index 2
//       everywhere. That is safe precisely because (c) did not commit it.
TEST(ScenarioTest, Figure8EntryOfOlderTermIsNotCommittedByCounting) {
  TestCluster c(5, [](Config& cfg) { cfg.max_size_per_msg = 0; });  // One entry per append.
  // (a)
  c.Campaign(1);
  ASSERT_EQ(c.raft(1).state(), StateType::kLeader);
  const uint64_t t1 = c.raft(1).term();
  c.TickAll(1);
  const uint64_t base = c.raft(1).log().LastIndex();  // Everyone has [1..base].
  ASSERT_EQ(c.raft(5).log().LastIndex(), base);
  c.Isolate(3);
  c.Isolate(4);
  c.Isolate(5);
  ASSERT_TRUE(c.Propose(1, "s1-old").ok());
  const uint64_t i2 = base + 1;
  ASSERT_EQ(c.raft(2).log().LastIndex(), i2);
  ASSERT_EQ(c.raft(1).log().committed(), base);
  // (b) S5 wins with S3 and S4 (S2 has a longer log and would refuse), and its entry at
  // i2 reaches nobody.
  c.Recover();
  c.Isolate(1);
  c.Cut(5, 2);
  c.SetFilter([](raftpb::Message& m) { return m.from() == 5 && m.type() == raftpb::MSG_APP; });
  c.Campaign(5);
  ASSERT_EQ(c.raft(5).state(), StateType::kLeader);
  ASSERT_TRUE(c.node(5).Propose("s5").ok());
  c.Stabilize();
  ASSERT_EQ(c.raft(5).log().LastIndex(), i2 + 1);
  // (c) S5 is cut off. S1 campaigns: S2, S3 (and S4) vote for it.
  c.Recover();
  c.Isolate(5);
  // S1's appends reach S2 and S3 but only carry entries up to i2, never its own new entry.
  c.SetFilter([&](raftpb::Message& m) {
    if (m.type() != raftpb::MSG_APP) return false;
    if (m.to() == 4) return true;
    while (m.entries_size() > 0 && m.entries(m.entries_size() - 1).index() > i2) {
      m.mutable_entries()->RemoveLast();
    }
    return false;
  });
  c.Restart(1);  // S1 crashed and comes back as a follower.
  CampaignUntilLeader(c, 1);
  const uint64_t t3 = c.raft(1).term();
  ASSERT_GT(t3, t1);
  c.TickAll(2);
  ASSERT_EQ(c.raft(3).log().ZeroTermOnOutOfRange(i2), t1) << "S3 holds S1's old entry";
  int holders = 0;
  for (uint64_t id = 1; id <= 5; ++id) holders += c.raft(id).log().ZeroTermOnOutOfRange(i2) == t1;
  EXPECT_GE(holders, 3) << "the old entry is on a majority";
  EXPECT_LT(c.raft(1).log().committed(), i2) << "but it must not count as committed";
  // (d) S1 is cut off; S5 campaigns and wins (its last term is higher than S2-S4's).
  c.Recover();
  c.Isolate(1);
  c.Restart(5);
  CampaignUntilLeader(c, 5);
  c.TickAll(2);
  for (uint64_t id = 2; id <= 5; ++id) {
    EXPECT_EQ(*c.raft(id).log().Term(i2), *c.raft(5).log().Term(i2)) << id;
    for (const std::string& s : c.test_node(id).applied) EXPECT_NE(s, "s1-old");
  }
  // (e) The alternative ending: had S1 replicated an entry of its own term to a majority,
  // that entry and everything before it would be committed, and S5 could not win.
}

// Figure 8 (e): once the leader's own-term entry is on a majority, older entries commit
// with it.
TEST(ScenarioTest, Figure8OwnTermEntryCommitsOlderOnes) {
  TestCluster c(3);
  c.Campaign(1);
  c.Isolate(2);
  c.Isolate(3);
  ASSERT_TRUE(c.Propose(1, "old").ok());  // Only on S1.
  c.Recover();
  c.Isolate(3);
  c.Campaign(1);  // New term; S2 votes for it.
  ASSERT_EQ(c.raft(1).state(), StateType::kLeader);
  c.TickAll(1);
  EXPECT_EQ(c.test_node(1).applied, std::vector<std::string>{"old"});
  EXPECT_EQ(c.test_node(2).applied, std::vector<std::string>{"old"});
}

// An isolated leader must not serve reads: the other side may have elected a new leader
// and committed writes it cannot know about.
TEST(ScenarioTest, IsolatedLeaderDoesNotAnswerReadIndex) {
  TestCluster c(5, [](Config& cfg) { cfg.check_quorum = true; });
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "v1").ok());
  c.Isolate(1);
  ASSERT_TRUE(c.node(1).ReadIndex("stale?").ok());
  // The majority side stops hearing from 1 and elects a new leader on its own.
  c.TickAll(25);
  const uint64_t l = c.Leader();
  ASSERT_NE(l, 1u);
  ASSERT_NE(l, 0u);
  ASSERT_TRUE(c.Propose(l, "v2").ok());
  c.TickAll(30);
  EXPECT_TRUE(c.test_node(1).read_states.empty()) << "old leader answered a read";
  EXPECT_NE(c.raft(1).state(), StateType::kLeader) << "check-quorum should step it down";
  // The new leader answers, at an index that includes v2.
  ASSERT_TRUE(c.node(l).ReadIndex("fresh").ok());
  c.TickAll(1);
  ASSERT_EQ(c.test_node(l).read_states.size(), 1u);
  EXPECT_GE(c.test_node(l).read_states[0].index, c.raft(l).log().committed());
  EXPECT_EQ(c.test_node(l).applied.back(), "v2");
}

// The leader removes itself: it keeps leading until the removal is applied, then steps
// down, never campaigns again, and the others carry on.
TEST(ScenarioTest, RemovedLeaderStepsDownAndTheRestContinue) {
  TestCluster c(3);
  c.Campaign(1);
  c.TickAll(1);
  ASSERT_TRUE(c.ProposeConfChange(1, raftpb::CONF_CHANGE_REMOVE_NODE, 1).ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(2).conf.voters_size(), 2);
  EXPECT_NE(c.raft(1).state(), StateType::kLeader);
  EXPECT_FALSE(c.raft(1).promotable());
  c.TickAll(40);
  const uint64_t leader = c.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  ASSERT_TRUE(c.Propose(leader, "after-removal").ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(2).applied.back(), "after-removal");
  EXPECT_EQ(c.test_node(3).applied.back(), "after-removal");
  EXPECT_NE(c.raft(1).state(), StateType::kCandidate);
}

// A new member joins as a learner, catches up without affecting quorum, then is promoted
// and becomes part of it.
TEST(ScenarioTest, LearnerCatchesUpAndIsPromoted) {
  TestCluster c(3);
  c.Campaign(1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose(1, "e" + std::to_string(i)).ok());
  c.AddNewNode(4);
  ASSERT_TRUE(c.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_LEARNER_NODE, 4).ok());
  c.TickAll(2);
  EXPECT_TRUE(c.raft(4).is_learner());
  // It caught up through a snapshot (taken when the membership changed) ...
  EXPECT_EQ(c.test_node(4).applied_index, c.test_node(1).applied_index);
  EXPECT_EQ(c.test_node(4).conf.voters_size(), 3);
  // ... and then receives new entries like any follower.
  ASSERT_TRUE(c.Propose(1, "for-the-learner").ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(4).applied, std::vector<std::string>{"for-the-learner"});
  EXPECT_EQ(c.raft(1).tracker().Quorum(), 2u);
  ASSERT_TRUE(c.ProposeConfChange(1, raftpb::CONF_CHANGE_ADD_NODE, 4).ok());
  c.TickAll(2);
  EXPECT_FALSE(c.raft(4).is_learner());
  EXPECT_TRUE(c.raft(4).promotable());
  EXPECT_EQ(c.raft(1).tracker().Quorum(), 3u);
  // Now node 4 can lead.
  ASSERT_TRUE(c.node(1).TransferLeader(4).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(4).state(), StateType::kLeader);
}

// A node partitioned away keeps timing out. Without pre-vote it returns with a higher
// term and deposes a healthy leader; with pre-vote the leader stays.
TEST(ScenarioTest, RejoiningNodeWithPreVoteKeepsTheLeader) {
  for (bool pre_vote : {false, true}) {
    SCOPED_TRACE(pre_vote ? "pre-vote" : "no pre-vote");
    TestCluster c(3, [&](Config& cfg) { cfg.pre_vote = pre_vote; });
    c.Campaign(1);
    ASSERT_TRUE(c.Propose(1, "x").ok());
    c.Isolate(3);
    c.Tick(3, 60);  // Several election timeouts alone.
    ASSERT_TRUE(c.Propose(1, "y").ok());
    c.Recover();
    c.Tick(3, 25);  // It times out again, now connected.
    c.TickAll(1);
    if (pre_vote) {
      EXPECT_EQ(c.raft(1).state(), StateType::kLeader);
      EXPECT_EQ(c.raft(1).term(), 1u);
    } else {
      EXPECT_GT(c.raft(1).term(), 1u) << "the rejoining node forced a new term";
    }
    // Either way, node 3's log ends up with everything committed.
    c.TickAll(30);
    EXPECT_EQ(c.test_node(3).applied, (std::vector<std::string>{"x", "y"}));
  }
}

// Leadership is transferred to a node that is behind: the leader first catches it up,
// refusing proposals meanwhile, then sends TimeoutNow.
TEST(ScenarioTest, TransferToLaggingNode) {
  TestCluster c(3);
  c.Campaign(1);
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Propose(1, "e" + std::to_string(i)).ok());
  ASSERT_LT(c.raft(3).log().LastIndex(), c.raft(1).log().LastIndex());
  // Only appends reach node 3 for now, and its answers are held back.
  c.Recover();
  c.CutOneWay(3, 1);
  ASSERT_TRUE(c.node(1).TransferLeader(3).ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).lead_transferee(), 3u);
  EXPECT_TRUE(IsErrProposalDropped(c.Propose(1, "during-transfer")));
  EXPECT_EQ(c.raft(1).state(), StateType::kLeader);
  c.Recover();
  c.TickAll(1);  // Heartbeat -> response -> catch-up -> TimeoutNow -> election.
  EXPECT_EQ(c.raft(3).state(), StateType::kLeader);
  EXPECT_EQ(c.raft(3).log().LastIndex(), c.raft(1).log().LastIndex());
  ASSERT_TRUE(c.Propose(3, "after").ok());
  c.TickAll(1);
  EXPECT_EQ(c.test_node(1).applied.back(), "after");
}

}  // namespace
}  // namespace kvd::raft
