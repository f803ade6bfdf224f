// A single-member node with the watch hub and the lock and election services, served on
// 127.0.0.1 (a free port) for the tests of server/v3lock and server/v3election. Leases are
// mocked through NodeHooks.lease_exists: ids in `leases` exist.
#ifndef KVD_TESTS_SERVER_V3LOCK_SERVICE_FIXTURE_H_
#define KVD_TESTS_SERVER_V3LOCK_SERVICE_FIXTURE_H_

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "api/v3electionpb/v3election.grpc.pb.h"
#include "api/v3lockpb/v3lock.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/node.h"
#include "server/transport/transport.h"
#include "server/v3election/election_service.h"
#include "server/v3lock/lock_service.h"
#include "server/v3lock/recipes.h"
#include "server/watch/watch_hub.h"

namespace kvd::server::testing {

// A member with no peers needs no transport.
class NoPeers final : public Transport {
 public:
  grpc::Service* service() override { return nullptr; }
  void AddPeer(uint64_t, const std::vector<std::string>&) override {}
  void UpdatePeer(uint64_t, const std::vector<std::string>&) override {}
  void RemovePeer(uint64_t) override {}
  void Send(std::vector<raftpb::Message>) override {}
  bool IsActive(uint64_t) const override { return false; }
  void Stop() override {}
};

class ServiceFixture : public ::testing::Test {
 protected:
  static constexpr int64_t kLease1 = 0x1111;
  static constexpr int64_t kLease2 = 0x2222;
  static constexpr int64_t kLease3 = 0x3333;

  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/v3lock_fixture_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    NodeOptions options;
    options.name = "t";
    options.data_dir = dir_;
    options.initial_cluster = "t=http://127.0.0.1:9";
    options.initial_advertise_peer_urls = {"http://127.0.0.1:9"};
    options.heartbeat = absl::Milliseconds(10);
    options.election_timeout = absl::Milliseconds(100);
    options.transport_factory = [](TransportOptions, RaftReceiver*, SnapshotSource*) {
      return std::make_unique<NoPeers>();
    };
    auto node = Node::Open(options);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    Node* n = node_.get();
    hub_ = std::make_unique<watch::WatchHub>(
        &node_->kv(), watch::WatchHubOptions{},
        watch::WatchHubEnv{[n](etcdserverpb::ResponseHeader* h) { n->FillHeader(h); },
                           [n] { return n->has_leader(); }});
    NodeHooks hooks;
    hooks.lease_exists = [](int64_t id) { return id == kLease1 || id == kLease2 || id == kLease3; };
    hooks.on_applied = [this](int64_t rev, const std::vector<mvccpb::Event>& events) {
      hub_->OnApplied(rev, events);
    };
    hub_->Start();
    node_->Start(std::move(hooks));
    for (int i = 0; i < 500 && !node_->is_leader(); ++i) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(node_->is_leader());

    // Sessions for lease 0 are "granted" as kLease3 (or fail with grant_error_).
    recipes_ = std::make_unique<v3lock::Recipes>(
        node_.get(), hub_.get(), [this](int64_t ttl_s, v3lock::LeaseDone done) {
          granted_ttl_s_ = ttl_s;
          if (grant_error_) return std::move(done)(absl::UnavailableError("grant failed"));
          std::move(done)(kLease3);
        });
    lock_service_ = std::make_unique<v3lock::LockService>(recipes_.get());
    election_service_ = std::make_unique<v3election::ElectionService>(recipes_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(lock_service_.get());
    builder.RegisterService(election_service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    lock_ = v3lockpb::Lock::NewStub(channel_);
    election_ = v3electionpb::Election::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (recipes_) recipes_->Stop();
    if (hub_) hub_->Stop();
    node_.reset();
    server_.reset();
    election_service_.reset();
    lock_service_.reset();
    recipes_.reset();
    hub_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The live keys under prefix, as the store has them now.
  std::vector<mvccpb::KeyValue> Keys(const std::string& prefix) {
    auto view = node_->kv().Read();
    auto r =
        view->Range(storage::mvcc::KeyRange::FromRequest(prefix, v3lock::PrefixEnd(prefix)), {});
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->kvs : std::vector<mvccpb::KeyValue>{};
  }
  // Until prefix holds count keys (bounded).
  bool WaitForKeys(const std::string& prefix, size_t count) {
    for (int i = 0; i < 2000; ++i) {
      if (Keys(prefix).size() == count) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }
  static std::unique_ptr<grpc::ClientContext> Ctx(int deadline_s = 20) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_s));
    return ctx;
  }

  std::string dir_;
  std::atomic<int64_t> granted_ttl_s_{0};  // the TTL of the last session lease granted
  std::atomic<bool> grant_error_{false};
  std::unique_ptr<Node> node_;
  std::unique_ptr<watch::WatchHub> hub_;
  std::unique_ptr<v3lock::Recipes> recipes_;
  std::unique_ptr<v3lock::LockService> lock_service_;
  std::unique_ptr<v3election::ElectionService> election_service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v3lockpb::Lock::Stub> lock_;
  std::unique_ptr<v3electionpb::Election::Stub> election_;
};

}  // namespace kvd::server::testing

#endif  // KVD_TESTS_SERVER_V3LOCK_SERVICE_FIXTURE_H_
