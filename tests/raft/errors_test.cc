#include "raft/errors.h"

#include "gtest/gtest.h"

namespace kvd::raft {
namespace {

TEST(ErrorsTest, PredicatesRecogniseOnlyTheirOwnError) {
  EXPECT_TRUE(IsErrCompacted(ErrCompacted()));
  EXPECT_FALSE(IsErrCompacted(ErrUnavailable()));
  EXPECT_FALSE(IsErrCompacted(absl::OutOfRangeError("compacted")));
  EXPECT_TRUE(IsErrProposalDropped(ErrProposalDropped("no leader")));
  EXPECT_EQ(ErrProposalDropped("x").code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsErrSnapshotTemporarilyUnavailable(ErrSnapshotTemporarilyUnavailable()));
}

TEST(ErrorsTest, PayloadSurvivesCopyAndMessageIsClear) {
  absl::Status s = ErrProposalDropped("no leader");
  absl::Status copy = s;
  EXPECT_TRUE(IsErrProposalDropped(copy));
  EXPECT_NE(s.message().find("no leader"), std::string::npos);
  EXPECT_FALSE(IsErrProposalDropped(absl::OkStatus()));
}

}  // namespace
}  // namespace kvd::raft
