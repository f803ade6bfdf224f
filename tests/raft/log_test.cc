#include "raft/log.h"

#include "gtest/gtest.h"
#include "raft/errors.h"
#include "raft/memory_storage.h"

namespace kvd::raft {
namespace {

std::vector<raftpb::Entry> Ents(uint64_t first_index, std::vector<uint64_t> terms) {
  std::vector<raftpb::Entry> out;
  for (size_t i = 0; i < terms.size(); ++i) {
    raftpb::Entry e;
    e.set_index(first_index + i);
    e.set_term(terms[i]);
    out.push_back(e);
  }
  return out;
}

TEST(RaftLogTest, AppendIsVisibleBeforePersistence) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  EXPECT_EQ(log.LastIndex(), 0u);
  log.Append(Ents(1, {1, 1, 2}));
  EXPECT_EQ(log.LastIndex(), 3u);
  EXPECT_EQ(log.LastTerm(), 2u);
  EXPECT_EQ(log.UnstableEntries().size(), 3u);
  // Persist and acknowledge: the unstable tail empties.
  ASSERT_TRUE(s.Append(log.UnstableEntries()).ok());
  log.StableTo(3, 2);
  EXPECT_FALSE(log.HasUnstable());
  EXPECT_EQ(*log.Term(2), 1u);
}

TEST(RaftLogTest, StableToIgnoresReplacedEntries) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(1, {1, 1}));
  log.Append(Ents(2, {2}));  // Replaces index 2 before the old one was persisted.
  log.StableTo(2, 1);        // Acknowledgement for the replaced entry: ignored.
  EXPECT_TRUE(log.HasUnstable());
}

TEST(RaftLogTest, FindConflict) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(1, {1, 2, 3}));
  EXPECT_EQ(log.FindConflict(Ents(1, {1, 2, 3})), 0u);
  EXPECT_EQ(log.FindConflict(Ents(2, {2, 3, 4})), 4u);  // New entry.
  EXPECT_EQ(log.FindConflict(Ents(2, {1, 4})), 2u);     // Term mismatch.
}

TEST(RaftLogTest, MaybeAppendChecksPreviousEntryAndCommits) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(1, {1, 2, 3}));
  // Mismatching previous term: rejected.
  EXPECT_FALSE(log.MaybeAppend(3, 2, 3, Ents(4, {4})).has_value());
  // Previous entry beyond the log: rejected.
  EXPECT_FALSE(log.MaybeAppend(4, 3, 3, {}).has_value());
  // Matching: appended, commit = min(leader commit, last new index).
  auto last = log.MaybeAppend(3, 3, 10, Ents(4, {4, 4}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 5u);
  EXPECT_EQ(log.committed(), 5u);
  // A conflicting suffix beyond the commit index is replaced.
  log.Append(Ents(6, {4}));
  auto again = log.MaybeAppend(5, 4, 5, Ents(6, {5}));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*log.Term(6), 5u);
}

TEST(RaftLogTest, IsUpToDateComparesLastTermThenIndex) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(1, {1, 2, 3}));
  EXPECT_TRUE(log.IsUpToDate(1, 4));
  EXPECT_FALSE(log.IsUpToDate(10, 2));
  EXPECT_TRUE(log.IsUpToDate(3, 3));
  EXPECT_FALSE(log.IsUpToDate(2, 3));
}

TEST(RaftLogTest, FindConflictByTermSkipsWholeTerms) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(1, {1, 1, 4, 4, 4, 6, 6}));
  EXPECT_EQ(log.FindConflictByTerm(7, 5), std::make_pair(uint64_t{5}, uint64_t{4}));
  EXPECT_EQ(log.FindConflictByTerm(7, 2), std::make_pair(uint64_t{2}, uint64_t{1}));
  EXPECT_EQ(log.FindConflictByTerm(7, 6), std::make_pair(uint64_t{7}, uint64_t{6}));
}

TEST(RaftLogTest, LeaderCommitsOnlyEntriesOfItsTerm) {
  // Figure 8: an entry of an older term is never committed by counting replicas.
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(1, {1, 2, 4}));
  EXPECT_FALSE(log.MaybeCommit(2, 4));
  EXPECT_EQ(log.committed(), 0u);
  EXPECT_TRUE(log.MaybeCommit(3, 4));
  EXPECT_EQ(log.committed(), 3u);
}

TEST(RaftLogTest, SliceSpansStableAndUnstableAndReportsCompaction) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Ents(1, {1, 1, 1, 1})).ok());
  ASSERT_TRUE(s.Compact(2).ok());
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(5, {2, 2}));
  auto all = log.Slice(3, 7, kNoLimit);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ(all->front().index(), 3u);
  EXPECT_EQ(all->back().index(), 6u);
  EXPECT_TRUE(IsErrCompacted(log.Slice(2, 4, kNoLimit).status()));
  EXPECT_EQ(*log.Term(2), 1u);
  EXPECT_TRUE(IsErrCompacted(log.Term(1).status()));
}

TEST(RaftLogTest, NextCommittedEntriesRespectsSizeLimit) {
  MemoryStorage s;
  RaftLog log(&s, 1);  // At most one entry per batch (always at least one).
  log.Append(Ents(1, {1, 1, 1}));
  log.CommitTo(3);
  EXPECT_EQ(log.NextCommittedEntries().size(), 1u);
  log.AppliedTo(1);
  EXPECT_EQ(log.NextCommittedEntries().front().index(), 2u);
}

TEST(RaftLogTest, RestoreFromSnapshot) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Ents(1, {1}));
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(3);
  log.Restore(snap);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_EQ(log.FirstIndex(), 11u);
  EXPECT_EQ(log.LastIndex(), 10u);
  EXPECT_EQ(*log.Term(10), 3u);
  EXPECT_TRUE(log.UnstableSnapshot().has_value());
}

}  // namespace
}  // namespace kvd::raft
