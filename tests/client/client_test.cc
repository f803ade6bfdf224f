// kvd::client::Client against a real server (KVD_TEST_SERVER, etcd by default).
#include "client/client.h"

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/client/test_server.h"

namespace kvd::client {
namespace {

namespace pb = ::etcdserverpb;

TEST(GrpcTargetTest, AcceptsWhatEtcdctlAccepts) {
  EXPECT_EQ(GrpcTarget("127.0.0.1:2379").value(), "127.0.0.1:2379");
  EXPECT_EQ(GrpcTarget("http://127.0.0.1:2379").value(), "127.0.0.1:2379");
  EXPECT_EQ(GrpcTarget(" http://localhost:2379/ ").value(), "localhost:2379");
  EXPECT_EQ(GrpcTarget("[::1]:2379").value(), "[::1]:2379");
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", ":2379", "127.0.0.1:70000",
                          "https://127.0.0.1:2379", "ftp://h:1"}) {
    EXPECT_EQ(GrpcTarget(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ClientCreateTest, RejectsBadOptions) {
  EXPECT_FALSE(Client::Create(Options{}).ok());
  Options bad_endpoint;
  bad_endpoint.endpoints = {"nope"};
  EXPECT_FALSE(Client::Create(bad_endpoint).ok());
  Options bad_timeout;
  bad_timeout.endpoints = {"127.0.0.1:1"};
  bad_timeout.request_timeout = absl::ZeroDuration();
  EXPECT_FALSE(Client::Create(bad_timeout).ok());
}

class ClientTest : public ::testing::Test {
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
  void SetUp() override { ASSERT_NE(server_, nullptr) << "server did not start"; }

  static std::unique_ptr<Client> Connect(std::vector<std::string> endpoints,
                                         absl::Duration dial = absl::Seconds(2),
                                         absl::Duration request = absl::Seconds(5)) {
    Options options;
    options.endpoints = std::move(endpoints);
    options.dial_timeout = dial;
    options.request_timeout = request;
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  static pb::PutRequest PutOf(const std::string& key, const std::string& value) {
    pb::PutRequest put;
    put.set_key(key);
    put.set_value(value);
    return put;
  }

  static testing::TestServer* server_;
};

testing::TestServer* ClientTest::server_ = nullptr;

TEST_F(ClientTest, PutRangeDeleteRoundTrip) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  absl::StatusOr<pb::PutResponse> put = c->Put(PutOf("client/a", "1"));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(put->header().revision(), 0);
  EXPECT_NE(put->header().cluster_id(), 0u);
  ASSERT_TRUE(c->Put(PutOf("client/b", "2")).ok());

  pb::RangeRequest range;
  range.set_key("client/");
  range.set_range_end("client0");  // prefix "client/"
  absl::StatusOr<pb::RangeResponse> got = c->Range(range);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 2);
  EXPECT_EQ(got->kvs(0).key(), "client/a");
  EXPECT_EQ(got->kvs(0).value(), "1");
  EXPECT_EQ(got->kvs(0).mod_revision(), put->header().revision());
  EXPECT_EQ(got->count(), 2);

  pb::DeleteRangeRequest del;
  del.set_key("client/");
  del.set_range_end("client0");
  del.set_prev_kv(true);
  absl::StatusOr<pb::DeleteRangeResponse> deleted = c->DeleteRange(del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->deleted(), 2);
  EXPECT_EQ(deleted->prev_kvs_size(), 2);
  got = c->Range(range);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->kvs_size(), 0);
}

TEST_F(ClientTest, TxnTakesTheBranchTheComparesSelect) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  ASSERT_TRUE(c->Put(PutOf("client/txn", "v1")).ok());
  pb::TxnRequest txn;
  pb::Compare* cmp = txn.add_compare();
  cmp->set_key("client/txn");
  cmp->set_target(pb::Compare::VALUE);
  cmp->set_result(pb::Compare::EQUAL);
  cmp->set_value("v1");
  *txn.add_success()->mutable_request_put() = PutOf("client/txn", "v2");
  txn.add_failure()->mutable_request_range()->set_key("client/txn");

  absl::StatusOr<pb::TxnResponse> first = c->Txn(txn);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->succeeded());
  ASSERT_EQ(first->responses_size(), 1);
  EXPECT_TRUE(first->responses(0).has_response_put());

  absl::StatusOr<pb::TxnResponse> second = c->Txn(txn);  // value is v2 now
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->succeeded());
  ASSERT_EQ(second->responses_size(), 1);
  ASSERT_EQ(second->responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(second->responses(0).response_range().kvs(0).value(), "v2");
}

TEST_F(ClientTest, CompactedRevisionIsOutOfRangeWithEtcdsMessage) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  absl::StatusOr<pb::PutResponse> first = c->Put(PutOf("client/compact", "1"));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<pb::PutResponse> second = c->Put(PutOf("client/compact", "2"));
  ASSERT_TRUE(second.ok());
  pb::CompactionRequest compact;
  compact.set_revision(second->header().revision());
  compact.set_physical(true);
  ASSERT_TRUE(c->Compact(compact).ok());

  pb::RangeRequest old;
  old.set_key("client/compact");
  old.set_revision(first->header().revision());
  absl::StatusOr<pb::RangeResponse> got = c->Range(old);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(got.status().message(), "etcdserver: mvcc: required revision has been compacted");

  absl::StatusOr<pb::CompactionResponse> again = c->Compact(compact);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kOutOfRange);

  pb::RangeRequest future;
  future.set_key("client/compact");
  future.set_revision(second->header().revision() + 1000);
  got = c->Range(future);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(got.status().message(), "etcdserver: mvcc: required revision is a future revision");
}

TEST_F(ClientTest, FailsOverFromAnUnreachableEndpoint) {
  const std::string dead = absl::StrCat("127.0.0.1:", testing::FreePort());
  std::unique_ptr<Client> c =
      Connect({dead, "http://" + server_->endpoint()}, absl::Seconds(2), absl::Seconds(5));
  const absl::Time start = absl::Now();
  absl::StatusOr<pb::PutResponse> put = c->Put(PutOf("client/failover", "x"));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(c->CurrentEndpoint(), "http://" + server_->endpoint());
  absl::StatusOr<pb::StatusResponse> status = c->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_NE(status->header().member_id(), 0u);
  // The live endpoint answers right away; the dead one is not waited for.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(ClientTest, NoReachableEndpointIsADeadlineError) {
  std::unique_ptr<Client> c = Connect({absl::StrCat("127.0.0.1:", testing::FreePort())},
                                      absl::Milliseconds(200), absl::Milliseconds(500));
  const absl::Time start = absl::Now();
  absl::StatusOr<pb::RangeResponse> got = c->Range(pb::RangeRequest());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StartsWith(got.status().message(), "context deadline exceeded"))
      << got.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(ClientTest, StatusAndHashKVOfOneEndpoint) {
  std::unique_ptr<Client> c =
      Connect({server_->endpoint()}, absl::Milliseconds(300), absl::Seconds(1));
  absl::StatusOr<pb::StatusResponse> status = c->Status(server_->endpoint());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->version().empty());
  EXPECT_EQ(status->leader(), status->header().member_id());  // a single member leads
  EXPECT_GT(status->raftindex(), 0u);

  // Not one of the client's endpoints, and unreachable: no failover, an error.
  absl::StatusOr<pb::StatusResponse> dead =
      c->Status(absl::StrCat("127.0.0.1:", testing::FreePort()));
  EXPECT_EQ(dead.status().code(), absl::StatusCode::kDeadlineExceeded);

  absl::StatusOr<pb::HashKVResponse> h1 = c->HashKV(server_->endpoint(), 0);
  ASSERT_TRUE(h1.ok()) << h1.status();
  absl::StatusOr<pb::HashKVResponse> h2 = c->HashKV(server_->endpoint(), 0);
  ASSERT_TRUE(h2.ok());
  if (h1->header().revision() == h2->header().revision()) {
    EXPECT_EQ(h1->hash(), h2->hash());
  }
}

TEST_F(ClientTest, WatchDeliversEventsInOrder) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  pb::WatchCreateRequest create;
  create.set_key("client/w/");
  create.set_range_end("client/w0");
  create.set_prev_kv(true);
  absl::StatusOr<std::unique_ptr<WatchStream>> watch = c->Watch(create);
  ASSERT_TRUE(watch.ok()) << watch.status();
  absl::StatusOr<pb::WatchResponse> created = (*watch)->Next();
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created());

  ASSERT_TRUE(c->Put(PutOf("client/w/a", "1")).ok());
  ASSERT_TRUE(c->Put(PutOf("client/w/a", "2")).ok());
  ASSERT_TRUE(c->Put(PutOf("client/other", "x")).ok());  // outside the watched range
  pb::DeleteRangeRequest del;
  del.set_key("client/w/a");
  ASSERT_TRUE(c->DeleteRange(del).ok());

  std::vector<mvccpb::Event> events;
  while (events.size() < 3) {
    absl::StatusOr<pb::WatchResponse> r = (*watch)->Next();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_FALSE(r->canceled());
    events.insert(events.end(), r->events().begin(), r->events().end());
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(events[0].kv().value(), "1");
  EXPECT_FALSE(events[0].has_prev_kv());
  EXPECT_EQ(events[1].kv().value(), "2");
  EXPECT_EQ(events[1].prev_kv().value(), "1");
  EXPECT_EQ(events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(events[2].kv().key(), "client/w/a");
  EXPECT_EQ(events[2].prev_kv().value(), "2");
  EXPECT_LT(events[0].kv().mod_revision(), events[1].kv().mod_revision());
  EXPECT_LT(events[1].kv().mod_revision(), events[2].kv().mod_revision());
}

TEST_F(ClientTest, WatchFromACompactedRevisionIsCanceled) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  absl::StatusOr<pb::PutResponse> first = c->Put(PutOf("client/wc", "1"));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<pb::PutResponse> second = c->Put(PutOf("client/wc", "2"));
  ASSERT_TRUE(second.ok());
  pb::CompactionRequest compact;
  compact.set_revision(second->header().revision());
  ASSERT_TRUE(c->Compact(compact).ok());

  pb::WatchCreateRequest create;
  create.set_key("client/wc");
  create.set_start_revision(first->header().revision());
  absl::StatusOr<std::unique_ptr<WatchStream>> watch = c->Watch(create);
  ASSERT_TRUE(watch.ok()) << watch.status();
  bool canceled = false;
  for (int i = 0; i < 3 && !canceled; ++i) {  // etcd may or may not send "created" first
    absl::StatusOr<pb::WatchResponse> r = (*watch)->Next();
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->canceled()) {
      canceled = true;
      EXPECT_GE(r->compact_revision(), second->header().revision());
      EXPECT_EQ(r->events_size(), 0);
    }
  }
  EXPECT_TRUE(canceled);
}

TEST_F(ClientTest, WatchCancelUnblocksNext) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  pb::WatchCreateRequest create;
  create.set_key("client/never-written");
  absl::StatusOr<std::unique_ptr<WatchStream>> watch = c->Watch(create);
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE((*watch)->Next().ok());  // created
  std::thread canceler([&] {
    absl::SleepFor(absl::Milliseconds(100));
    (*watch)->Cancel();
  });
  absl::StatusOr<pb::WatchResponse> r = (*watch)->Next();
  canceler.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ((*watch)->Next().status().code(), absl::StatusCode::kCancelled);
}

TEST_F(ClientTest, LeaseLifecycle) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  pb::LeaseGrantRequest grant;
  grant.set_ttl(30);
  absl::StatusOr<pb::LeaseGrantResponse> lease = c->LeaseGrant(grant);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_NE(lease->id(), 0);
  EXPECT_EQ(lease->ttl(), 30);
  pb::PutRequest put = PutOf("client/leased", "v");
  put.set_lease(lease->id());
  ASSERT_TRUE(c->Put(put).ok());

  pb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(lease->id());
  ttl.set_keys(true);
  absl::StatusOr<pb::LeaseTimeToLiveResponse> left = c->LeaseTimeToLive(ttl);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(left->grantedttl(), 30);
  EXPECT_GT(left->ttl(), 0);
  ASSERT_EQ(left->keys_size(), 1);
  EXPECT_EQ(left->keys(0), "client/leased");

  absl::StatusOr<pb::LeaseLeasesResponse> all = c->LeaseLeases();
  ASSERT_TRUE(all.ok()) << all.status();
  bool listed = false;
  for (const pb::LeaseStatus& l : all->leases()) listed = listed || l.id() == lease->id();
  EXPECT_TRUE(listed);

  absl::StatusOr<pb::LeaseKeepAliveResponse> renewed = c->LeaseKeepAliveOnce(lease->id());
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->id(), lease->id());
  EXPECT_EQ(renewed->ttl(), 30);

  ASSERT_TRUE(c->LeaseRevoke(lease->id()).ok());
  pb::RangeRequest get;
  get.set_key("client/leased");
  absl::StatusOr<pb::RangeResponse> gone = c->Range(get);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->kvs_size(), 0);

  absl::StatusOr<pb::LeaseRevokeResponse> again = c->LeaseRevoke(lease->id());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(again.status().message(), "etcdserver: requested lease not found");
  absl::StatusOr<pb::LeaseKeepAliveResponse> dead = c->LeaseKeepAliveOnce(lease->id());
  EXPECT_EQ(dead.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, MemberListNamesThisMember) {
  std::unique_ptr<Client> c = Connect({server_->endpoint()});
  absl::StatusOr<pb::MemberListResponse> members = c->MemberList(pb::MemberListRequest());
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->members_size(), 1);
  ASSERT_EQ(members->members(0).clienturls_size(), 1);
  EXPECT_EQ(members->members(0).clienturls(0), "http://" + server_->endpoint());
}

// With a user name the client authenticates once and sends its token; without auth
// enabled on the server it works unchanged.
TEST(ClientAuthTest, TokenIsFetchedAndUsed) {
  absl::StatusOr<std::unique_ptr<testing::TestServer>> server = testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  Options admin_options;
  admin_options.endpoints = {(*server)->endpoint()};
  absl::StatusOr<std::unique_ptr<Client>> admin = Client::Create(admin_options);
  ASSERT_TRUE(admin.ok());
  pb::AuthUserAddRequest root;
  root.set_name("root");
  root.set_password("pw");
  absl::StatusOr<pb::AuthUserAddResponse> added = (*admin)->UserAdd(root);
  ASSERT_TRUE(added.ok()) << added.status();
  absl::StatusOr<pb::AuthRoleAddResponse> role = (*admin)->RoleAdd("root");
  ASSERT_TRUE(role.ok()) << role.status();
  absl::StatusOr<pb::AuthUserGrantRoleResponse> granted = (*admin)->UserGrantRole("root", "root");
  ASSERT_TRUE(granted.ok()) << granted.status();

  Options user_options = admin_options;
  user_options.username = "root";
  user_options.password = "pw";
  absl::StatusOr<std::unique_ptr<Client>> user = Client::Create(user_options);
  ASSERT_TRUE(user.ok());
  pb::PutRequest put;
  put.set_key("k");
  put.set_value("v");
  ASSERT_TRUE((*user)->Put(put).ok());  // auth still disabled: no token needed

  absl::StatusOr<pb::AuthEnableResponse> enabled = (*admin)->AuthEnable();
  ASSERT_TRUE(enabled.ok()) << enabled.status();
  absl::StatusOr<pb::PutResponse> anonymous = (*admin)->Put(put);
  EXPECT_EQ(anonymous.status().message(), "etcdserver: user name is empty");
  // The user's client learns that auth is now on, authenticates and retries.
  EXPECT_TRUE((*user)->Put(put).ok());
  absl::StatusOr<pb::AuthStatusResponse> status = (*user)->AuthStatus();
  if (status.ok()) {
    EXPECT_TRUE(status->enabled());
  } else {
    EXPECT_EQ(status.status().code(), absl::StatusCode::kUnimplemented);  // etcd 3.4
  }
  Options wrong_options = user_options;
  wrong_options.password = "nope";
  absl::StatusOr<std::unique_ptr<Client>> wrong = Client::Create(wrong_options);
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ((*wrong)->Put(put).status().message(),
            "etcdserver: authentication failed, invalid user ID or password");
  EXPECT_TRUE((*user)->AuthDisable().ok());
  EXPECT_TRUE((*admin)->Put(put).ok());
}

// Two independent single-member servers stand in for two members: the client's reads
// must move on when the member it talks to dies.
TEST(ClientFailoverTest, ReadsMoveToTheNextEndpointWhenTheCurrentOneDies) {
  absl::StatusOr<std::unique_ptr<testing::TestServer>> a = testing::TestServer::Start();
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::unique_ptr<testing::TestServer>> b = testing::TestServer::Start();
  ASSERT_TRUE(b.ok()) << b.status();
  for (auto* server : {a->get(), b->get()}) {
    Options one;
    one.endpoints = {server->endpoint()};
    absl::StatusOr<std::unique_ptr<Client>> direct = Client::Create(one);
    ASSERT_TRUE(direct.ok());
    pb::PutRequest put;
    put.set_key("who");
    put.set_value(server == a->get() ? "a" : "b");
    ASSERT_TRUE((*direct)->Put(put).ok());
  }

  Options options;
  options.endpoints = {(*a)->endpoint(), (*b)->endpoint()};
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Create(options);
  ASSERT_TRUE(c.ok());
  pb::RangeRequest who;
  who.set_key("who");
  absl::StatusOr<pb::RangeResponse> first = (*c)->Range(who);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->kvs_size(), 1);
  const std::string first_value = first->kvs(0).value();
  testing::TestServer* current = first_value == "a" ? a->get() : b->get();
  const std::string survivor = first_value == "a" ? "b" : "a";
  EXPECT_EQ((*c)->CurrentEndpoint(), current->endpoint());

  current->Kill();
  const absl::Time start = absl::Now();
  absl::StatusOr<pb::RangeResponse> second = (*c)->Range(who);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->kvs_size(), 1);
  EXPECT_EQ(second->kvs(0).value(), survivor);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_NE((*c)->CurrentEndpoint(), current->endpoint());

  // Later requests, writes included, go to the survivor.
  pb::PutRequest put;
  put.set_key("after");
  put.set_value("x");
  EXPECT_TRUE((*c)->Put(put).ok());
}

}  // namespace
}  // namespace kvd::client
