// client/concurrency.h: Canceler alone, and Session, Mutex and Election against a real
// server (KVD_TEST_SERVER, etcd by default).
#include "client/concurrency.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/client/test_server.h"

namespace kvd::client {
namespace {

namespace pb = ::etcdserverpb;

TEST(CancelerTest, CallbacksRunOnceAndNotAfterRemove) {
  Canceler c;
  int fired = 0, removed = 0;
  c.OnCancel([&] { ++fired; });
  const int id = c.OnCancel([&] { ++removed; });
  c.Remove(id);
  EXPECT_FALSE(c.Wait(absl::Milliseconds(10)));
  c.Cancel();
  c.Cancel();
  EXPECT_TRUE(c.canceled());
  EXPECT_TRUE(c.Wait(absl::ZeroDuration()));
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(removed, 0);
  int late = 0;
  c.OnCancel([&] { ++late; });  // already canceled: runs at once
  EXPECT_EQ(late, 1);
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<testing::TestServer>> server = testing::TestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr) << "server did not start";
    Options options;
    options.endpoints = {server_->endpoint()};
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  std::unique_ptr<Session> NewSession(int64_t ttl_s = 30) {
    absl::StatusOr<std::unique_ptr<Session>> s = Session::Create(client_.get(), ttl_s);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  int64_t CreateRevision(const std::string& key) {
    pb::RangeRequest get;
    get.set_key(key);
    absl::StatusOr<pb::RangeResponse> r = client_->Range(get);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->kvs_size() == 1 ? r->kvs(0).create_revision() : 0;
  }

  static testing::TestServer* server_;
  std::unique_ptr<Client> client_;
};

testing::TestServer* ConcurrencyTest::server_ = nullptr;

TEST_F(ConcurrencyTest, SessionEndsWhenItsLeaseIsRevoked) {
  std::unique_ptr<Session> s = NewSession(5);
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->done().Wait(absl::Milliseconds(100)));
  ASSERT_TRUE(client_->LeaseRevoke(s->lease()).ok());
  EXPECT_TRUE(s->done().Wait(absl::Seconds(10)));  // next keep-alive within TTL/3
}

TEST_F(ConcurrencyTest, MutexHandsOverInCreateOrderAndCancelledWaitersLeave) {
  std::unique_ptr<Session> s1 = NewSession(), s2 = NewSession(), s3 = NewSession();
  ASSERT_TRUE(s1 && s2 && s3);
  Mutex m1(s1.get(), "mx"), m2(s2.get(), "mx"), m3(s3.get(), "mx");
  Canceler never;
  ASSERT_TRUE(m1.Lock(never).ok());
  const int64_t token1 = CreateRevision(m1.key());
  EXPECT_EQ(token1, m1.header().revision());  // uncontended: acquired at its creation

  // m2 waits; cancelling it deletes its key and fails with "context canceled".
  Canceler cancel2;
  absl::Status s2_status;
  std::thread t2([&] { s2_status = m2.Lock(cancel2); });
  // m3 waits behind both.
  std::atomic<bool> m3_done{false};
  std::thread t3([&] {
    EXPECT_TRUE(m3.Lock(never).ok());
    m3_done = true;
  });
  // (m2.key() and m3.key() are set inside Lock, on the other threads.)
  const std::string key2 = absl::StrCat("mx/", absl::Hex(s2->lease()));
  const std::string key3 = absl::StrCat("mx/", absl::Hex(s3->lease()));
  for (int i = 0; i < 500 && (CreateRevision(key2) == 0 || CreateRevision(key3) == 0); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  cancel2.Cancel();
  t2.join();
  EXPECT_EQ(s2_status, ContextCanceled());
  EXPECT_EQ(CreateRevision(key2), 0);
  EXPECT_FALSE(m3_done);

  ASSERT_TRUE(m1.Unlock().ok());
  t3.join();
  EXPECT_TRUE(m3_done);
  EXPECT_GT(CreateRevision(m3.key()), token1);  // the fencing token grows
  EXPECT_GE(m3.header().revision(), CreateRevision(m3.key()));
  ASSERT_TRUE(m3.Unlock().ok());
}

TEST_F(ConcurrencyTest, ElectionObserveFollowsLeaders) {
  std::unique_ptr<Session> s1 = NewSession(), s2 = NewSession();
  ASSERT_TRUE(s1 && s2);
  Election e1(s1.get(), "el"), e2(s2.get(), "el");
  Canceler never;
  ASSERT_TRUE(e1.Campaign("v1", never).ok());

  Canceler stop_observe;
  std::vector<std::pair<std::string, std::string>> seen;  // key, value
  absl::Mutex mu;
  std::thread observer([&] {
    EXPECT_TRUE(
        Election::Observe(client_.get(), "el", stop_observe, [&](const pb::RangeResponse& r) {
          absl::MutexLock lock(&mu);
          seen.emplace_back(r.kvs(0).key(), r.kvs(0).value());
        }).ok());
  });
  std::thread campaigner([&] { EXPECT_TRUE(e2.Campaign("v2", never).ok()); });
  auto wait_seen = [&](size_t n) {
    for (int i = 0; i < 1000; ++i) {
      {
        absl::MutexLock lock(&mu);
        if (seen.size() >= n) return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(wait_seen(1));
  ASSERT_TRUE(e1.Resign().ok());
  campaigner.join();
  ASSERT_TRUE(wait_seen(2));
  stop_observe.Cancel();
  observer.join();
  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(e1.key(), std::string("v1")));
  EXPECT_EQ(seen[1], std::make_pair(e2.key(), std::string("v2")));
  ASSERT_TRUE(e2.Resign().ok());
}

}  // namespace
}  // namespace kvd::client
