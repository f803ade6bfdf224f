#include "server/v3lock/lock_service.h"

#include <atomic>
#include <thread>

#include "tests/server/v3lock/service_fixture.h"

namespace kvd::server::v3lock {
namespace {

using testing::ServiceFixture;

TEST(RecipeKeysTest, PrefixEndAndSessionKey) {
  EXPECT_EQ(PrefixEnd("a/"), "a0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), std::string("\0", 1));
  EXPECT_EQ(SessionKey("lk/", 0x694d7a3b2c1d0e0f), "lk/694d7a3b2c1d0e0f");
}

class LockServiceTest : public ServiceFixture {
 protected:
  grpc::Status Lock(const std::string& name, int64_t lease, v3lockpb::LockResponse* resp,
                    int deadline_s = 20) {
    v3lockpb::LockRequest req;
    req.set_name(name);
    req.set_lease(lease);
    return lock_->Lock(Ctx(deadline_s).get(), req, resp);
  }
  grpc::Status Unlock(const std::string& key) {
    v3lockpb::UnlockRequest req;
    req.set_key(key);
    v3lockpb::UnlockResponse resp;
    return lock_->Unlock(Ctx().get(), req, &resp);
  }
};

TEST_F(LockServiceTest, UncontendedLockIsTheSessionKey) {
  v3lockpb::LockResponse resp;
  ASSERT_TRUE(Lock("jobs", kLease1, &resp).ok());
  EXPECT_EQ(resp.key(), "jobs/1111");
  EXPECT_EQ(resp.header().member_id(), node_->member_id());
  auto keys = Keys("jobs/");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].lease(), kLease1);
  EXPECT_EQ(keys[0].create_revision(), resp.header().revision());
  // Locking again with the same lease is the same acquisition.
  v3lockpb::LockResponse again;
  ASSERT_TRUE(Lock("jobs", kLease1, &again).ok());
  EXPECT_EQ(again.key(), resp.key());
  EXPECT_EQ(Keys("jobs/").size(), 1u);
}

TEST_F(LockServiceTest, LockWithoutLeaseGetsASixtySecondSession) {
  v3lockpb::LockResponse resp;
  ASSERT_TRUE(Lock("nolease", 0, &resp).ok());
  EXPECT_EQ(granted_ttl_s_, 60);
  EXPECT_EQ(resp.key(), "nolease/3333");
  auto keys = Keys("nolease/");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].lease(), kLease3);
  // A failed grant fails the call with the grant's message and code Unknown (etcd's
  // internal client error), and leaves no key behind.
  grant_error_ = true;
  grpc::Status s = Lock("nolease2", 0, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(s.error_message(), "grant failed");
  EXPECT_TRUE(Keys("nolease2/").empty());
}

TEST_F(LockServiceTest, SecondLockerWaitsForTheUnlockAndGetsALargerFencingToken) {
  v3lockpb::LockResponse first;
  ASSERT_TRUE(Lock("m", kLease1, &first).ok());
  std::atomic<bool> second_done{false};
  v3lockpb::LockResponse second;
  grpc::Status second_status;
  std::thread t([&] {
    second_status = Lock("m", kLease2, &second);
    second_done = true;
  });
  ASSERT_TRUE(WaitForKeys("m/", 2));
  // Its key exists, so its txn ran; it must still be waiting for ours.
  EXPECT_FALSE(second_done.load());
  ASSERT_TRUE(Unlock(first.key()).ok());
  t.join();
  ASSERT_TRUE(second_status.ok()) << second_status.error_message();
  EXPECT_EQ(second.key(), "m/2222");
  auto keys = Keys("m/");
  ASSERT_EQ(keys.size(), 1u);
  // The owner key's create revision is the fencing token: it grows with each owner.
  EXPECT_GT(keys[0].create_revision(), first.header().revision());
}

TEST_F(LockServiceTest, ThreeWaitersAreServedInCreateOrder) {
  v3lockpb::LockResponse first;
  ASSERT_TRUE(Lock("q", kLease1, &first).ok());
  v3lockpb::LockResponse r2, r3;
  std::atomic<int> order{0};
  int got2 = 0, got3 = 0;
  std::thread t2([&] {
    ASSERT_TRUE(Lock("q", kLease2, &r2).ok());
    got2 = ++order;
  });
  ASSERT_TRUE(WaitForKeys("q/", 2));
  std::thread t3([&] {
    ASSERT_TRUE(Lock("q", kLease3, &r3).ok());
    got3 = ++order;
  });
  ASSERT_TRUE(WaitForKeys("q/", 3));
  ASSERT_TRUE(Unlock(first.key()).ok());
  t2.join();
  EXPECT_EQ(got2, 1);
  EXPECT_EQ(order.load(), 1);  // the third still waits for the second
  ASSERT_TRUE(Unlock(r2.key()).ok());
  t3.join();
  EXPECT_EQ(got3, 2);
}

TEST_F(LockServiceTest, WaiterGivingUpDeletesItsKey) {
  v3lockpb::LockResponse first;
  ASSERT_TRUE(Lock("g", kLease1, &first).ok());
  v3lockpb::LockResponse second;
  grpc::Status s;
  std::thread t([&] {
    auto ctx = Ctx();
    // Cancelled once its key is in the store.
    std::thread canceller([&] {
      if (WaitForKeys("g/", 2)) ctx->TryCancel();
    });
    v3lockpb::LockRequest req;
    req.set_name("g");
    req.set_lease(kLease2);
    s = lock_->Lock(ctx.get(), req, &second);
    canceller.join();
  });
  t.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitForKeys("g/", 1));
  EXPECT_EQ(Keys("g/")[0].key(), first.key());
}

TEST_F(LockServiceTest, UnknownLeaseFailsAsEtcd) {
  v3lockpb::LockResponse resp;
  grpc::Status s = Lock("x", 0x9999, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");
  EXPECT_TRUE(Keys("x/").empty());
}

TEST_F(LockServiceTest, HolderLosingItsKeyWhileWaitingIsExpired) {
  v3lockpb::LockResponse first;
  ASSERT_TRUE(Lock("e", kLease1, &first).ok());
  grpc::Status s;
  v3lockpb::LockResponse second;
  std::thread t([&] { s = Lock("e", kLease2, &second); });
  ASSERT_TRUE(WaitForKeys("e/", 2));
  // The waiter's own key goes away (as when its lease expires), then the holder's.
  ASSERT_TRUE(Unlock("e/2222").ok());
  ASSERT_TRUE(Unlock(first.key()).ok());
  t.join();
  // It waited for the holder's key only, then found its own key gone.
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(s.error_message(), "mutex: session is expired");
}

}  // namespace
}  // namespace kvd::server::v3lock
