#include "server/v3election/election_service.h"

#include <atomic>
#include <thread>

#include "tests/server/v3lock/service_fixture.h"

namespace kvd::server::v3election {
namespace {

using testing::ServiceFixture;

class ElectionServiceTest : public ServiceFixture {
 protected:
  grpc::Status Campaign(const std::string& name, int64_t lease, const std::string& value,
                        v3electionpb::CampaignResponse* resp) {
    v3electionpb::CampaignRequest req;
    req.set_name(name);
    req.set_lease(lease);
    req.set_value(value);
    return election_->Campaign(Ctx().get(), req, resp);
  }
  grpc::Status Leader(const std::string& name, v3electionpb::LeaderResponse* resp) {
    v3electionpb::LeaderRequest req;
    req.set_name(name);
    return election_->Leader(Ctx().get(), req, resp);
  }
  grpc::Status Proclaim(const v3electionpb::LeaderKey& leader, const std::string& value) {
    v3electionpb::ProclaimRequest req;
    *req.mutable_leader() = leader;
    req.set_value(value);
    v3electionpb::ProclaimResponse resp;
    return election_->Proclaim(Ctx().get(), req, &resp);
  }
  grpc::Status Resign(const v3electionpb::LeaderKey& leader) {
    v3electionpb::ResignRequest req;
    *req.mutable_leader() = leader;
    v3electionpb::ResignResponse resp;
    return election_->Resign(Ctx().get(), req, &resp);
  }
};

TEST_F(ElectionServiceTest, CampaignLeaderProclaimResign) {
  v3electionpb::LeaderResponse none;
  grpc::Status s = Leader("el", &none);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(s.error_message(), "election: no leader");

  v3electionpb::CampaignResponse won;
  ASSERT_TRUE(Campaign("el", kLease1, "v1", &won).ok());
  EXPECT_EQ(won.leader().name(), "el");
  EXPECT_EQ(won.leader().key(), "el/1111");
  EXPECT_EQ(won.leader().lease(), kLease1);
  EXPECT_EQ(won.leader().rev(), won.header().revision());

  v3electionpb::LeaderResponse leader;
  ASSERT_TRUE(Leader("el", &leader).ok());
  EXPECT_EQ(leader.kv().value(), "v1");
  ASSERT_TRUE(Proclaim(won.leader(), "v2").ok());
  ASSERT_TRUE(Leader("el", &leader).ok());
  EXPECT_EQ(leader.kv().value(), "v2");

  v3electionpb::LeaderKey stale = won.leader();
  stale.set_rev(stale.rev() + 1);
  s = Proclaim(stale, "x");
  EXPECT_EQ(s.error_message(), "election: not leader");
  v3electionpb::ProclaimRequest no_leader;
  v3electionpb::ProclaimResponse unused;
  s = election_->Proclaim(Ctx().get(), no_leader, &unused);
  EXPECT_EQ(s.error_message(), "\"leader\" field must be provided");

  // A stale resign changes nothing; the real one ends the leadership.
  ASSERT_TRUE(Resign(stale).ok());
  EXPECT_EQ(Keys("el/").size(), 1u);
  ASSERT_TRUE(Resign(won.leader()).ok());
  EXPECT_TRUE(Keys("el/").empty());
}

TEST_F(ElectionServiceTest, CampaignWithoutLeaseGetsASixtySecondSession) {
  v3electionpb::CampaignResponse won;
  ASSERT_TRUE(Campaign("nolease", 0, "v", &won).ok());
  EXPECT_EQ(granted_ttl_s_, 60);
  EXPECT_EQ(won.leader().key(), "nolease/3333");
  EXPECT_EQ(won.leader().lease(), kLease3);
  auto keys = Keys("nolease/");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].lease(), kLease3);
  EXPECT_EQ(keys[0].value(), "v");
}

TEST_F(ElectionServiceTest, SecondCandidateWinsWhenTheFirstResignsAndObserveSeesBoth) {
  v3electionpb::CampaignResponse first;
  ASSERT_TRUE(Campaign("h", kLease1, "one", &first).ok());

  grpc::ClientContext observe_ctx;
  observe_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v3electionpb::LeaderRequest observe_req;
  observe_req.set_name("h");
  auto observe = election_->Observe(&observe_ctx, observe_req);
  v3electionpb::LeaderResponse seen;
  ASSERT_TRUE(observe->Read(&seen));
  EXPECT_EQ(seen.kv().value(), "one");

  std::atomic<bool> done{false};
  v3electionpb::CampaignResponse second;
  grpc::Status second_status;
  std::thread t([&] {
    second_status = Campaign("h", kLease2, "two", &second);
    done = true;
  });
  ASSERT_TRUE(WaitForKeys("h/", 2));
  EXPECT_FALSE(done.load());
  ASSERT_TRUE(Proclaim(first.leader(), "one again").ok());
  ASSERT_TRUE(observe->Read(&seen));
  EXPECT_EQ(seen.kv().value(), "one again");
  ASSERT_TRUE(Resign(first.leader()).ok());
  t.join();
  ASSERT_TRUE(second_status.ok()) << second_status.error_message();
  EXPECT_EQ(second.leader().key(), "h/2222");
  EXPECT_GT(second.leader().rev(), first.leader().rev());  // the fencing token grows
  ASSERT_TRUE(observe->Read(&seen));
  EXPECT_EQ(seen.kv().key(), "h/2222");
  EXPECT_EQ(seen.kv().value(), "two");
  observe_ctx.TryCancel();
  v3electionpb::LeaderResponse rest;
  while (observe->Read(&rest)) {
  }
  EXPECT_EQ(observe->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ElectionServiceTest, ObserveWaitsForAFirstLeader) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v3electionpb::LeaderRequest req;
  req.set_name("w");
  auto observe = election_->Observe(&ctx, req);
  v3electionpb::CampaignResponse won;
  ASSERT_TRUE(Campaign("w", kLease3, "first", &won).ok());
  v3electionpb::LeaderResponse seen;
  ASSERT_TRUE(observe->Read(&seen));
  EXPECT_EQ(seen.kv().value(), "first");
  EXPECT_EQ(seen.header().revision(), won.leader().rev());
  ctx.TryCancel();
  while (observe->Read(&seen)) {
  }
  observe->Finish();
}

TEST_F(ElectionServiceTest, CampaignAgainWithANewValueProclaimsIt) {
  v3electionpb::CampaignResponse a, b;
  ASSERT_TRUE(Campaign("r", kLease1, "a", &a).ok());
  ASSERT_TRUE(Campaign("r", kLease1, "b", &b).ok());
  EXPECT_EQ(b.leader().rev(), a.leader().rev());
  v3electionpb::LeaderResponse leader;
  ASSERT_TRUE(Leader("r", &leader).ok());
  EXPECT_EQ(leader.kv().value(), "b");
}

}  // namespace
}  // namespace kvd::server::v3election
