// Tests of server/lease/leader_forwarder.cc against an in-process fake leader on 127.0.0.1.
#include "server/lease/leader_forwarder.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace kvd::server::lease {
namespace {

// Answers keep-alives with TTL = 10 × ID (0 for ID 404), and TimeToLive with TTL 7; refuses
// requests that are not marked as forwarded.
class FakeLeader final : public etcdserverpb::Lease::CallbackService {
 public:
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override {
    class Reactor final : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                                         etcdserverpb::LeaseKeepAliveResponse> {
     public:
      explicit Reactor(bool forwarded) {
        if (!forwarded) {
          Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not forwarded"));
          return;
        }
        StartRead(&req_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status::OK);
          return;
        }
        resp_.set_id(req_.id());
        resp_.set_ttl(req_.id() == 404 ? 0 : 10 * req_.id());
        StartWrite(&resp_);
      }
      void OnWriteDone(bool ok) override {
        if (ok) StartRead(&req_);
        else Finish(grpc::Status::CANCELLED);
      }
      void OnDone() override { delete this; }

     private:
      etcdserverpb::LeaseKeepAliveRequest req_;
      etcdserverpb::LeaseKeepAliveResponse resp_;
    };
    return new Reactor(ctx->client_metadata().count(kForwardedMetadata) > 0);
  }

  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override {
    resp->set_id(req->id());
    resp->set_ttl(7);
    resp->set_grantedttl(9);
    if (req->keys()) resp->add_keys("k");
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class LeaderForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&leader_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override { server_->Shutdown(); }

  absl::StatusOr<int64_t> Renew(const std::string& address, int64_t id) {
    absl::Notification done;
    absl::StatusOr<int64_t> result;
    forwarder_.Renew(address, id, [&](absl::StatusOr<int64_t> ttl) {
      result = std::move(ttl);
      done.Notify();
    });
    done.WaitForNotification();  // bounded by the forwarder's deadline
    return result;
  }

  FakeLeader leader_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  LeaderForwarder forwarder_{/*timeout_ms=*/5000};
};

TEST_F(LeaderForwarderTest, RenewReturnsTheLeadersTtl) {
  EXPECT_EQ(*Renew(address_, 3), 30);
  EXPECT_EQ(*Renew(address_, 404), 0);
  // Many in a row reuse the channel.
  for (int64_t id = 1; id <= 20; ++id) EXPECT_EQ(*Renew(address_, id), 10 * id);
}

TEST_F(LeaderForwarderTest, TimeToLiveIsForwardedWhole) {
  absl::Notification done;
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> result;
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(5);
  req.set_keys(true);
  forwarder_.TimeToLive(address_, req, [&](auto answer) {
    result = std::move(answer);
    done.Notify();
  });
  done.WaitForNotification();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->id(), 5);
  EXPECT_EQ(result->ttl(), 7);
  EXPECT_EQ(result->grantedttl(), 9);
  ASSERT_EQ(result->keys_size(), 1);
}

TEST_F(LeaderForwarderTest, UnreachableLeaderIsAnError) {
  LeaderForwarder quick(/*timeout_ms=*/300);
  // A port nobody listens on: the server's, after shutting it down.
  server_->Shutdown();
  absl::Notification done;
  absl::StatusOr<int64_t> result;
  quick.Renew(address_, 1, [&](absl::StatusOr<int64_t> ttl) {
    result = std::move(ttl);
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_FALSE(result.ok());
}

}  // namespace
}  // namespace kvd::server::lease
