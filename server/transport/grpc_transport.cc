#include "server/transport/grpc_transport.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/kvdpb/peer.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "storage/snapshot.h"

namespace kvd::server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kBackoffMin(50);
constexpr milliseconds kBackoffMax(1000);
constexpr milliseconds kReportInterval(100);
constexpr int64_t kIdleProbeNanos = 1000 * 1000 * 1000;
constexpr milliseconds kWatchdogTick(20);
constexpr auto kLogInterval = std::chrono::seconds(5);
// Bounds on what an inbound snapshot may contain.
constexpr size_t kMaxSnapshotFiles = 256;
constexpr size_t kMaxFileNameBytes = 255;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string HexId(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  // gRPC's own reconnect back-off defaults to 1 s .. 120 s; a member that comes back must
  // be found again within our back-off.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(kBackoffMin.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(kBackoffMin.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kBackoffMax.count()));
  // Our own connections, not shared with other channels of the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxSendMessageSize(kMaxPeerMessageBytes);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

absl::Status ErrnoStatus(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write");
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", dir));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) return ErrnoStatus(absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

bool ValidFileName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxFileNameBytes && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

class OutStream;

// One remote member, as seen by the sending side. Fields below mu are guarded by it.
struct Peer {
  explicit Peer(uint64_t peer_id) : id(peer_id) {}
  const uint64_t id;

  std::mutex mu;
  // Snapshot thread: pending_snapshot or stopping changed.
  std::condition_variable snapshot_cv;
  std::vector<std::string> urls;
  uint64_t urls_version = 0;
  std::string working_url;  // the URL the message stream last wrote to; "" if none
  std::deque<raftpb::Message> queue;
  bool stopping = false;

  // The message stream: the live one, or null while waiting to (re)connect.
  std::shared_ptr<OutStream> stream;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<peerpb::Peer::Stub> stub;
  uint64_t channel_version = 0;  // urls_version the channel was made for
  size_t url_index = 0;
  milliseconds backoff = kBackoffMin;
  Clock::time_point reconnect_at{};  // no new stream before this
  int64_t last_write_ns = 0;         // when the last write started (idle probe)
  Clock::time_point last_log{};

  grpc::ClientContext* snapshot_ctx = nullptr;
  // The MSG_SNAP for the snapshot thread; busy from when it is queued until the snapshot
  // thread has finished with it (and before it reports).
  std::optional<raftpb::Message> pending_snapshot;
  bool snapshot_busy = false;
  std::thread snapshotter;

  // The snapshot thread is still running (a removed peer is joined once it exits).
  std::atomic<bool> snapshotter_running{false};
  std::atomic<bool> connected{false};
  std::atomic<int64_t> write_started_ns{0};  // 0: no write in flight
  std::atomic<bool> report_pending{false};

  // Watchdog thread only.
  Clock::time_point last_report{};
};

class GrpcTransport;

// One Peer.Stream call, sending side. Writes are started by whoever holds the write
// token (`writing`, under the peer's mu): Send() on the raft thread when the stream is
// idle, OnWriteDone on a gRPC thread when more was queued meanwhile, the watchdog for
// an idle probe. A hold, taken before StartCall, keeps the call from completing (and the
// reactor alive) until the stream is broken and no write is in flight; then the hold is
// removed exactly once and gRPC calls OnDone. Owned by `self_` until OnDone, then by the
// transport until it is destroyed off gRPC's threads, and by shared_ptr copies of whoever
// is about to use it.
class OutStream final : public grpc::ClientWriteReactor<peerpb::RaftBatch> {
 public:
  OutStream(GrpcTransport* transport, std::shared_ptr<Peer> peer,
            std::shared_ptr<grpc::Channel> channel, uint64_t version, std::string url)
      : transport_(transport),
        peer_(std::move(peer)),
        channel_(std::move(channel)),
        version_(version),
        url_(std::move(url)) {}
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  GrpcTransport* const transport_;
  const std::shared_ptr<Peer> peer_;
  const std::shared_ptr<grpc::Channel> channel_;
  const uint64_t version_;  // the peer's urls_version it was made for
  const std::string url_;
  grpc::ClientContext ctx_;
  peerpb::StreamAck ack_;
  peerpb::RaftBatch batch_;  // the write in flight's; only the token holder touches it

  // Under peer_->mu.
  bool writing_ = false;        // the write token is taken
  bool broken_ = false;         // no longer the peer's stream; no new writes
  bool hold_released_ = false;  // RemoveHold done (or being done)
  bool wrote_ = false;          // a write succeeded
  std::shared_ptr<OutStream> self_;
};

// Peer.Stream, receiving side.
class StreamReactor final : public grpc::ServerReadReactor<peerpb::RaftBatch> {
 public:
  StreamReactor(GrpcTransport* transport, grpc::CallbackServerContext* ctx);
  void OnReadDone(bool ok) override;
  void OnDone() override;

 private:
  GrpcTransport* const transport_;
  grpc::CallbackServerContext* const ctx_;
  peerpb::RaftBatch batch_;
  bool checked_ = false;
  uint64_t from_ = 0;
};

// Peer.Snapshot, receiving side.
class SnapshotReactor final : public grpc::ServerReadReactor<peerpb::SnapshotChunk> {
 public:
  SnapshotReactor(GrpcTransport* transport, grpc::CallbackServerContext* ctx,
                  peerpb::SnapshotAck* ack);
  void OnReadDone(bool ok) override;
  void OnDone() override;

 private:
  absl::Status OnFirstChunk();
  absl::Status OnFileChunk();
  absl::Status OnLastChunk();
  // Refuses the snapshot: removes what was received and answers accepted=false.
  void Refuse(const absl::Status& why);
  void Cleanup();

  GrpcTransport* const transport_;
  grpc::CallbackServerContext* const ctx_;
  peerpb::SnapshotAck* const ack_;
  peerpb::SnapshotChunk chunk_;
  bool first_ = true;
  bool claimed_ = false;  // holds the one inbound-snapshot slot of from_
  uint64_t from_ = 0;
  raftpb::Message msg_;
  std::string dir_;  // empty once handed to the receiver
  int fd_ = -1;
  std::string file_;
  uint64_t file_offset_ = 0;
  uint32_t file_crc_ = 0;
  std::set<std::string> done_files_;
};

class PeerService final : public peerpb::Peer::CallbackService {
 public:
  explicit PeerService(GrpcTransport* transport) : transport_(transport) {}
  grpc::ServerReadReactor<peerpb::RaftBatch>* Stream(grpc::CallbackServerContext* ctx,
                                                     peerpb::StreamAck* ack) override {
    return new StreamReactor(transport_, ctx);
  }
  grpc::ServerReadReactor<peerpb::SnapshotChunk>* Snapshot(grpc::CallbackServerContext* ctx,
                                                           peerpb::SnapshotAck* ack) override {
    return new SnapshotReactor(transport_, ctx, ack);
  }

 private:
  GrpcTransport* const transport_;
};

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(TransportOptions options, RaftReceiver* receiver, SnapshotSource* source,
                GrpcTransportTestHooks hooks)
      : options_(std::move(options)),
        receiver_(receiver),
        source_(source),
        hooks_(std::move(hooks)),
        service_(this) {
    std::error_code ec;
    std::filesystem::create_directories(options_.scratch_dir, ec);
    // Snapshots being sent when the process stopped are garbage. (Received ones are not
    // ours to remove: an interrupted install may still need one; see storage/snapshot.h.)
    for (const auto& entry : std::filesystem::directory_iterator(options_.scratch_dir, ec)) {
      if (absl::StartsWith(entry.path().filename().string(), "send-")) {
        std::filesystem::remove_all(entry.path(), ec);
      }
    }
    watchdog_ = std::thread([this] { WatchdogLoop(); });
    pthread_setname_np(watchdog_.native_handle(), "peer-watchdog");
  }

  ~GrpcTransport() override { Stop(); }

  grpc::Service* service() override { return &service_; }

  void AddPeer(uint64_t id, const std::vector<std::string>& peer_urls) override {
    std::shared_ptr<Peer> peer;
    bool added = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      auto it = peers_.find(id);
      if (it != peers_.end()) {
        peer = it->second;
      } else {
        added = true;
        peer = std::make_shared<Peer>(id);
        peer->urls = peer_urls;
        peers_[id] = peer;
        peer->snapshotter_running = true;
        peer->snapshotter = std::thread([this, p = peer.get()] {
          SnapshotLoop(p);
          p->snapshotter_running = false;
        });
        pthread_setname_np(peer->snapshotter.native_handle(), "peer-snapshot");
      }
    }
    if (added) {
      Connect(peer);
    } else {
      UpdatePeer(id, peer_urls);
    }
  }

  void UpdatePeer(uint64_t id, const std::vector<std::string>& peer_urls) override {
    std::shared_ptr<Peer> peer = FindPeer(id);
    if (peer == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(peer->mu);
      if (peer->urls == peer_urls) return;
      peer->urls = peer_urls;
      peer->working_url.clear();
      peer->url_index = 0;
      ++peer->urls_version;
    }
    BreakStream(*peer, /*failed=*/false);
    Connect(peer);
  }

  // Does not wait for the peer's snapshot thread (it may be busy making files): the
  // watchdog joins it once it has exited, or Stop() does.
  void RemovePeer(uint64_t id) override {
    std::shared_ptr<Peer> peer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = peers_.find(id);
      if (it == peers_.end()) return;
      peer = std::move(it->second);
      peers_.erase(it);
      retired_.push_back(peer);
    }
    SignalStop(*peer);
  }

  // Queues each message for its peer (in order; one lock per peer), then starts a write
  // on every peer touched whose stream is idle: what one call sends to a peer goes out in
  // one batch (up to max_batch_bytes).
  void Send(std::vector<raftpb::Message> msgs) override {
    std::vector<std::pair<std::shared_ptr<Peer>, std::vector<raftpb::Message*>>> by_peer;
    for (raftpb::Message& msg : msgs) {
      auto it = std::find_if(by_peer.begin(), by_peer.end(),
                             [&](const auto& e) { return e.first->id == msg.to(); });
      if (it == by_peer.end()) {
        std::shared_ptr<Peer> peer = FindPeer(msg.to());
        if (peer == nullptr) {
          std::lock_guard<std::mutex> lock(mu_);
          if (msg.type() == raftpb::MSG_SNAP) {
            failed_snapshots_.insert(msg.to());
          } else {
            unknown_unreachable_.insert(msg.to());
          }
          continue;
        }
        it = by_peer.emplace(by_peer.end(), std::move(peer), std::vector<raftpb::Message*>());
      }
      if (msg.type() == raftpb::MSG_SNAP) {
        StartSnapshot(it->first, std::move(msg));
        continue;
      }
      it->second.push_back(&msg);
    }
    for (auto& [peer, peer_msgs] : by_peer) {
      if (peer_msgs.empty()) continue;
      {
        std::lock_guard<std::mutex> lock(peer->mu);
        for (raftpb::Message* msg : peer_msgs) {
          if (peer->queue.size() >= options_.max_queued_messages) {
            peer->report_pending = true;
            break;
          }
          peer->queue.push_back(std::move(*msg));
        }
      }
      StartWrite(*peer, /*probe=*/false);
    }
  }

  bool IsActive(uint64_t id) const override {
    {
      std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
      auto it = inbound_streams_.find(id);
      if (it != inbound_streams_.end() && it->second > 0) return true;
    }
    std::shared_ptr<Peer> peer = FindPeer(id);
    return peer != nullptr && peer->connected;
  }

  void Stop() override {
    std::map<uint64_t, std::shared_ptr<Peer>> peers;
    std::vector<std::shared_ptr<Peer>> retired;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      peers.swap(peers_);
      retired.swap(retired_);
      stop_cv_.notify_all();
    }
    {
      // Waits for deliveries in progress; none start after this.
      std::unique_lock<std::shared_mutex> lock(deliver_mu_);
      deliver_stopped_ = true;
    }
    {
      std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
      inbound_stopped_ = true;
      CancelInboundLocked([](const InboundInfo&) { return true; });
    }
    if (watchdog_.joinable()) watchdog_.join();
    for (auto& [id, peer] : peers) SignalStop(*peer);
    {
      // Every stream is broken now (cancelled, its hold removed or about to be): wait for
      // their OnDone, after which no reaction of ours runs.
      std::unique_lock<std::mutex> lock(streams_mu_);
      streams_cv_.wait(lock, [this] { return open_streams_ == 0; });
    }
    DestroyDeadStreams();
    for (auto& [id, peer] : peers) JoinPeer(*peer);
    for (auto& peer : retired) JoinPeer(*peer);
  }

  // ---- for the reactors

  // Checks a stream's header. FAILED_PRECONDITION with a message that says what is wrong.
  grpc::Status CheckHeader(const peerpb::StreamHeader& h, const char* rpc) const {
    if (h.cluster_id() != options_.cluster_id) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("kvd: ", rpc, " from member ", HexId(h.from()), " of cluster ",
                       HexId(h.cluster_id()), " refused: this member (", HexId(options_.local_id),
                       ") belongs to cluster ", HexId(options_.cluster_id)));
    }
    if (h.to() != options_.local_id) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("kvd: ", rpc, " from member ", HexId(h.from()), " is addressed to member ",
                       HexId(h.to()), " but this is member ", HexId(options_.local_id)));
    }
    if (h.from() == 0) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("kvd: ", rpc, " without a sender id"));
    }
    return grpc::Status::OK;
  }

  // Registers an inbound call so Stop() can cancel it; false once stopped.
  bool RegisterInbound(const void* reactor, grpc::CallbackServerContext* ctx) {
    std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
    if (inbound_stopped_) return false;
    inbound_[reactor] = InboundInfo{ctx, Clock::now(), false};
    return true;
  }
  void UnregisterInbound(const void* reactor) {
    std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
    inbound_.erase(reactor);
  }
  void InboundStreamUp(uint64_t from) {
    std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
    ++inbound_streams_[from];
  }
  void InboundStreamDown(uint64_t from) {
    std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
    if (--inbound_streams_[from] <= 0) inbound_streams_.erase(from);
  }
  // The one inbound snapshot slot per sender; false if taken. Subjects the call to the
  // snapshot deadline.
  bool ClaimSnapshotSlot(const void* reactor, uint64_t from) {
    std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
    if (!inbound_snapshots_.insert(from).second) return false;
    auto it = inbound_.find(reactor);
    if (it != inbound_.end()) it->second.snapshot = true;
    return true;
  }
  void ReleaseSnapshotSlot(uint64_t from) {
    std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
    inbound_snapshots_.erase(from);
  }

  // Hands the batch's messages to the receiver, in order.
  void Deliver(peerpb::RaftBatch& batch) {
    std::shared_lock<std::shared_mutex> lock(deliver_mu_);
    if (deliver_stopped_) return;
    for (raftpb::Message& msg : *batch.mutable_messages()) {
      if (msg.to() != options_.local_id) continue;  // not for us: raft must not see it
      // A snapshot is only ever a Snapshot call with its files; one on the message stream
      // has no state behind it.
      if (msg.type() == raftpb::MSG_SNAP) continue;
      receiver_->Receive(std::move(msg));
    }
  }
  // Hands dir over to the receiver; false (dir still the caller's) once stopped.
  bool DeliverSnapshot(raftpb::Message msg, const std::string& dir) {
    std::shared_lock<std::shared_mutex> lock(deliver_mu_);
    if (deliver_stopped_) return false;
    receiver_->ReceiveSnapshot(std::move(msg), dir);
    return true;
  }

  const TransportOptions& options() const { return options_; }

  // A fresh directory under scratch_dir.
  absl::StatusOr<std::string> MakeScratchDir(const char* kind, uint64_t peer) {
    std::string dir = absl::StrCat(options_.scratch_dir, "/", kind, "-", HexId(peer), "-",
                                   NowNanos(), "-", scratch_counter_.fetch_add(1));
    std::error_code ec;
    if (!std::filesystem::create_directories(dir, ec) || ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot create snapshot directory ", dir, ": ", ec.message()));
    }
    return dir;
  }

 private:
  struct InboundInfo {
    grpc::CallbackServerContext* ctx;
    Clock::time_point started;
    bool snapshot;
  };

  // Cancels the inbound calls that match. gRPC may run the reactor's reactions (and its
  // OnDone, which unregisters and deletes it) inline in TryCancel, on this thread: hence a
  // recursive mutex, and a fresh lookup of each call before cancelling it. A reactor in the
  // map is alive: its OnDone cannot unregister it while another thread holds the mutex.
  template <typename Match>
  void CancelInboundLocked(Match match) {
    std::vector<const void*> reactors;
    for (const auto& [reactor, info] : inbound_) {
      if (match(info)) reactors.push_back(reactor);
    }
    for (const void* reactor : reactors) {
      auto it = inbound_.find(reactor);
      if (it != inbound_.end()) it->second.ctx->TryCancel();
    }
  }

  std::shared_ptr<Peer> FindPeer(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : it->second;
  }

  bool stopped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }

  // Ends the peer's stream and tells its snapshot thread to exit, cancelling its call;
  // does not wait.
  void SignalStop(Peer& peer) {
    {
      std::lock_guard<std::mutex> lock(peer.mu);
      peer.stopping = true;
      peer.queue.clear();
      if (peer.snapshot_ctx != nullptr) peer.snapshot_ctx->TryCancel();
      peer.snapshot_cv.notify_all();
    }
    BreakStream(peer, /*failed=*/false);
  }

  static void JoinPeer(Peer& peer) {
    std::thread snapshotter;
    {
      std::lock_guard<std::mutex> lock(peer.mu);
      snapshotter = std::move(peer.snapshotter);
    }
    if (snapshotter.joinable()) snapshotter.join();
  }

  // At most one line per kLogInterval per peer. Under p.mu.
  static void Log(Peer& p, const std::string& what) {
    Clock::time_point now = Clock::now();
    if (now - p.last_log < kLogInterval) return;
    p.last_log = now;
    std::fprintf(stderr, "kvd: transport: peer %s: %s\n", HexId(p.id).c_str(), what.c_str());
  }

  // ---- sending: one callback stream per peer (see OutStream)

  // Starts a stream to the peer unless it has one, is stopping or is backing off. Its first
  // write carries the header and whatever is queued.
  void Connect(const std::shared_ptr<Peer>& p) {
    std::shared_ptr<OutStream> s;
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->stopping || p->stream != nullptr || p->urls.empty() ||
          Clock::now() < p->reconnect_at) {
        return;
      }
      std::string url = p->urls[p->url_index % p->urls.size()];
      if (p->stub == nullptr || p->channel_version != p->urls_version) {
        absl::StatusOr<std::string> target = PeerUrlToTarget(url);
        if (!target.ok()) {
          Log(*p, std::string(target.status().message()));
          ++p->url_index;
          BackOffLocked(*p);
          return;
        }
        p->channel = MakeChannel(*target);
        p->stub = peerpb::Peer::NewStub(p->channel);
        p->channel_version = p->urls_version;
      }
      s = std::make_shared<OutStream>(this, p, p->channel, p->urls_version, std::move(url));
      s->self_ = s;
      p->stream = s;
      s->writing_ = true;
      FillBatchLocked(*p, &s->batch_);
      peerpb::StreamHeader* h = s->batch_.mutable_header();
      h->set_cluster_id(options_.cluster_id);
      h->set_from(options_.local_id);
      h->set_to(p->id);
      {
        std::lock_guard<std::mutex> streams_lock(streams_mu_);
        ++open_streams_;
      }
      p->stub->async()->Stream(&s->ctx_, &s->ack_, s.get());
      s->AddHold();
    }
    s->StartWrite(&s->batch_);
    s->StartCall();
  }

  // Takes the write token of the peer's stream if it is idle and has something to send
  // (or, for probe, has not written for kIdleProbeInterval: an empty batch), and starts
  // the write. Never blocks: StartWrite only queues it with gRPC.
  void StartWrite(Peer& p, bool probe) {
    std::shared_ptr<OutStream> s;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      s = p.stream;
      if (s == nullptr || s->writing_) return;
      if (p.queue.empty() && !(probe && NowNanos() - p.last_write_ns >= kIdleProbeNanos)) {
        return;
      }
      s->writing_ = true;
      FillBatchLocked(p, &s->batch_);
    }
    s->StartWrite(&s->batch_);
  }

  // Moves what is queued (up to max_batch_bytes; one larger message alone) into batch,
  // and marks the write as started.
  void FillBatchLocked(Peer& p, peerpb::RaftBatch* batch) {
    batch->Clear();
    size_t bytes = 0;
    while (!p.queue.empty()) {
      if (batch->messages_size() > 0 || p.queue.size() > 1) {
        size_t n = p.queue.front().ByteSizeLong();
        if (batch->messages_size() > 0 && bytes + n > options_.max_batch_bytes) break;
        bytes += n;
      }
      *batch->add_messages() = std::move(p.queue.front());
      p.queue.pop_front();
    }
    p.last_write_ns = NowNanos();
    p.write_started_ns = p.last_write_ns;
  }

  // No new stream before the back-off has passed; doubles it.
  static void BackOffLocked(Peer& p) {
    p.reconnect_at = Clock::now() + p.backoff;
    p.backoff = std::min(p.backoff * 2, kBackoffMax);
  }

  // Marks s broken, and if it is the peer's stream, clears it and schedules the next one:
  // at once after a new URL or a stop (failed false), else after the back-off, dropping
  // what is queued (stale for raft by then) and reporting the peer. Returns whether the
  // caller must remove the hold (no write in flight, not removed yet).
  bool BreakLocked(Peer& p, OutStream& s, bool failed) {
    if (!s.broken_) {
      s.broken_ = true;
      if (p.stream.get() == &s) {
        p.stream.reset();
        p.connected = false;
        if (failed && !p.stopping) {
          p.queue.clear();
          p.report_pending = true;
          if (s.wrote_) {
            p.backoff = kBackoffMin;
          } else {
            ++p.url_index;  // try the next URL of the peer, if it has several
            p.stub.reset();
          }
          BackOffLocked(p);
        }
      }
    }
    if (s.writing_ || s.hold_released_) return false;
    s.hold_released_ = true;
    return true;
  }

  void DestroyDeadStreams() {
    std::vector<std::shared_ptr<OutStream>> dead;
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      dead.swap(dead_streams_);
    }
  }

  // Ends the peer's stream, if it has one: cancels the call (a write in flight fails).
  void BreakStream(Peer& p, bool failed) {
    std::shared_ptr<OutStream> s;
    bool release;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      s = p.stream;
      if (s == nullptr) return;
      release = BreakLocked(p, *s, failed);
    }
    s->ctx_.TryCancel();
    if (release) s->RemoveHold();
  }

 public:
  // OutStream's reactions (gRPC threads).
  void OnWriteDone(OutStream* s, bool ok) {
    Peer& p = *s->peer_;
    bool more = false;
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      p.write_started_ns = 0;
      if (!ok) {
        if (s->batch_.messages_size() > 0) p.report_pending = true;
        s->writing_ = false;
        release = BreakLocked(p, *s, /*failed=*/true);
      } else {
        if (!s->wrote_) {
          s->wrote_ = true;
          if (p.urls_version == s->version_) p.working_url = s->url_;
        }
        if (!s->broken_) p.connected = true;
        if (!s->broken_ && !p.queue.empty()) {
          FillBatchLocked(p, &s->batch_);
          more = true;
        } else {
          s->writing_ = false;
          // Broken while this write was in flight: the hold is now this reaction's to remove.
          if (s->broken_) release = BreakLocked(p, *s, /*failed=*/false);
        }
      }
    }
    if (release) s->RemoveHold();
    if (more) s->StartWrite(&s->batch_);
  }

  void OnStreamDone(OutStream* s, const grpc::Status& status) {
    {
      std::lock_guard<std::mutex> lock(s->peer_->mu);
      if (!status.ok() && !s->peer_->stopping && s->version_ == s->peer_->urls_version) {
        Log(*s->peer_, absl::StrCat("stream to ", s->url_, " failed: ", status.error_message()));
      }
    }
    // Not destroyed here: its ClientContext may hold the last reference to the channel,
    // and gRPC (1.51) breaks when a channel is destroyed on the callback thread pool's own
    // threads (it shuts that pool down from inside it). The watchdog or Stop() destroys it.
    std::lock_guard<std::mutex> lock(streams_mu_);
    dead_streams_.push_back(std::move(s->self_));
    if (--open_streams_ == 0) streams_cv_.notify_all();
  }

 private:
  // ---- sending snapshots: one thread per peer, one snapshot at a time

  void StartSnapshot(const std::shared_ptr<Peer>& peer, raftpb::Message msg) {
    std::lock_guard<std::mutex> lock(peer->mu);
    if (peer->stopping) return;
    // Raft sends another snapshot to a peer only after the first is reported (and the
    // report comes after snapshot_busy is cleared), so this drop does not lose a report.
    if (peer->snapshot_busy) return;
    peer->snapshot_busy = true;
    peer->pending_snapshot = std::move(msg);
    peer->snapshot_cv.notify_all();
  }

  void SnapshotLoop(Peer* p) {
    while (true) {
      raftpb::Message msg;
      {
        std::unique_lock<std::mutex> lock(p->mu);
        p->snapshot_cv.wait(lock, [p] { return p->stopping || p->pending_snapshot.has_value(); });
        if (p->stopping) return;
        msg = std::move(*p->pending_snapshot);
        p->pending_snapshot.reset();
      }
      absl::Status s = SendSnapshot(p, std::move(msg));
      if (!s.ok()) {
        std::fprintf(stderr, "kvd: transport: snapshot to %s failed: %s\n", HexId(p->id).c_str(),
                     s.ToString().c_str());
      }
      {
        std::lock_guard<std::mutex> lock(p->mu);
        p->snapshot_busy = false;
        if (p->stopping) return;
      }
      if (!stopped() && options_.on_snapshot_sent) options_.on_snapshot_sent(p->id, s.ok());
    }
  }

  absl::Status SendSnapshot(Peer* p, raftpb::Message msg) {
    absl::StatusOr<std::string> dir = MakeScratchDir("send", p->id);
    if (!dir.ok()) return dir.status();
    absl::Status s = source_->WriteSnapshotFiles(msg, *dir);
    if (s.ok()) s = StreamSnapshot(p, std::move(msg), *dir);
    std::error_code ec;
    std::filesystem::remove_all(*dir, ec);
    return s;
  }

  absl::Status StreamSnapshot(Peer* p, raftpb::Message msg, const std::string& dir) {
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (!entry.is_regular_file()) {
        return absl::InternalError(absl::StrCat("snapshot directory ", dir, " holds ",
                                                entry.path().string(), ", not a file"));
      }
      files.push_back(entry.path().filename().string());
    }
    if (ec) return absl::UnavailableError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
    std::sort(files.begin(), files.end());

    std::string url;
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->urls.empty()) return absl::UnavailableError("peer has no URLs");
      url = p->working_url.empty() ? p->urls.front() : p->working_url;
    }
    absl::StatusOr<std::string> target = PeerUrlToTarget(url);
    if (!target.ok()) return target.status();
    std::unique_ptr<peerpb::Peer::Stub> stub = peerpb::Peer::NewStub(MakeChannel(*target));

    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(options_.snapshot_timeout_ms));
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->stopping) return absl::CancelledError("transport stopped");
      p->snapshot_ctx = &ctx;
    }
    struct Unregister {
      Peer* p;
      ~Unregister() {
        std::lock_guard<std::mutex> lock(p->mu);
        p->snapshot_ctx = nullptr;
      }
    } unregister{p};

    peerpb::SnapshotAck ack;
    std::unique_ptr<grpc::ClientWriter<peerpb::SnapshotChunk>> writer = stub->Snapshot(&ctx, &ack);
    absl::Status local = WriteSnapshotChunks(writer.get(), std::move(msg), p->id, dir, files);
    if (local.ok()) writer->WritesDone();
    grpc::Status status = writer->Finish();
    // The receiver's verdict explains a broken write better than the write does.
    if (!status.ok()) {
      return absl::UnavailableError(absl::StrCat("peer ", url, ": ", status.error_message()));
    }
    if (!ack.accepted()) {
      return absl::DataLossError(absl::StrCat("peer ", url, " refused: ", ack.error()));
    }
    return local;
  }

  absl::Status WriteSnapshotChunks(grpc::ClientWriter<peerpb::SnapshotChunk>* writer,
                                   raftpb::Message msg, uint64_t peer_id, const std::string& dir,
                                   const std::vector<std::string>& files) {
    auto send = [&](peerpb::SnapshotChunk& chunk) {
      if (hooks_.on_send_snapshot_chunk) hooks_.on_send_snapshot_chunk(chunk);
      return writer->Write(chunk);
    };
    peerpb::SnapshotChunk first;
    first.mutable_header()->set_cluster_id(options_.cluster_id);
    first.mutable_header()->set_from(options_.local_id);
    first.mutable_header()->set_to(peer_id);
    *first.mutable_message() = std::move(msg);
    if (!send(first)) return absl::UnavailableError("stream broke");

    const size_t chunk_bytes = std::max<size_t>(options_.snapshot_chunk_bytes, 1);
    for (const std::string& name : files) {
      std::string path = absl::StrCat(dir, "/", name);
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path));
      struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
      } closer{fd};
      uint64_t offset = 0;
      uint32_t crc = 0;
      while (true) {
        peerpb::SnapshotChunk chunk;
        chunk.set_file_name(name);
        chunk.set_offset(offset);
        std::string* data = chunk.mutable_data();
        data->resize(chunk_bytes);
        size_t got = 0;
        while (got < chunk_bytes) {
          ssize_t n = ::read(fd, data->data() + got, chunk_bytes - got);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return ErrnoStatus(absl::StrCat("read ", path));
          if (n == 0) break;
          got += static_cast<size_t>(n);
        }
        data->resize(got);
        crc = storage::Crc32c(crc, data->data(), got);
        offset += got;
        bool last = got < chunk_bytes;
        if (!last) {
          // Exactly a chunk read: the file may end here; peek so the last data chunk carries
          // file_done (an empty final chunk is fine too, but costs a message).
          struct stat st;
          if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == offset) last = true;
        }
        if (last) {
          chunk.set_file_done(true);
          chunk.set_file_size(offset);
          chunk.set_file_crc32c(crc);
        }
        if (!send(chunk)) return absl::UnavailableError("stream broke");
        if (last) break;
      }
    }
    peerpb::SnapshotChunk done;
    done.set_snapshot_done(true);
    done.set_file_count(static_cast<uint32_t>(files.size()));
    if (!send(done)) return absl::UnavailableError("stream broke");
    return absl::OkStatus();
  }

  // ---- the watchdog

  void WatchdogLoop() {
    std::map<uint64_t, Clock::time_point> unknown_last_report;
    while (true) {
      std::vector<std::shared_ptr<Peer>> peers;
      std::set<uint64_t> unknown;
      std::set<uint64_t> failed_snapshots;
      {
        std::unique_lock<std::mutex> lock(mu_);
        stop_cv_.wait_for(lock, kWatchdogTick, [this] { return stopped_; });
        if (stopped_) return;
        for (const auto& [id, peer] : peers_) peers.push_back(peer);
        unknown.swap(unknown_unreachable_);
        failed_snapshots.swap(failed_snapshots_);
        // Removed peers whose threads have exited: joining them now is instant.
        for (auto it = retired_.begin(); it != retired_.end();) {
          if (!(*it)->snapshotter_running) {
            JoinPeer(**it);
            it = retired_.erase(it);
          } else {
            ++it;
          }
        }
      }
      DestroyDeadStreams();
      Clock::time_point now = Clock::now();
      int64_t now_ns = NowNanos();
      for (const std::shared_ptr<Peer>& p : peers) {
        int64_t started = p->write_started_ns;
        if (started != 0 && now_ns - started > options_.write_timeout_ms * 1000000) {
          BreakStream(*p, /*failed=*/true);
        }
        Connect(p);
        StartWrite(*p, /*probe=*/true);
        if (p->report_pending && now - p->last_report >= kReportInterval) {
          p->report_pending = false;
          p->last_report = now;
          if (options_.on_unreachable) options_.on_unreachable(p->id);
        }
      }
      for (uint64_t id : unknown) {
        Clock::time_point& last = unknown_last_report[id];
        if (now - last < kReportInterval) continue;
        last = now;
        if (options_.on_unreachable) options_.on_unreachable(id);
      }
      for (uint64_t id : failed_snapshots) {
        if (options_.on_snapshot_sent) options_.on_snapshot_sent(id, false);
      }
      std::lock_guard<std::recursive_mutex> lock(inbound_mu_);
      CancelInboundLocked([&](const InboundInfo& info) {
        return info.snapshot && now - info.started > milliseconds(options_.snapshot_timeout_ms);
      });
    }
  }

  const TransportOptions options_;
  RaftReceiver* const receiver_;
  SnapshotSource* const source_;
  const GrpcTransportTestHooks hooks_;
  PeerService service_;
  std::atomic<uint64_t> scratch_counter_{0};

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;
  std::map<uint64_t, std::shared_ptr<Peer>> peers_;
  std::vector<std::shared_ptr<Peer>> retired_;  // removed, threads not yet joined
  std::set<uint64_t> unknown_unreachable_;      // messages to peers never added
  std::set<uint64_t> failed_snapshots_;         // snapshots to peers never added
  std::thread watchdog_;

  // Outbound streams whose OnDone has not run yet; Stop() waits for none.
  std::mutex streams_mu_;
  std::condition_variable streams_cv_;
  int open_streams_ = 0;
  // Done streams, to be destroyed off gRPC's threads (see OnStreamDone).
  std::vector<std::shared_ptr<OutStream>> dead_streams_;

  // Held shared while calling the receiver, exclusively by Stop(): no receiver call runs
  // after Stop() returns.
  mutable std::shared_mutex deliver_mu_;
  bool deliver_stopped_ = false;

  // Recursive: see CancelInboundLocked.
  mutable std::recursive_mutex inbound_mu_;
  bool inbound_stopped_ = false;
  std::map<const void*, InboundInfo> inbound_;
  std::map<uint64_t, int> inbound_streams_;  // open, header-checked streams per sender
  std::set<uint64_t> inbound_snapshots_;     // senders with a snapshot being received
};

// ---------------------------------------------------------------------------------------
// OutStream

void OutStream::OnWriteDone(bool ok) { transport_->OnWriteDone(this, ok); }

void OutStream::OnDone(const grpc::Status& status) { transport_->OnStreamDone(this, status); }

// ---------------------------------------------------------------------------------------
// StreamReactor

StreamReactor::StreamReactor(GrpcTransport* transport, grpc::CallbackServerContext* ctx)
    : transport_(transport), ctx_(ctx) {
  if (!transport_->RegisterInbound(this, ctx_)) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "kvd: peer transport stopped"));
    return;
  }
  StartRead(&batch_);
}

void StreamReactor::OnReadDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status::OK);
    return;
  }
  if (!checked_) {
    grpc::Status s = transport_->CheckHeader(batch_.header(), "raft stream");
    if (!s.ok()) {
      std::fprintf(stderr, "kvd: transport: %s\n", s.error_message().c_str());
      Finish(s);
      return;
    }
    checked_ = true;
    from_ = batch_.header().from();
    transport_->InboundStreamUp(from_);
  }
  transport_->Deliver(batch_);
  batch_.Clear();
  StartRead(&batch_);
}

void StreamReactor::OnDone() {
  if (checked_) transport_->InboundStreamDown(from_);
  transport_->UnregisterInbound(this);
  delete this;
}

// ---------------------------------------------------------------------------------------
// SnapshotReactor

SnapshotReactor::SnapshotReactor(GrpcTransport* transport, grpc::CallbackServerContext* ctx,
                                 peerpb::SnapshotAck* ack)
    : transport_(transport), ctx_(ctx), ack_(ack) {
  if (!transport_->RegisterInbound(this, ctx_)) {
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "kvd: peer transport stopped"));
    return;
  }
  StartRead(&chunk_);
}

void SnapshotReactor::OnReadDone(bool ok) {
  if (!ok) {
    Refuse(absl::AbortedError("snapshot stream ended before its last chunk"));
    return;
  }
  if (first_) {
    grpc::Status s = transport_->CheckHeader(chunk_.header(), "snapshot");
    if (!s.ok()) {
      std::fprintf(stderr, "kvd: transport: %s\n", s.error_message().c_str());
      Finish(s);
      return;
    }
    first_ = false;
    if (absl::Status st = OnFirstChunk(); !st.ok()) {
      Refuse(st);
      return;
    }
  } else if (chunk_.snapshot_done()) {
    if (absl::Status st = OnLastChunk(); !st.ok()) {
      Refuse(st);
      return;
    }
    ack_->set_accepted(true);
    Cleanup();
    Finish(grpc::Status::OK);
    return;
  } else if (absl::Status st = OnFileChunk(); !st.ok()) {
    Refuse(st);
    return;
  }
  chunk_.Clear();
  StartRead(&chunk_);
}

absl::Status SnapshotReactor::OnFirstChunk() {
  from_ = chunk_.header().from();
  const raftpb::Message& msg = chunk_.message();
  if (msg.type() != raftpb::MSG_SNAP || msg.to() != transport_->options().local_id) {
    return absl::InvalidArgumentError("first chunk does not carry a MSG_SNAP for this member");
  }
  if (!transport_->ClaimSnapshotSlot(this, from_)) {
    return absl::ResourceExhaustedError("a snapshot from this member is already being received");
  }
  claimed_ = true;
  absl::StatusOr<std::string> dir = transport_->MakeScratchDir("recv", from_);
  if (!dir.ok()) return dir.status();
  dir_ = *dir;
  msg_ = std::move(*chunk_.mutable_message());
  return absl::OkStatus();
}

absl::Status SnapshotReactor::OnFileChunk() {
  const std::string& name = chunk_.file_name();
  if (!ValidFileName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("bad file name '", name, "'"));
  }
  if (fd_ < 0) {
    if (done_files_.count(name) > 0) {
      return absl::InvalidArgumentError(absl::StrCat("file ", name, " sent twice"));
    }
    if (done_files_.size() >= kMaxSnapshotFiles) {
      return absl::ResourceExhaustedError("too many files in snapshot");
    }
    std::string path = absl::StrCat(dir_, "/", name);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) return ErrnoStatus(absl::StrCat("create ", path));
    file_ = name;
    file_offset_ = 0;
    file_crc_ = 0;
  } else if (name != file_) {
    return absl::InvalidArgumentError(
        absl::StrCat("file ", name, " started before ", file_, " was done"));
  }
  if (chunk_.offset() != file_offset_) {
    return absl::InvalidArgumentError(absl::StrCat("file ", name, ": chunk at offset ",
                                                   chunk_.offset(), ", expected ", file_offset_));
  }
  if (absl::Status s = WriteAll(fd_, chunk_.data()); !s.ok()) return s;
  file_crc_ = storage::Crc32c(file_crc_, chunk_.data().data(), chunk_.data().size());
  file_offset_ += chunk_.data().size();
  if (!chunk_.file_done()) return absl::OkStatus();
  if (chunk_.file_size() != file_offset_ || chunk_.file_crc32c() != file_crc_) {
    return absl::DataLossError(absl::StrCat(
        "file ", name, " arrived corrupt: ", file_offset_, " bytes with CRC32C ", file_crc_,
        ", the sender says ", chunk_.file_size(), " bytes with CRC32C ", chunk_.file_crc32c()));
  }
  if (::fsync(fd_) != 0) return ErrnoStatus(absl::StrCat("fsync ", file_));
  ::close(fd_);
  fd_ = -1;
  done_files_.insert(name);
  return absl::OkStatus();
}

absl::Status SnapshotReactor::OnLastChunk() {
  if (fd_ >= 0) return absl::DataLossError(absl::StrCat("file ", file_, " is incomplete"));
  if (chunk_.file_count() != done_files_.size()) {
    return absl::DataLossError(absl::StrCat("the sender sent ", chunk_.file_count(), " files, ",
                                            done_files_.size(), " arrived"));
  }
  if (absl::Status s = SyncDir(dir_); !s.ok()) return s;
  if (!transport_->DeliverSnapshot(std::move(msg_), dir_)) {
    return absl::UnavailableError("the receiving member is stopping");
  }
  dir_.clear();  // the receiver's now
  return absl::OkStatus();
}

void SnapshotReactor::Refuse(const absl::Status& why) {
  std::fprintf(stderr, "kvd: transport: snapshot from %s refused: %s\n", HexId(from_).c_str(),
               why.ToString().c_str());
  Cleanup();
  ack_->set_accepted(false);
  ack_->set_error(std::string(why.message()));
  Finish(grpc::Status::OK);
}

void SnapshotReactor::Cleanup() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
  if (claimed_) {
    transport_->ReleaseSnapshotSlot(from_);
    claimed_ = false;
  }
}

void SnapshotReactor::OnDone() {
  Cleanup();
  transport_->UnregisterInbound(this);
  delete this;
}

}  // namespace

absl::StatusOr<std::string> PeerUrlToTarget(const std::string& url) {
  constexpr absl::string_view kScheme = "http://";
  absl::string_view rest(url);
  if (!absl::StartsWith(rest, kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer URL '", url, "' is not http://host:port (TLS is not supported yet)"));
  }
  rest.remove_prefix(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t colon = rest.rfind(':');
  if (rest.empty() || colon == absl::string_view::npos || colon == 0 || colon + 1 == rest.size() ||
      rest.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("peer URL '", url, "' is not http://host:port"));
  }
  return std::string(rest);
}

std::unique_ptr<Transport> NewGrpcTransportForTest(TransportOptions options, RaftReceiver* receiver,
                                                   SnapshotSource* source,
                                                   GrpcTransportTestHooks hooks) {
  return std::make_unique<GrpcTransport>(std::move(options), receiver, source, std::move(hooks));
}

std::unique_ptr<Transport> NewGrpcTransport(TransportOptions options, RaftReceiver* receiver,
                                            SnapshotSource* source) {
  return NewGrpcTransportForTest(std::move(options), receiver, source, {});
}

}  // namespace kvd::server
