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

void Prepare(grpc::ClientContext* ctx, int64_t timeout_ms) {
  ctx->AddMetadata(kForwardedMetadata, "1");
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

// One request on a LeaseKeepAlive stream: write it and half-close, read the answer, done.
class ForwardedKeepAlive final
    : public grpc::ClientBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  ForwardedKeepAlive(std::shared_ptr<etcdserverpb::Lease::Stub> stub, int64_t id,
                     int64_t timeout_ms,
                     absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&> done)
      : stub_(std::move(stub)), done_(std::move(done)) {
    Prepare(&ctx_, timeout_ms);
    req_.set_id(id);
    stub_->async()->LeaseKeepAlive(&ctx_, this);
    StartWriteLast(&req_, grpc::WriteOptions());
    StartRead(&resp_);
    StartCall();
  }

  void OnReadDone(bool ok) override { answered_ = ok; }
  void OnWriteDone(bool) override {}

  void OnDone(const grpc::Status& s) override {
    if (answered_) {
      std::move(done_)(resp_.ttl());
    } else if (!s.ok()) {
      std::move(done_)(FromGrpc(s));
    } else {
      std::move(done_)(absl::UnavailableError("etcdserver: leader changed"));
    }
    delete this;
  }

 private:
  std::shared_ptr<etcdserverpb::Lease::Stub> stub_;
  absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&> done_;
  grpc::ClientContext ctx_;
  etcdserverpb::LeaseKeepAliveRequest req_;
  etcdserverpb::LeaseKeepAliveResponse resp_;
  bool answered_ = false;
};

}  // namespace

std::shared_ptr<etcdserverpb::Lease::Stub> LeaderForwarder::StubFor(const std::string& address) {
  absl::MutexLock lock(&mu_);
  if (stub_ == nullptr || address_ != address) {
    address_ = address;
    stub_ = std::shared_ptr<etcdserverpb::Lease::Stub>(etcdserverpb::Lease::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials())));
  }
  return stub_;
}

void LeaderForwarder::Renew(const std::string& address, int64_t id,
                            absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&> done) {
  new ForwardedKeepAlive(StubFor(address), id, timeout_ms_, std::move(done));
}

void LeaderForwarder::TimeToLive(
    const std::string& address, const etcdserverpb::LeaseTimeToLiveRequest& req,
    absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>) &&> done) {
  struct Call {
    std::shared_ptr<etcdserverpb::Lease::Stub> stub;
    grpc::ClientContext ctx;
    etcdserverpb::LeaseTimeToLiveRequest req;
    etcdserverpb::LeaseTimeToLiveResponse resp;
    absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>) &&> done;
  };
  auto* call = new Call{StubFor(address), {}, req, {}, std::move(done)};
  Prepare(&call->ctx, timeout_ms_);
  call->stub->async()->LeaseTimeToLive(&call->ctx, &call->req, &call->resp,
                                       [call](grpc::Status s) {
                                         if (s.ok()) {
                                           std::move(call->done)(std::move(call->resp));
                                         } else {
                                           std::move(call->done)(FromGrpc(s));
                                         }
                                         delete call;
                                       });
}

}  // namespace kvd::server::lease
