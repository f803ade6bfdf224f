#include "client/kvctl/exit.h"

#include "gtest/gtest.h"

namespace kvd::kvctl {
namespace {

TEST(ExitTest, FailuresCarryTheirExitCode) {
  EXPECT_EQ(ExitCodeOf(MakeFailure(kExitBadArgs, "x")), 128);
  EXPECT_EQ(ExitCodeOf(MakeFailure(kExitInvalidInput, "x")), 3);
  EXPECT_EQ(ExitCodeOf(MakeFailure(kExitBadFeature, "x")), 4);
  EXPECT_EQ(ExitCodeOf(MakeFailure(kExitInterrupted, "x")), 5);
  // Errors from the server or the connection exit with 1, as in etcdctl.
  EXPECT_EQ(ExitCodeOf(absl::OutOfRangeError("etcdserver: mvcc: required revision has been "
                                             "compacted")),
            1);
  EXPECT_EQ(ExitCodeOf(absl::UnavailableError("")), 1);
}

TEST(ExitTest, ErrorTextLikeEtcdctl) {
  EXPECT_EQ(ErrorText(MakeFailure(kExitBadArgs, "bad number of arguments")),
            "bad number of arguments");
  EXPECT_EQ(ErrorText(absl::OutOfRangeError("etcdserver: mvcc: required revision has been "
                                            "compacted")),
            "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(ErrorText(absl::DeadlineExceededError("context deadline exceeded")),
            "context deadline exceeded");
  EXPECT_EQ(ErrorText(absl::UnimplementedError("unknown service etcdserverpb.Cluster")),
            "rpc error: code = Unimplemented desc = unknown service etcdserverpb.Cluster");
  EXPECT_EQ(ErrorText(absl::CancelledError("")), "rpc error: code = Canceled desc = ");
}

}  // namespace
}  // namespace kvd::kvctl
