#include "server/lease/leader_forwarder.h"

#include <chrono>
#include <utility>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace kvd::server::lease {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace

// What both kinds of forwarded call share: a context registered with the forwarder from
// Launch to Finish, and an answer given once the call is gone.
class ForwardedCall {
 public:
  virtual ~ForwardedCall() = default;

  // Starts the call on the leader at address; answers at once if the forwarder is
  // stopping. Deletes itself when done.
  void Launch(LeaderForwarder* forwarder, const std::string& address, int64_t timeout_ms) {
    forwarder_ = forwarder;
    ctx_.AddMetadata(kForwardedMetadata, "1");
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    etcdserverpb::Lease::Stub* stub = forwarder->Begin(address, &ctx_, &id_);
    if (stub == nullptr) {
      Answer(absl::UnavailableError("etcdserver: server stopped"));
      delete this;
      return;
    }
    Start(stub);
  }

 protected:
  virtual void Start(etcdserverpb::Lease::Stub* stub) = 0;
  // Gives the call's outcome to its caller (s: the call's status when it failed).
  virtual void Answer(const absl::Status& s) = 0;

  // The call is over (its last gRPC callback): answer, free it, release the forwarder.
  void Finish(const absl::Status& s) {
    Answer(s);
    LeaderForwarder* forwarder = forwarder_;
    forwarder->Ending(id_);
    delete this;
    forwarder->Ended();
  }

  grpc::ClientContext ctx_;

 private:
  LeaderForwarder* forwarder_ = nullptr;
  uint64_t id_ = 0;
};

namespace {

// One request on a LeaseKeepAlive stream: write it and half-close, read the answer, done.
class ForwardedKeepAlive final
    : public ForwardedCall,
      public grpc::ClientBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&>;

  ForwardedKeepAlive(int64_t id, Done done) : done_(std::move(done)) { req_.set_id(id); }

  void OnReadDone(bool ok) override { answered_ = ok; }
  void OnWriteDone(bool) override {}
  void OnDone(const grpc::Status& s) override { Finish(FromGrpc(s)); }

 private:
  void Start(etcdserverpb::Lease::Stub* stub) override {
    stub->async()->LeaseKeepAlive(&ctx_, this);
    StartWriteLast(&req_, grpc::WriteOptions());
    StartRead(&resp_);
    StartCall();
  }

  void Answer(const absl::Status& s) override {
    if (answered_) {
      std::move(done_)(resp_.ttl());
    } else if (!s.ok()) {
      std::move(done_)(s);
    } else {
      std::move(done_)(absl::UnavailableError("etcdserver: leader changed"));
    }
  }

  Done done_;
  etcdserverpb::LeaseKeepAliveRequest req_;
  etcdserverpb::LeaseKeepAliveResponse resp_;
  bool answered_ = false;
};

class ForwardedTimeToLive final : public ForwardedCall {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>) &&>;

  ForwardedTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req, Done done)
      : req_(req), done_(std::move(done)) {}

 private:
  void Start(etcdserverpb::Lease::Stub* stub) override {
    stub->async()->LeaseTimeToLive(&ctx_, &req_, &resp_,
                                   [this](grpc::Status s) { Finish(FromGrpc(s)); });
  }

  void Answer(const absl::Status& s) override {
    if (s.ok()) {
      std::move(done_)(std::move(resp_));
    } else {
      std::move(done_)(s);
    }
  }

  etcdserverpb::LeaseTimeToLiveRequest req_;
  etcdserverpb::LeaseTimeToLiveResponse resp_;
  Done done_;
};

}  // namespace

LeaderForwarder::~LeaderForwarder() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (auto& [id, ctx] : in_flight_) ctx->TryCancel();
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_.empty() && ending_ == 0; };
  mu_.Await(absl::Condition(&idle));
  // The channels go now, on this thread, after their last call.
}

etcdserverpb::Lease::Stub* LeaderForwarder::Begin(const std::string& address,
                                                  grpc::ClientContext* ctx, uint64_t* id) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return nullptr;
  std::unique_ptr<etcdserverpb::Lease::Stub>& stub = stubs_[address];
  if (stub == nullptr) {
    stub = etcdserverpb::Lease::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  *id = ++next_id_;
  in_flight_.emplace(*id, ctx);
  return stub.get();
}

void LeaderForwarder::Ending(uint64_t id) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(id);
  ++ending_;
}

void LeaderForwarder::Ended() {
  absl::MutexLock lock(&mu_);
  --ending_;
}

void LeaderForwarder::Renew(const std::string& address, int64_t id,
                            absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&> done) {
  (new ForwardedKeepAlive(id, std::move(done)))->Launch(this, address, timeout_ms_);
}

void LeaderForwarder::TimeToLive(
    const std::string& address, const etcdserverpb::LeaseTimeToLiveRequest& req,
    absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>) &&> done) {
  (new ForwardedTimeToLive(req, std::move(done)))->Launch(this, address, timeout_ms_);
}

}  // namespace kvd::server::lease
