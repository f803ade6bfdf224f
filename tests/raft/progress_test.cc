#include "raft/progress.h"

#include "gtest/gtest.h"

namespace kvd::raft {
namespace {

TEST(InflightsTest, WindowFillsAndFreesInOrder) {
  Inflights in(3);
  in.Add(5);
  in.Add(7);
  in.Add(9);
  EXPECT_TRUE(in.Full());
  in.FreeLE(6);
  EXPECT_EQ(in.Count(), 2u);
  in.Add(11);  // Wraps around the ring.
  EXPECT_TRUE(in.Full());
  in.FreeLE(100);
  EXPECT_EQ(in.Count(), 0u);
}

TEST(ProgressTest, ProbeSendsOneMessageAtATime) {
  Progress pr(5, 4, false);
  EXPECT_FALSE(pr.IsPaused());
  pr.msg_app_flow_paused = true;
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_TRUE(pr.MaybeUpdate(4));  // An acknowledgement unpauses.
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_EQ(pr.next, 5u);
}

TEST(ProgressTest, ReplicateIsPausedByAFullWindow) {
  Progress pr(1, 2, false);
  pr.BecomeReplicate();
  pr.inflights.Add(1);
  EXPECT_FALSE(pr.IsPaused());
  pr.inflights.Add(2);
  EXPECT_TRUE(pr.IsPaused());
}

TEST(ProgressTest, MaybeDecrToIgnoresStaleRejections) {
  Progress pr(10, 4, false);
  pr.match = 5;
  pr.BecomeReplicate();
  pr.next = 9;
  EXPECT_FALSE(pr.MaybeDecrTo(4, 4));  // Below match: stale.
  EXPECT_TRUE(pr.MaybeDecrTo(7, 7));
  EXPECT_EQ(pr.next, 6u);  // Back to match + 1.

  Progress probe(10, 4, false);
  EXPECT_FALSE(probe.MaybeDecrTo(5, 2));  // Not the last probe (next-1 = 9).
  EXPECT_TRUE(probe.MaybeDecrTo(9, 2));   // Jump to the hint.
  EXPECT_EQ(probe.next, 3u);
}

TEST(ProgressTest, SnapshotPausesUntilReported) {
  Progress pr(3, 4, false);
  pr.BecomeSnapshot(20);
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeProbe();
  EXPECT_EQ(pr.next, 21u);
}

TEST(ProgressTrackerTest, CommittedIsTheMajorityMatch) {
  ProgressTracker t(8);
  for (uint64_t id = 1; id <= 5; ++id) t.AddVoter(id, 1);
  t.AddLearner(6, 1);
  uint64_t matches[] = {0, 9, 7, 5, 3, 1};
  for (uint64_t id = 1; id <= 5; ++id) t.Get(id)->match = matches[id];
  t.Get(6)->match = 100;  // Learners never count.
  EXPECT_EQ(t.Committed(), 5u);
}

TEST(ProgressTrackerTest, TallyVotes) {
  ProgressTracker t(8);
  for (uint64_t id = 1; id <= 3; ++id) t.AddVoter(id, 1);
  t.RecordVote(1, true);
  EXPECT_EQ(t.TallyVotes(nullptr, nullptr), VoteResult::kPending);
  t.RecordVote(2, false);
  EXPECT_EQ(t.TallyVotes(nullptr, nullptr), VoteResult::kPending);
  t.RecordVote(2, true);  // A later, contradicting answer does not count.
  EXPECT_EQ(t.TallyVotes(nullptr, nullptr), VoteResult::kPending);
  t.RecordVote(3, false);
  EXPECT_EQ(t.TallyVotes(nullptr, nullptr), VoteResult::kLost);
  t.ResetVotes();
  t.RecordVote(1, true);
  t.RecordVote(3, true);
  EXPECT_EQ(t.TallyVotes(nullptr, nullptr), VoteResult::kWon);
}

TEST(ProgressTrackerTest, PromoteAndDemoteKeepProgress) {
  ProgressTracker t(8);
  t.AddVoter(1, 1);
  t.AddLearner(2, 1);
  t.Get(2)->match = 7;
  t.AddVoter(2, 1);
  EXPECT_TRUE(t.IsVoter(2));
  EXPECT_EQ(t.Get(2)->match, 7u);
  EXPECT_FALSE(t.Get(2)->is_learner);
  EXPECT_TRUE(t.learners().empty());
  t.Remove(2);
  EXPECT_EQ(t.Get(2), nullptr);
  EXPECT_EQ(t.ConfState().voters_size(), 1);
}

}  // namespace
}  // namespace kvd::raft
