#include "storage/raft_log.h"

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "raft/errors.h"

namespace kvd::storage {
namespace {

raftpb::Entry Entry(uint64_t index, uint64_t term) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(absl::StrCat("data-", index, "-", term));
  return e;
}

class RaftLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/raft_log_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    log_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    log_.reset();
    engine_.reset();
    EngineOptions options;
    options.path = dir_;
    engine_ = std::move(*Engine::Open(options));
    auto log = RaftLog::Open(engine_.get());
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
  }
  void Append(std::vector<raftpb::Entry> entries, uint64_t commit = 0) {
    raft::Ready rd;
    rd.entries = std::move(entries);
    rd.must_sync = true;
    if (commit != 0) {
      raftpb::HardState hs;
      hs.set_term(rd.entries.empty() ? 1 : rd.entries.back().term());
      hs.set_commit(commit);
      rd.hard_state = hs;
    }
    ASSERT_TRUE(log_->Persist(rd).ok());
  }

  std::string dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RaftLog> log_;
};

TEST_F(RaftLogTest, AppendsOverwritesAndSurvivesRestart) {
  EXPECT_TRUE(log_->empty());
  Append({Entry(1, 1), Entry(2, 1), Entry(3, 1)});
  Append({Entry(2, 2), Entry(3, 2), Entry(4, 2)}, /*commit=*/2);  // a new leader's suffix
  Reopen();
  EXPECT_EQ(*log_->FirstIndex(), 1u);
  EXPECT_EQ(*log_->LastIndex(), 4u);
  EXPECT_EQ(*log_->Term(1), 1u);
  EXPECT_EQ(*log_->Term(3), 2u);
  auto entries = log_->Entries(1, 5, raft::kNoLimit);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[2].data(), "data-3-2");
  EXPECT_EQ(log_->InitialState()->hard_state.commit(), 2u);
  EXPECT_TRUE(raft::IsErrUnavailable(log_->Entries(1, 6, raft::kNoLimit).status()));
  // A size limit still returns at least one entry.
  EXPECT_EQ(log_->Entries(1, 5, 1)->size(), 1u);
}

TEST_F(RaftLogTest, CompactionKeepsTheTermOfTheLogStart) {
  Append({Entry(1, 1), Entry(2, 1), Entry(3, 2), Entry(4, 2)}, 4);
  raftpb::ConfState cs;
  cs.add_voters(7);
  ASSERT_TRUE(log_->Compact(2, cs).ok());
  Reopen();
  EXPECT_EQ(*log_->FirstIndex(), 3u);
  EXPECT_EQ(*log_->Term(2), 1u);
  EXPECT_TRUE(raft::IsErrCompacted(log_->Term(1).status()));
  EXPECT_TRUE(raft::IsErrCompacted(log_->Entries(2, 4, raft::kNoLimit).status()));
  EXPECT_EQ(log_->Snapshot()->metadata().index(), 2u);
  EXPECT_EQ(log_->Snapshot()->metadata().conf_state().voters(0), 7u);
}

TEST_F(RaftLogTest, SnapshotReplacesTheLog) {
  Append({Entry(1, 1), Entry(2, 1)}, 2);
  raft::Ready rd;
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(3);
  rd.snapshot = snap;
  raftpb::HardState hs;
  hs.set_term(3);
  hs.set_commit(10);
  rd.hard_state = hs;
  ASSERT_TRUE(log_->Persist(rd).ok());
  Append({Entry(11, 3)});
  Reopen();
  EXPECT_EQ(*log_->FirstIndex(), 11u);
  EXPECT_EQ(*log_->LastIndex(), 11u);
  EXPECT_EQ(*log_->Term(10), 3u);
}

TEST_F(RaftLogTest, BrokenLogsAreRefusedAtStart) {
  Append({Entry(1, 1), Entry(2, 1), Entry(3, 1)}, 3);
  // A hole in the middle.
  std::string key;
  PutBigEndian64(&key, 2);
  ASSERT_TRUE(engine_->db()->Delete(rocksdb::WriteOptions(), engine_->cf(Cf::kRaftLog), key).ok());
  log_.reset();
  auto log = RaftLog::Open(engine_.get());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(log.status().message().find("entry 2 is missing"), std::string::npos);

  // A bit flip in a record.
  ASSERT_TRUE(engine_->db()->Put(rocksdb::WriteOptions(), engine_->cf(Cf::kRaftLog), key,
                                 "\xff\xff garbage").ok());
  log = RaftLog::Open(engine_.get());
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("does not parse"), std::string::npos);

  // The tail holding committed entries lost.
  raftpb::Entry e2 = Entry(2, 1);
  ASSERT_TRUE(engine_->db()->Put(rocksdb::WriteOptions(), engine_->cf(Cf::kRaftLog), key,
                                 e2.SerializeAsString()).ok());
  std::string key3;
  PutBigEndian64(&key3, 3);
  ASSERT_TRUE(engine_->db()->Delete(rocksdb::WriteOptions(), engine_->cf(Cf::kRaftLog), key3).ok());
  log = RaftLog::Open(engine_.get());
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("commit index 3 is past the last entry 2"),
            std::string::npos);
}

}  // namespace
}  // namespace kvd::storage
