#include "raft/memory_storage.h"

#include "gtest/gtest.h"
#include "raft/errors.h"

namespace kvd::raft {
namespace {

std::vector<raftpb::Entry> Ents(std::initializer_list<std::pair<uint64_t, uint64_t>> it) {
  std::vector<raftpb::Entry> out;
  for (auto [index, term] : it) {
    raftpb::Entry e;
    e.set_index(index);
    e.set_term(term);
    e.set_data("x");
    out.push_back(e);
  }
  return out;
}

// Storage with entries 3..5 (terms 3,4,5) after a compaction at index 3.
MemoryStorage Make345() {
  MemoryStorage s;
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(3);
  snap.mutable_metadata()->set_term(3);
  EXPECT_TRUE(s.ApplySnapshot(snap).ok());
  EXPECT_TRUE(s.Append(Ents({{4, 4}, {5, 5}})).ok());
  return s;
}

TEST(MemoryStorageTest, EmptyStorageStartsAtIndexOne) {
  MemoryStorage s;
  EXPECT_EQ(*s.FirstIndex(), 1u);
  EXPECT_EQ(*s.LastIndex(), 0u);
  EXPECT_EQ(*s.Term(0), 0u);
  EXPECT_TRUE(IsErrUnavailable(s.Term(1).status()));
}

TEST(MemoryStorageTest, TermReportsCompactedAndUnavailable) {
  MemoryStorage s = Make345();
  EXPECT_TRUE(IsErrCompacted(s.Term(2).status()));
  EXPECT_EQ(*s.Term(3), 3u);  // The compaction point keeps its term.
  EXPECT_EQ(*s.Term(5), 5u);
  EXPECT_TRUE(IsErrUnavailable(s.Term(6).status()));
  EXPECT_FALSE(IsErrCompacted(s.Term(6).status()));
}

TEST(MemoryStorageTest, EntriesIsHalfOpenAndLimitedBySize) {
  MemoryStorage s = Make345();
  EXPECT_TRUE(IsErrCompacted(s.Entries(3, 5, kNoLimit).status()));
  EXPECT_TRUE(IsErrUnavailable(s.Entries(4, 7, kNoLimit).status()));
  auto all = s.Entries(4, 6, kNoLimit);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].index(), 5u);
  // A zero budget still returns one entry, so progress is always possible.
  auto one = s.Entries(4, 6, 0);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
}

TEST(MemoryStorageTest, AppendTruncatesConflictingSuffixAndIgnoresCompacted) {
  MemoryStorage s = Make345();
  ASSERT_TRUE(s.Append(Ents({{2, 2}, {3, 3}, {4, 6}})).ok());
  EXPECT_EQ(*s.LastIndex(), 4u);
  EXPECT_EQ(*s.Term(4), 6u);
  ASSERT_TRUE(s.Append(Ents({{5, 6}, {6, 6}})).ok());
  EXPECT_EQ(*s.LastIndex(), 6u);
}

TEST(MemoryStorageTest, CompactKeepsTermOfCompactionPoint) {
  MemoryStorage s = Make345();
  EXPECT_TRUE(IsErrCompacted(s.Compact(3)));
  ASSERT_TRUE(s.Compact(4).ok());
  EXPECT_EQ(*s.FirstIndex(), 5u);
  EXPECT_EQ(*s.Term(4), 4u);
  EXPECT_TRUE(IsErrCompacted(s.Term(3).status()));
}

TEST(MemoryStorageTest, SnapshotsMustMoveForward) {
  MemoryStorage s = Make345();
  raftpb::ConfState cs;
  cs.add_voters(1);
  auto snap = s.CreateSnapshot(4, &cs, "state");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata().term(), 4u);
  EXPECT_EQ(s.InitialState()->conf_state.voters_size(), 1);
  EXPECT_TRUE(IsErrSnapOutOfDate(s.CreateSnapshot(4, &cs, "again").status()));
  raftpb::Snapshot old;
  old.mutable_metadata()->set_index(2);
  EXPECT_TRUE(IsErrSnapOutOfDate(s.ApplySnapshot(old)));
}

}  // namespace
}  // namespace kvd::raft
