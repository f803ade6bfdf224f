#include "server/transport/grpc_transport.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/kvdpb/peer.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "storage/engine.h"
#include "storage/snapshot.h"

namespace kvd::server {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Every wait in these tests is for an event, bounded by this (a hang becomes a failure).
constexpr auto kWaitMax = 30s;

constexpr uint64_t kCluster = 0xC1;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Collects what the transport delivers; tests wait on it.
class Inbox {
 public:
  template <typename Pred>
  bool WaitUntil(Pred pred) {
    return WaitUntilFor(kWaitMax, pred);
  }
  template <typename Pred>
  bool WaitUntilFor(std::chrono::milliseconds max, Pred pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, max, [&] { return pred(); });
  }
  void Notify() { cv_.notify_all(); }
  std::mutex& mu() { return mu_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

class TestReceiver final : public RaftReceiver {
 public:
  void Receive(raftpb::Message msg) override {
    std::lock_guard<std::mutex> lock(inbox.mu());
    messages.push_back(std::move(msg));
    inbox.Notify();
  }
  void ReceiveSnapshot(raftpb::Message msg, std::string dir) override {
    std::lock_guard<std::mutex> lock(inbox.mu());
    snapshots.emplace_back(std::move(msg), std::move(dir));
    inbox.Notify();
  }
  size_t MessageCount() {
    std::lock_guard<std::mutex> lock(inbox.mu());
    return messages.size();
  }

  Inbox inbox;
  std::vector<raftpb::Message> messages;                           // guarded by inbox.mu()
  std::vector<std::pair<raftpb::Message, std::string>> snapshots;  // guarded by inbox.mu()
};

// Writes fixed files: name → contents.
class TestSource final : public SnapshotSource {
 public:
  absl::Status WriteSnapshotFiles(const raftpb::Message& msg, const std::string& dir) override {
    if (fail) return absl::InternalError("source failed on purpose");
    EXPECT_TRUE(ListDir(dir).empty()) << dir;
    for (const auto& [name, contents] : files) {
      std::ofstream out(dir + "/" + name, std::ios::binary);
      out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
      if (!out) return absl::InternalError("write failed");
    }
    ++calls;
    return absl::OkStatus();
  }
  std::map<std::string, std::string> files;
  std::atomic<bool> fail{false};
  std::atomic<int> calls{0};
};

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// One member: transport + its peer server on 127.0.0.1.
struct Member {
  uint64_t id = 0;
  uint64_t cluster_id = kCluster;
  std::string scratch;
  int port = 0;  // 0: pick a free one
  TestReceiver receiver;
  TestSource source;
  GrpcTransportTestHooks hooks;
  size_t chunk_bytes = 256 << 10;
  int64_t write_timeout_ms = 5000;
  int64_t snapshot_timeout_ms = 10 * 60 * 1000;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<grpc::Server> server;

  // Reports, by peer.
  Inbox reports;
  std::map<uint64_t, int> unreachable;                    // guarded by reports.mu()
  std::vector<std::pair<uint64_t, bool>> snapshots_sent;  // guarded by reports.mu()

  std::string url() const { return absl::StrCat("http://127.0.0.1:", port); }

  void Start() {
    TransportOptions options;
    options.local_id = id;
    options.cluster_id = cluster_id;
    options.scratch_dir = scratch;
    options.snapshot_chunk_bytes = chunk_bytes;
    options.write_timeout_ms = write_timeout_ms;
    options.snapshot_timeout_ms = snapshot_timeout_ms;
    options.on_unreachable = [this](uint64_t peer) {
      std::lock_guard<std::mutex> lock(reports.mu());
      ++unreachable[peer];
      reports.Notify();
    };
    options.on_snapshot_sent = [this](uint64_t peer, bool ok) {
      std::lock_guard<std::mutex> lock(reports.mu());
      snapshots_sent.emplace_back(peer, ok);
      reports.Notify();
    };
    transport = NewGrpcTransportForTest(options, &receiver, &source, hooks);
    grpc::ServerBuilder builder;
    int selected = 0;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &selected);
    builder.SetMaxReceiveMessageSize(kMaxPeerMessageBytes);
    builder.RegisterService(transport->service());
    server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr) << "cannot listen on 127.0.0.1:" << port;
    ASSERT_NE(selected, 0) << "cannot listen on 127.0.0.1:" << port;
    port = selected;
  }

  void Stop() {
    if (transport) transport->Stop();
    if (server) server->Shutdown(std::chrono::system_clock::now() + 5s);
    server.reset();
    transport.reset();
  }

  int UnreachableCount(uint64_t peer) {
    std::lock_guard<std::mutex> lock(reports.mu());
    return unreachable[peer];
  }
};

// Waits (bounded) for IsActive(id) to become want; IsActive follows the streams, which
// change state on their own threads.
bool WaitActive(Transport* t, uint64_t id, bool want) {
  auto deadline = Clock::now() + kWaitMax;
  while (t->IsActive(id) != want) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

raftpb::Message Msg(uint64_t from, uint64_t to, uint64_t index, size_t payload = 16) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_from(from);
  m.set_to(to);
  m.set_term(3);
  m.set_index(index);
  raftpb::Entry* e = m.add_entries();
  e->set_term(3);
  e->set_index(index + 1);
  e->set_data(std::string(payload, 'p'));
  return m;
}

raftpb::Message SnapMsg(uint64_t from, uint64_t to, uint64_t index) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP);
  m.set_from(from);
  m.set_to(to);
  m.set_term(3);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  m.mutable_snapshot()->mutable_metadata()->set_term(2);
  m.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(from);
  m.mutable_snapshot()->mutable_metadata()->mutable_conf_state()->add_voters(to);
  return m;
}

class GrpcTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(::testing::TempDir(), "/grpc_transport_test_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override {
    for (auto& m : members_) m->Stop();
    members_.clear();
    std::filesystem::remove_all(root_);
  }

  Member* AddMember(uint64_t id, uint64_t cluster_id = kCluster) {
    auto m = std::make_unique<Member>();
    m->id = id;
    m->cluster_id = cluster_id;
    m->scratch = absl::StrCat(root_, "/m", id);
    members_.push_back(std::move(m));
    return members_.back().get();
  }

  // Starts every member and tells each about all the others.
  void StartAll() {
    for (auto& m : members_) {
      m->Start();
      if (HasFatalFailure()) return;
    }
    for (auto& a : members_) {
      for (auto& b : members_) {
        if (a != b) a->transport->AddPeer(b->id, {b->url()});
      }
    }
  }

  std::string root_;
  std::vector<std::unique_ptr<Member>> members_;
};

TEST(PeerUrlToTargetTest, AcceptsHttpHostPortOnly) {
  EXPECT_EQ(*PeerUrlToTarget("http://127.0.0.1:2380"), "127.0.0.1:2380");
  EXPECT_EQ(*PeerUrlToTarget("http://node-1.example:2380/"), "node-1.example:2380");
  EXPECT_EQ(*PeerUrlToTarget("http://[::1]:2380"), "[::1]:2380");
  for (const char* bad : {"https://127.0.0.1:2380", "127.0.0.1:2380", "http://", "http://host",
                          "http://host:", "http://host:2380/path", "unix:///tmp/x"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(PeerUrlToTarget(bad).status())) << bad;
  }
}

// Sends heartbeats from one member to another until one arrives: the stream is up. (What
// is queued while a first connection attempt fails is dropped, as raft expects; a test
// that counts messages must not send them before the stream is up.)
void WaitStreamUp(Member* from, Member* to) {
  auto deadline = Clock::now() + kWaitMax;
  while (true) {
    raftpb::Message m;
    m.set_type(raftpb::MSG_HEARTBEAT);
    m.set_from(from->id);
    m.set_to(to->id);
    from->transport->Send({m});
    bool arrived = to->receiver.inbox.WaitUntilFor(100ms, [&] {
      for (const auto& msg : to->receiver.messages) {
        if (msg.from() == from->id && msg.type() == raftpb::MSG_HEARTBEAT) return true;
      }
      return false;
    });
    if (arrived) return;
    ASSERT_LT(Clock::now(), deadline) << "no stream from " << from->id << " to " << to->id;
  }
}

TEST_F(GrpcTransportTest, ThreeMembersExchangeMessagesInOrder) {
  Member* a = AddMember(1);
  Member* b = AddMember(2);
  Member* c = AddMember(3);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  for (Member* m : {b, c}) {
    WaitStreamUp(a, m);
    ASSERT_FALSE(HasFatalFailure());
  }
  WaitStreamUp(b, a);
  WaitStreamUp(b, c);
  WaitStreamUp(c, a);
  ASSERT_FALSE(HasFatalFailure());

  constexpr uint64_t kCount = 2000;
  for (uint64_t i = 0; i < kCount; i += 50) {
    std::vector<raftpb::Message> msgs;
    for (uint64_t j = i; j < i + 50; ++j) {
      msgs.push_back(Msg(1, 2, j));
      msgs.push_back(Msg(1, 3, j, 1000));
    }
    a->transport->Send(std::move(msgs));
  }
  b->transport->Send({Msg(2, 1, 7), Msg(2, 3, 8)});
  c->transport->Send({Msg(3, 1, 9)});

  for (Member* m : {b, c}) {
    ASSERT_TRUE(m->receiver.inbox.WaitUntil([&] {
      uint64_t from_a = 0;
      for (const auto& msg : m->receiver.messages) {
        from_a += msg.from() == 1 && msg.type() == raftpb::MSG_APP;
      }
      return from_a == kCount;
    })) << "member "
        << m->id << " got " << m->receiver.MessageCount() << " messages";
    std::lock_guard<std::mutex> lock(m->receiver.inbox.mu());
    uint64_t next = 0;
    for (const auto& msg : m->receiver.messages) {
      EXPECT_EQ(msg.to(), m->id);
      if (msg.from() != 1 || msg.type() != raftpb::MSG_APP) continue;
      ASSERT_EQ(msg.index(), next) << "lost or reordered at member " << m->id;
      ASSERT_EQ(msg.entries_size(), 1);
      EXPECT_EQ(msg.entries(0).data().size(), m->id == 2 ? 16u : 1000u);
      ++next;
    }
  }
  ASSERT_TRUE(a->receiver.inbox.WaitUntil([&] {
    int apps = 0;
    for (const auto& msg : a->receiver.messages) apps += msg.type() == raftpb::MSG_APP;
    return apps == 2;
  }));
  ASSERT_TRUE(c->receiver.inbox.WaitUntil([&] {
    for (const auto& msg : c->receiver.messages) {
      if (msg.from() == 2 && msg.index() == 8) return true;
    }
    return false;
  }));
  EXPECT_TRUE(WaitActive(a->transport.get(), 2, true));
  EXPECT_TRUE(WaitActive(a->transport.get(), 3, true));
  EXPECT_TRUE(WaitActive(b->transport.get(), 1, true));
  EXPECT_FALSE(a->transport->IsActive(99));
  EXPECT_EQ(a->UnreachableCount(2), 0);
  EXPECT_EQ(a->UnreachableCount(3), 0);
}

TEST_F(GrpcTransportTest, MessagesToAnUnknownPeerAreReportedUnreachable) {
  Member* a = AddMember(1);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  a->transport->Send({Msg(1, 42, 0)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return a->unreachable[42] > 0; }));
  a->transport->Send({SnapMsg(1, 42, 5)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return !a->snapshots_sent.empty(); }));
  std::lock_guard<std::mutex> lock(a->reports.mu());
  EXPECT_EQ(a->snapshots_sent[0], std::make_pair(uint64_t{42}, false));
}

TEST_F(GrpcTransportTest, PeerDownThenUpMessagesFlowAgain) {
  Member* a = AddMember(1);
  Member* b = AddMember(2);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());

  a->transport->Send({Msg(1, 2, 0)});
  ASSERT_TRUE(b->receiver.inbox.WaitUntil([&] { return b->receiver.messages.size() == 1; }));
  ASSERT_TRUE(WaitActive(a->transport.get(), 2, true));

  // B goes down: A notices (writes fail), reports it unreachable and drops.
  b->Stop();
  auto deadline = Clock::now() + kWaitMax;
  uint64_t index = 1;
  while (a->UnreachableCount(2) == 0 || a->transport->IsActive(2)) {
    ASSERT_LT(Clock::now(), deadline) << "A never noticed B was down";
    a->transport->Send({Msg(1, 2, index++)});
    std::this_thread::sleep_for(10ms);
  }

  // B comes back on the same address, as a fresh process would (with an empty inbox).
  {
    std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
    b->receiver.messages.clear();
  }
  b->Start();
  ASSERT_FALSE(HasFatalFailure());
  b->transport->AddPeer(1, {a->url()});
  deadline = Clock::now() + kWaitMax;
  while (b->receiver.MessageCount() == 0) {
    ASSERT_LT(Clock::now(), deadline) << "messages never flowed again after B restarted";
    a->transport->Send({Msg(1, 2, 1000000 + index++)});
    std::this_thread::sleep_for(10ms);
  }
  // Whatever arrives after the restart arrives in order.
  a->transport->Send({Msg(1, 2, 5000000)});
  ASSERT_TRUE(b->receiver.inbox.WaitUntil([&] {
    return !b->receiver.messages.empty() && b->receiver.messages.back().index() == 5000000;
  })) <<
      [&] {
        std::string got;
        for (const auto& m : b->receiver.messages) absl::StrAppend(&got, m.index(), " ");
        return absl::StrCat("B got: ", got, "; A reported B unreachable ", a->UnreachableCount(2),
                            " times");
      }();
  std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
  for (size_t i = 1; i < b->receiver.messages.size(); ++i) {
    EXPECT_LT(b->receiver.messages[i - 1].index(), b->receiver.messages[i].index());
  }
  EXPECT_TRUE(WaitActive(a->transport.get(), 2, true));
}

TEST_F(GrpcTransportTest, UpdatePeerMovesTheStreamAndRemovePeerStopsIt) {
  Member* a = AddMember(1);
  Member* b = AddMember(2);
  Member* c = AddMember(3);
  for (Member* m : {a, b, c}) {
    m->Start();
    ASSERT_FALSE(HasFatalFailure());
  }
  // A believes B lives at C's address: C refuses the stream (addressed to another member).
  a->transport->AddPeer(2, {c->url()});
  auto deadline = Clock::now() + kWaitMax;
  while (a->UnreachableCount(2) == 0) {
    ASSERT_LT(Clock::now(), deadline) << "refusal by the wrong member never reported";
    a->transport->Send({Msg(1, 2, 0)});
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(c->receiver.MessageCount(), 0u);

  a->transport->UpdatePeer(2, {b->url()});
  deadline = Clock::now() + kWaitMax;
  while (b->receiver.MessageCount() == 0) {
    ASSERT_LT(Clock::now(), deadline) << "messages never reached B at its new address";
    a->transport->Send({Msg(1, 2, 1)});
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(WaitActive(a->transport.get(), 2, true));
  EXPECT_EQ(c->receiver.MessageCount(), 0u);

  // Removed: nothing more is sent, and sending to it is reported.
  a->transport->RemovePeer(2);
  EXPECT_FALSE(a->transport->IsActive(2));
  int reports = a->UnreachableCount(2);
  a->transport->Send({Msg(1, 2, 2)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return a->unreachable[2] > reports; }));
  std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
  for (const auto& msg : b->receiver.messages) EXPECT_NE(msg.index(), 2u);
}

TEST_F(GrpcTransportTest, WrongClusterOrRecipientIsRefused) {
  Member* b = AddMember(2);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto stub = peerpb::Peer::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", b->port), grpc::InsecureChannelCredentials()));

  struct Case {
    uint64_t cluster_id;
    uint64_t to;
    const char* says;
  };
  for (const Case& c : {Case{999, 2, "cluster"}, Case{kCluster, 3, "addressed to member"}}) {
    grpc::ClientContext ctx;
    peerpb::StreamAck ack;
    auto writer = stub->Stream(&ctx, &ack);
    peerpb::RaftBatch batch;
    batch.mutable_header()->set_cluster_id(c.cluster_id);
    batch.mutable_header()->set_from(1);
    batch.mutable_header()->set_to(c.to);
    *batch.add_messages() = Msg(1, 2, 0);
    writer->Write(batch);  // may fail once the server has refused; Finish says why
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_NE(s.error_message().find(c.says), std::string::npos) << s.error_message();

    grpc::ClientContext snap_ctx;
    peerpb::SnapshotAck snap_ack;
    auto snap_writer = stub->Snapshot(&snap_ctx, &snap_ack);
    peerpb::SnapshotChunk chunk;
    chunk.mutable_header()->set_cluster_id(c.cluster_id);
    chunk.mutable_header()->set_from(1);
    chunk.mutable_header()->set_to(c.to);
    *chunk.mutable_message() = SnapMsg(1, 2, 5);
    snap_writer->Write(chunk);
    snap_writer->WritesDone();
    s = snap_writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  }
  EXPECT_EQ(b->receiver.MessageCount(), 0u);
  EXPECT_FALSE(b->transport->IsActive(1));  // refused streams never count

  // A whole transport of another cluster: its messages never arrive, and it reports B.
  Member* stranger = AddMember(1, /*cluster_id=*/999);
  stranger->Start();
  ASSERT_FALSE(HasFatalFailure());
  stranger->transport->AddPeer(2, {b->url()});
  auto deadline = Clock::now() + kWaitMax;
  while (stranger->UnreachableCount(2) == 0) {
    ASSERT_LT(Clock::now(), deadline) << "refused stream never reported";
    stranger->transport->Send({Msg(1, 2, 0)});
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(b->receiver.MessageCount(), 0u);
}

// Files of a few MB, streamed in 256 KiB chunks: one several chunks long, one exactly two
// chunks, one small, one empty.
std::map<std::string, std::string> SnapshotFiles() {
  return {{"kv.sst", RandomBytes(3 * 1024 * 1024 + 12345, 1)},
          {"rev_index.sst", RandomBytes(512 * 1024, 2)},
          {"snapshot.manifest", "kvd-state-snapshot 1\n"},
          {"empty", ""}};
}

TEST_F(GrpcTransportTest, SnapshotIsStreamedAndHandedOverIntact) {
  Member* a = AddMember(1);
  Member* b = AddMember(2);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  a->source.files = SnapshotFiles();

  a->transport->Send({SnapMsg(1, 2, 42)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return !a->snapshots_sent.empty(); }));
  {
    std::lock_guard<std::mutex> lock(a->reports.mu());
    EXPECT_EQ(a->snapshots_sent[0], std::make_pair(uint64_t{2}, true));
  }
  std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
  ASSERT_EQ(b->receiver.snapshots.size(), 1u);
  const auto& [msg, dir] = b->receiver.snapshots[0];
  EXPECT_EQ(msg.type(), raftpb::MSG_SNAP);
  EXPECT_EQ(msg.from(), 1u);
  EXPECT_EQ(msg.snapshot().metadata().index(), 42u);
  EXPECT_EQ(msg.snapshot().metadata().conf_state().voters_size(), 2);
  EXPECT_EQ(dir.rfind(b->scratch + "/", 0), 0u) << dir;
  std::vector<std::string> names;
  for (const auto& [name, contents] : a->source.files) {
    names.push_back(name);
    EXPECT_TRUE(ReadFile(dir + "/" + name) == contents) << name << " differs";
  }
  EXPECT_EQ(ListDir(dir), names);
  // The sender's staging directory is gone.
  EXPECT_TRUE(ListDir(a->scratch).empty());
}

TEST_F(GrpcTransportTest, CorruptedChunkIsRefusedAndTheNextSnapshotWorks) {
  Member* a = AddMember(1);
  Member* b = AddMember(2);
  std::atomic<bool> corrupt{true};
  a->hooks.on_send_snapshot_chunk = [&corrupt](peerpb::SnapshotChunk& chunk) {
    if (corrupt && chunk.file_name() == "kv.sst" && chunk.offset() == (256 << 10)) {
      (*chunk.mutable_data())[100] ^= 0x01;
    }
  };
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  a->source.files = SnapshotFiles();

  a->transport->Send({SnapMsg(1, 2, 42)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return a->snapshots_sent.size() == 1; }));
  {
    std::lock_guard<std::mutex> lock(a->reports.mu());
    EXPECT_EQ(a->snapshots_sent[0], std::make_pair(uint64_t{2}, false));
  }
  {
    std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
    EXPECT_TRUE(b->receiver.snapshots.empty());
  }
  EXPECT_TRUE(ListDir(b->scratch).empty()) << "the refused snapshot's files were left behind";

  corrupt = false;
  a->transport->Send({SnapMsg(1, 2, 43)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return a->snapshots_sent.size() == 2; }));
  {
    std::lock_guard<std::mutex> lock(a->reports.mu());
    EXPECT_EQ(a->snapshots_sent[1], std::make_pair(uint64_t{2}, true));
  }
  std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
  ASSERT_EQ(b->receiver.snapshots.size(), 1u);
  EXPECT_EQ(b->receiver.snapshots[0].first.snapshot().metadata().index(), 43u);
  EXPECT_TRUE(ReadFile(b->receiver.snapshots[0].second + "/kv.sst") == a->source.files["kv.sst"]);
}

TEST_F(GrpcTransportTest, TruncatedSnapshotStreamIsRefused) {
  Member* b = AddMember(2);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto stub = peerpb::Peer::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", b->port), grpc::InsecureChannelCredentials()));
  // A complete file, then the stream ends without the final chunk; then a stream whose final
  // chunk claims more files than were sent.
  for (bool send_done : {false, true}) {
    grpc::ClientContext ctx;
    peerpb::SnapshotAck ack;
    auto writer = stub->Snapshot(&ctx, &ack);
    peerpb::SnapshotChunk chunk;
    chunk.mutable_header()->set_cluster_id(kCluster);
    chunk.mutable_header()->set_from(1);
    chunk.mutable_header()->set_to(2);
    *chunk.mutable_message() = SnapMsg(1, 2, 5);
    ASSERT_TRUE(writer->Write(chunk));
    peerpb::SnapshotChunk file;
    file.set_file_name("a");
    file.set_data("hello");
    file.set_file_done(true);
    file.set_file_size(5);
    file.set_file_crc32c(0x9a71bb4c);  // CRC32C("hello")
    ASSERT_TRUE(writer->Write(file));
    if (send_done) {
      peerpb::SnapshotChunk done;
      done.set_snapshot_done(true);
      done.set_file_count(2);
      writer->Write(done);
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_FALSE(ack.accepted());
    EXPECT_NE(ack.error().find(send_done ? "2 files" : "ended before"), std::string::npos)
        << ack.error();
  }
  std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
  EXPECT_TRUE(b->receiver.snapshots.empty());
  EXPECT_TRUE(ListDir(b->scratch).empty());
}

peerpb::SnapshotChunk FirstChunk(uint64_t from, uint64_t to) {
  peerpb::SnapshotChunk chunk;
  chunk.mutable_header()->set_cluster_id(kCluster);
  chunk.mutable_header()->set_from(from);
  chunk.mutable_header()->set_to(to);
  *chunk.mutable_message() = SnapMsg(from, to, 5);
  return chunk;
}

// Waits (bounded) until dir's entry count satisfies pred.
template <typename Pred>
bool WaitDir(const std::string& dir, Pred pred) {
  auto deadline = Clock::now() + kWaitMax;
  while (!pred(ListDir(dir).size())) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST_F(GrpcTransportTest, OneInboundSnapshotPerSender) {
  Member* b = AddMember(2);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto stub = peerpb::Peer::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", b->port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx1;
  peerpb::SnapshotAck ack1;
  auto first = stub->Snapshot(&ctx1, &ack1);
  ASSERT_TRUE(first->Write(FirstChunk(1, 2)));
  // The receiving directory appears once B has taken the snapshot slot of member 1.
  ASSERT_TRUE(WaitDir(b->scratch, [](size_t n) { return n == 1; }));

  grpc::ClientContext ctx2;
  peerpb::SnapshotAck ack2;
  auto second = stub->Snapshot(&ctx2, &ack2);
  second->Write(FirstChunk(1, 2));
  second->WritesDone();
  grpc::Status s = second->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(ack2.accepted());
  EXPECT_NE(ack2.error().find("already being received"), std::string::npos) << ack2.error();

  // The first one completes.
  peerpb::SnapshotChunk done;
  done.set_snapshot_done(true);
  ASSERT_TRUE(first->Write(done));
  first->WritesDone();
  s = first->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(ack1.accepted()) << ack1.error();
  std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
  EXPECT_EQ(b->receiver.snapshots.size(), 1u);
}

TEST_F(GrpcTransportTest, StalledInboundSnapshotIsCancelledAtItsDeadline) {
  Member* b = AddMember(2);
  b->snapshot_timeout_ms = 300;
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto stub = peerpb::Peer::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", b->port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  peerpb::SnapshotAck ack;
  auto writer = stub->Snapshot(&ctx, &ack);
  ASSERT_TRUE(writer->Write(FirstChunk(1, 2)));
  // Then nothing, not even a half-close (Finish does not send one): B gives up on its own
  // and removes what it received.
  grpc::Status s = writer->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << s.error_message();
  EXPECT_TRUE(WaitDir(b->scratch, [](size_t n) { return n == 0; }));
  std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
  EXPECT_TRUE(b->receiver.snapshots.empty());
}

TEST_F(GrpcTransportTest, SnapshotSourceFailureIsReported) {
  Member* a = AddMember(1);
  AddMember(2);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  a->source.fail = true;
  a->transport->Send({SnapMsg(1, 2, 42)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return !a->snapshots_sent.empty(); }));
  std::lock_guard<std::mutex> lock(a->reports.mu());
  EXPECT_EQ(a->snapshots_sent[0], std::make_pair(uint64_t{2}, false));
  EXPECT_TRUE(ListDir(a->scratch).empty());
}

// A peer that accepts the stream and never reads it: gRPC flow control blocks the writer,
// and the watchdog must break the stream and report the peer.
class StuckPeerService final : public peerpb::Peer::CallbackService {
 public:
  grpc::ServerReadReactor<peerpb::RaftBatch>* Stream(grpc::CallbackServerContext*,
                                                     peerpb::StreamAck*) override {
    ++streams;
    return new Reactor();
  }
  std::atomic<int> streams{0};

 private:
  class Reactor final : public grpc::ServerReadReactor<peerpb::RaftBatch> {
   public:
    void OnCancel() override { Finish(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }
  };
};

TEST_F(GrpcTransportTest, WriteBlockedByAPeerThatDoesNotReadIsBrokenAndReported) {
  StuckPeerService stuck;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&stuck);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);

  Member* a = AddMember(1);
  a->write_timeout_ms = 200;
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  a->transport->AddPeer(2, {absl::StrCat("http://127.0.0.1:", port)});
  // 64 KiB messages: a few MB fill the stream's flow-control windows.
  auto deadline = Clock::now() + kWaitMax;
  uint64_t index = 0;
  while (a->UnreachableCount(2) == 0) {
    ASSERT_LT(Clock::now(), deadline) << "a blocked write was never broken";
    a->transport->Send({Msg(1, 2, index++, 64 << 10)});
    std::this_thread::sleep_for(1ms);
  }
  // The writer gave up on the stuck stream and opened a new one.
  deadline = Clock::now() + kWaitMax;
  while (stuck.streams < 2) {
    ASSERT_LT(Clock::now(), deadline) << "the writer never reconnected";
    a->transport->Send({Msg(1, 2, index++, 64 << 10)});
    std::this_thread::sleep_for(1ms);
  }
  a->Stop();
  server->Shutdown(std::chrono::system_clock::now() + 5s);
}

// A peer that records how the messages it receives were batched: (first index, count) per
// non-empty RaftBatch.
class RecordingPeerService final : public peerpb::Peer::CallbackService {
 public:
  grpc::ServerReadReactor<peerpb::RaftBatch>* Stream(grpc::CallbackServerContext*,
                                                     peerpb::StreamAck*) override {
    return new Reactor(this);
  }
  Inbox inbox;
  std::vector<std::pair<uint64_t, int>> batches;  // guarded by inbox.mu()
  uint64_t messages = 0;                          // guarded by inbox.mu()

 private:
  class Reactor final : public grpc::ServerReadReactor<peerpb::RaftBatch> {
   public:
    explicit Reactor(RecordingPeerService* service) : service_(service) { StartRead(&batch_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      if (batch_.messages_size() > 0) {
        std::lock_guard<std::mutex> lock(service_->inbox.mu());
        service_->batches.emplace_back(batch_.messages(0).index(), batch_.messages_size());
        service_->messages += batch_.messages_size();
        service_->inbox.Notify();
      }
      batch_.Clear();
      StartRead(&batch_);
    }
    void OnDone() override { delete this; }

   private:
    RecordingPeerService* const service_;
    peerpb::RaftBatch batch_;
  };
};

// What one Send() gives a peer travels in one batch, whether or not a write is in flight
// when it is called (batches are what the peer's stream costs per write).
TEST_F(GrpcTransportTest, MessagesOfOneSendToAPeerTravelInOneBatch) {
  RecordingPeerService recorder;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&recorder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);

  Member* a = AddMember(1);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  a->transport->AddPeer(2, {absl::StrCat("http://127.0.0.1:", port)});
  constexpr int kSends = 20;
  constexpr int kPerSend = 10;
  uint64_t index = 0;
  for (int i = 0; i < kSends; ++i) {
    std::vector<raftpb::Message> msgs;
    for (int j = 0; j < kPerSend; ++j) msgs.push_back(Msg(1, 2, index++));
    a->transport->Send(std::move(msgs));
    if (i % 2 == 0) {
      // Half of the sends find the stream idle, the others a write in flight (or queued).
      ASSERT_TRUE(recorder.inbox.WaitUntil([&] { return recorder.messages == index; }));
    }
  }
  ASSERT_TRUE(recorder.inbox.WaitUntil([&] { return recorder.messages == index; }));
  std::lock_guard<std::mutex> lock(recorder.inbox.mu());
  uint64_t next = 0;
  for (const auto& [first, count] : recorder.batches) {
    EXPECT_EQ(first, next) << "lost or reordered";
    EXPECT_EQ(first % kPerSend, 0u) << "a Send's messages were split across batches";
    EXPECT_EQ(count % kPerSend, 0) << "a Send's messages were split across batches";
    next = first + count;
  }
  EXPECT_EQ(a->UnreachableCount(2), 0);
  a->Stop();
  server->Shutdown(std::chrono::system_clock::now() + 5s);
}

// The real thing end to end: the state files of one store travel to another member and
// install there.
TEST_F(GrpcTransportTest, StateSnapshotTravelsAndInstalls) {
  auto open = [&](const std::string& name) {
    storage::EngineOptions options;
    options.path = absl::StrCat(root_, "/", name);
    auto engine = storage::Engine::Open(options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? std::move(*engine) : nullptr;
  };
  std::unique_ptr<storage::Engine> src = open("src-db");
  std::unique_ptr<storage::Engine> dst = open("dst-db");
  ASSERT_TRUE(src && dst);
  rocksdb::WriteBatch batch;
  for (int i = 0; i < 20000; ++i) {
    batch.Put(src->cf(storage::Cf::kKv), absl::StrCat("key", i), RandomBytes(100, i));
  }
  std::string applied;
  storage::PutBigEndian64(&applied, 77);
  batch.Put(src->cf(storage::Cf::kMeta), "applied_index", applied);
  ASSERT_TRUE(src->Write(&batch, true).ok());
  rocksdb::WriteBatch other;
  other.Put(dst->cf(storage::Cf::kKv), "stale", "x");
  ASSERT_TRUE(dst->Write(&other, true).ok());

  class EngineSource final : public SnapshotSource {
   public:
    explicit EngineSource(storage::Engine* e) : engine_(e) {}
    absl::Status WriteSnapshotFiles(const raftpb::Message&, const std::string& dir) override {
      return storage::WriteStateSnapshot(*engine_, dir).status();
    }

   private:
    storage::Engine* engine_;
  };

  Member* a = AddMember(1);
  Member* b = AddMember(2);
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  EngineSource source(src.get());
  // Replace A's transport with one reading the engine (same id, same port).
  a->transport->Stop();
  a->server->Shutdown(std::chrono::system_clock::now() + 5s);
  a->server.reset();
  TransportOptions options;
  options.local_id = 1;
  options.cluster_id = kCluster;
  options.scratch_dir = a->scratch;
  options.on_snapshot_sent = [a](uint64_t peer, bool ok) {
    std::lock_guard<std::mutex> lock(a->reports.mu());
    a->snapshots_sent.emplace_back(peer, ok);
    a->reports.Notify();
  };
  a->transport = NewGrpcTransport(options, &a->receiver, &source);
  a->transport->AddPeer(2, {b->url()});

  a->transport->Send({SnapMsg(1, 2, 70)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return !a->snapshots_sent.empty(); }));
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(b->receiver.inbox.mu());
    ASSERT_EQ(b->receiver.snapshots.size(), 1u);
    dir = b->receiver.snapshots[0].second;
  }
  auto manifest = storage::ReadSnapshotManifest(dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->applied_index, 77u);
  ASSERT_TRUE(storage::InstallStateSnapshot(*dst, dir).ok());
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_TRUE(absl::IsNotFound(dst->Get(storage::Cf::kKv, "stale").status()));
  for (int i : {0, 9999, 19999}) {
    auto v = dst->Get(storage::Cf::kKv, absl::StrCat("key", i));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, RandomBytes(100, i));
  }
  a->transport->Stop();
  a->transport.reset();
}

// Not a check: prints the rates, for the record (ctest -V shows them).
TEST_F(GrpcTransportTest, Throughput) {
  Member* a = AddMember(1);
  Member* b = AddMember(2);
  b->chunk_bytes = 1 << 20;
  a->chunk_bytes = 1 << 20;
  StartAll();
  ASSERT_FALSE(HasFatalFailure());

  double secs = 0;
  uint64_t total = 0;
  for (auto [count, payload] : {std::pair<uint64_t, size_t>{100000, 100}, {20000, 4096}}) {
    auto start = Clock::now();
    uint64_t sent = 0;
    while (sent < count) {
      // Stay within the queue bound: this measures the stream, not the drop path.
      ASSERT_TRUE(b->receiver.inbox.WaitUntil(
          [&] { return total + sent - b->receiver.messages.size() < 2000; }));
      std::vector<raftpb::Message> msgs;
      for (int i = 0; i < 500; ++i) msgs.push_back(Msg(1, 2, sent++, payload));
      a->transport->Send(std::move(msgs));
    }
    total += count;
    ASSERT_TRUE(b->receiver.inbox.WaitUntil([&] { return b->receiver.messages.size() == total; }));
    secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("messages: %llu x %zu-byte entries in %.2f s: %.0f msg/s, %.1f MiB/s\n",
                static_cast<unsigned long long>(count), payload, secs, count / secs,
                count * payload / secs / (1 << 20));
  }

  a->source.files = {{"big", RandomBytes(32 << 20, 3)}};
  auto start = Clock::now();
  a->transport->Send({SnapMsg(1, 2, 42)});
  ASSERT_TRUE(a->reports.WaitUntil([&] { return !a->snapshots_sent.empty(); }));
  secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("snapshot: 32 MiB (write files + stream + fsync) in %.2f s: %.1f MiB/s\n", secs,
              32 / secs);
  std::lock_guard<std::mutex> lock(a->reports.mu());
  EXPECT_TRUE(a->snapshots_sent[0].second);
}

}  // namespace
}  // namespace kvd::server
