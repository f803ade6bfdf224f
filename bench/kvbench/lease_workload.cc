// lease: each client loops grant (TTL --ttl) -> --keepalives-per-lease keep-alives on a
// shared LeaseKeepAlive stream -> revoke. --lease-streams streams carry the keep-alives of
// all clients; a stream matches each answer to its client by lease id.
#include <deque>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "bench/kvbench/client.h"
#include "bench/kvbench/flags.h"
#include "bench/kvbench/workload.h"

namespace kvbench {
namespace {

using etcdserverpb::Lease;

enum LeaseRow { kGrant = 0, kKeepAlive = 1, kRevoke = 2 };

// Told of the answer to its keep-alive (on the stream's polling thread).
class KeepAliveWaiter {
 public:
  // `ttl` of the answer (0: the lease is gone), or an error `code` (the stream broke).
  virtual void OnKeepAlive(grpc::StatusCode code, int64_t ttl) = 0;

 protected:
  ~KeepAliveWaiter() = default;
};

class KeepAliveStream {
 public:
  KeepAliveStream(Engine* engine, int thread, int conn)
      : engine_(engine), thread_(thread), conn_(&engine->conn(conn)) {}

  void Open() {
    engine_->AddActive();
    ctx_.set_deadline(engine_->StreamDeadline());
    rw_ = conn_->lease->PrepareAsyncLeaseKeepAlive(&ctx_, engine_->cq(thread_));
    rw_->StartCall(&start_tag_);
  }

  // Sends a keep-alive for `id`; `waiter` hears the answer. On the stream's thread only.
  void KeepAlive(int64_t id, KeepAliveWaiter* waiter) {
    if (broken_) return waiter->OnKeepAlive(grpc::StatusCode::UNAVAILABLE, 0);
    waiting_[id] = {waiter, NowNs()};
    pending_.push_back(id);
    if (started_ && !writing_) WriteNext();
  }

  void Cancel() { ctx_.TryCancel(); }

 private:
  struct Waiting {
    KeepAliveWaiter* waiter;
    int64_t sent_ns;
  };

  void WriteNext() {
    if (pending_.empty() || broken_) return;
    writing_ = true;
    req_.set_id(pending_.front());
    pending_.pop_front();
    rw_->Write(req_, &write_tag_);
  }

  void OnStart(bool ok) {
    if (!ok) return Break();
    started_ = true;
    rw_->Read(&resp_, &read_tag_);
    WriteNext();
  }

  void OnWrite(bool ok) {
    writing_ = false;
    if (ok) WriteNext();
  }

  void OnRead(bool ok) {
    if (!ok) return Break();
    auto it = waiting_.find(resp_.id());
    if (it != waiting_.end()) {
      Waiting w = it->second;
      waiting_.erase(it);
      OpStats& row = engine_->stats(thread_, kKeepAlive);
      if (resp_.ttl() > 0) {
        row.Ok(NowNs() - w.sent_ns);
      } else {
        row.Error(grpc::StatusCode::NOT_FOUND);  // etcd: "requested lease not found"
      }
      w.waiter->OnKeepAlive(grpc::StatusCode::OK, resp_.ttl());
    }
    rw_->Read(&resp_, &read_tag_);
  }

  // The stream failed or was cancelled: every waiter hears it, later keep-alives fail at
  // once.
  void Break() {
    broken_ = true;
    pending_.clear();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [id, w] : waiting) w.waiter->OnKeepAlive(grpc::StatusCode::UNAVAILABLE, 0);
    rw_->Finish(&status_, &finish_tag_);
  }

  void OnFinish(bool) {
    const bool expected = engine_->stopping() && status_.error_code() == grpc::CANCELLED;
    if (!status_.ok() && !expected) {
      engine_->stats(thread_, kKeepAlive).Error(status_.error_code());
    }
    engine_->DoneActive();
  }

  Engine* engine_;
  int thread_;
  Conn* conn_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                                etcdserverpb::LeaseKeepAliveResponse>>
      rw_;
  etcdserverpb::LeaseKeepAliveRequest req_;
  etcdserverpb::LeaseKeepAliveResponse resp_;
  std::deque<int64_t> pending_;
  absl::flat_hash_map<int64_t, Waiting> waiting_;
  bool started_ = false;
  bool writing_ = false;
  bool broken_ = false;
  grpc::Status status_;
  MemberTag<KeepAliveStream> start_tag_{this, &KeepAliveStream::OnStart};
  MemberTag<KeepAliveStream> read_tag_{this, &KeepAliveStream::OnRead};
  MemberTag<KeepAliveStream> write_tag_{this, &KeepAliveStream::OnWrite};
  MemberTag<KeepAliveStream> finish_tag_{this, &KeepAliveStream::OnFinish};
};

class LeaseClient final : public LoopClient, public KeepAliveWaiter {
 public:
  LeaseClient(Engine* engine, int index, KeepAliveStream* stream)
      : LoopClient(engine, index), stream_(stream) {
    grant_.set_ttl(absl::GetFlag(FLAGS_ttl));
  }

  void Proceed(bool) override {
    if (granting_) {
      granting_ = false;
      if (!grant_call_.status.ok()) {
        row(kGrant).Error(grant_call_.status.error_code());
        return Next();
      }
      row(kGrant).Ok(NowNs() - grant_call_.start_ns);
      engine_->CountProgress();
      keepalives_left_ = absl::GetFlag(FLAGS_keepalives_per_lease);
      revoke_.set_id(grant_call_.resp.id());
      return KeepAliveOrRevoke();
    }
    if (revoke_call_.status.ok()) {
      row(kRevoke).Ok(NowNs() - revoke_call_.start_ns);
    } else {
      row(kRevoke).Error(revoke_call_.status.error_code());
    }
    Next();
  }

  void OnKeepAlive(grpc::StatusCode code, int64_t ttl) override {
    if (code != grpc::StatusCode::OK || ttl <= 0) keepalives_left_ = 0;
    KeepAliveOrRevoke();
  }

 private:
  void Next() override {
    if (!engine_->TryStartOp()) return Finished();
    granting_ = true;
    grant_call_.Start(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseGrant, grant_, cq(),
                      timeout(), this);
  }

  void KeepAliveOrRevoke() {
    if (keepalives_left_ > 0 && !engine_->stopping()) {
      --keepalives_left_;
      return stream_->KeepAlive(revoke_.id(), this);
    }
    // Revoke even when stopping: leave no lease behind.
    revoke_call_.Start(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseRevoke, revoke_, cq(),
                       timeout(), this);
  }

  KeepAliveStream* stream_;
  bool granting_ = false;
  int keepalives_left_ = 0;
  etcdserverpb::LeaseGrantRequest grant_;
  etcdserverpb::LeaseRevokeRequest revoke_;
  UnaryCall<etcdserverpb::LeaseGrantResponse> grant_call_;
  UnaryCall<etcdserverpb::LeaseRevokeResponse> revoke_call_;
};

class LeaseWorkload final : public Workload {
 public:
  explicit LeaseWorkload(Engine* engine) : engine_(engine) {}
  std::vector<std::string> Rows() const override { return {"grant", "keepalive", "revoke"}; }

  absl::Status Setup() override {
    if (absl::GetFlag(FLAGS_ttl) < 1 || absl::GetFlag(FLAGS_keepalives_per_lease) < 0) {
      return absl::InvalidArgumentError("--ttl must be >= 1, --keepalives-per-lease >= 0");
    }
    return absl::OkStatus();
  }

  // Streams are spread over the polling threads (at least one each); a client uses a
  // stream of its own thread.
  void Start() override {
    const int threads = engine_->threads();
    const int streams = std::max(absl::GetFlag(FLAGS_lease_streams), threads);
    by_thread_.resize(threads);
    for (int s = 0; s < streams; ++s) {
      streams_.push_back(std::make_unique<KeepAliveStream>(engine_, s % threads, s));
      by_thread_[s % threads].push_back(streams_.back().get());
    }
    for (auto& s : streams_) s->Open();
    for (int i = 0; i < engine_->options().clients; ++i) {
      const auto& mine = by_thread_[i % threads];
      clients_.push_back(
          std::make_unique<LeaseClient>(engine_, i, mine[(i / threads) % mine.size()]));
    }
    BeginAll(clients_);
  }

  void Cancel() override {
    // Clients revoke their leases on the way out: give them --timeout, then end streams.
    // (Streams count as active until they finish, so wait on the clients' own count.)
    const int64_t limit_ns = NowNs() + absl::ToInt64Nanoseconds(engine_->timeout());
    while (engine_->workers() > 0 && NowNs() < limit_ns) absl::SleepFor(absl::Milliseconds(1));
    for (auto& s : streams_) s->Cancel();
  }

 private:
  Engine* engine_;
  std::vector<std::unique_ptr<KeepAliveStream>> streams_;
  std::vector<std::vector<KeepAliveStream*>> by_thread_;
  std::vector<std::unique_ptr<LeaseClient>> clients_;
};

}  // namespace

std::unique_ptr<Workload> MakeLeaseWorkload(Engine* engine) {
  return std::make_unique<LeaseWorkload>(engine);
}

}  // namespace kvbench
