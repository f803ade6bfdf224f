#include "server/watch/watch_service.h"

#include <memory>
#include <optional>

#include "absl/synchronization/mutex.h"
#include "api/errors.h"
#include "server/grpc_status.h"

namespace kvd::server::watch {
namespace {

class WatchReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>,
      public WatchSink {
 public:
  WatchReactor(WatchHub* hub, bool requires_leader, bool has_leader) {
    if (requires_leader && !has_leader) {
      FinishOnce(ToGrpc(errors::NoLeader()));
      return;
    }
    stream_ = hub->OpenStream(this, requires_leader);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    // A half-close (or a failed read) stops reading; as etcd, the stream keeps sending
    // until the client cancels it.
    if (!ok) return;
    stream_->Handle(request_);
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (finish_pending_) {
        finish_pending_ = false;
        finish = pending_status_;
      }
    }
    if (finish) {
      Finish(*finish);
      return;
    }
    if (!ok) {
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream write failed"));
      return;
    }
    stream_->WriteDone();
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  void OnDone() override {
    if (stream_ != nullptr) stream_->Close();  // no sink call after this returns
    delete this;
  }

  // WatchSink.
  void Send(const etcdserverpb::WatchResponse* resp) override { Write(resp, grpc::WriteOptions()); }
  // The transport keeps the message in its buffer and completes the write at once; the
  // next write without the hint sends them together. Not on the first write: it carries
  // the initial metadata, whose completion waits for a real socket write (chttp2 starts
  // none for a hinted message), so its WriteDone would never come.
  void SendMore(const etcdserverpb::WatchResponse* resp) override {
    grpc::WriteOptions options;
    if (wrote_) options.set_buffer_hint();
    Write(resp, options);
  }
  void Abort(const absl::Status& status) override { FinishOnce(ToGrpc(status)); }

 private:
  void Write(const etcdserverpb::WatchResponse* resp, grpc::WriteOptions options) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      writing_ = true;
    }
    wrote_ = true;  // writes never overlap (WatchSink)
    StartWrite(resp, options);
  }

  // Finishes once; while a write is in flight, after it.
  void FinishOnce(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      if (writing_) {
        finish_pending_ = true;
        pending_status_ = std::move(status);
        return;
      }
    }
    Finish(status);
  }

  std::shared_ptr<WatchStream> stream_;
  etcdserverpb::WatchRequest request_;
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status pending_status_ ABSL_GUARDED_BY(mu_);
  bool wrote_ = false;  // a write was started (the initial metadata went with it)
};

}  // namespace

grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>*
WatchService::Watch(grpc::CallbackServerContext* ctx) {
  bool requires_leader = RequiresLeader(*ctx);
  bool has_leader = !requires_leader || !has_leader_ || has_leader_();
  return new WatchReactor(hub_, requires_leader, has_leader);
}

}  // namespace kvd::server::watch
