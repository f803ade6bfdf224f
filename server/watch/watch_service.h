// etcd's Watch service over gRPC's callback API: one ServerBidiReactor per stream, no
// thread per stream. The reactor reads requests and hands them to its WatchStream (the
// WatchHub does the rest); it is the stream's WatchSink, with at most one write in flight.
//
// As etcd: a client half-close does not end the stream (only cancellation does); a stream
// opened with metadata hasleader=true fails with "etcdserver: no leader" when the member
// has no leader, at the start or later (checked by the hub every leader_check_interval).
#ifndef KVD_SERVER_WATCH_WATCH_SERVICE_H_
#define KVD_SERVER_WATCH_WATCH_SERVICE_H_

#include <functional>

#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "server/watch/watch_hub.h"

namespace kvd::server::watch {

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  WatchService(WatchHub* hub, std::function<bool()> has_leader)
      : hub_(hub), has_leader_(std::move(has_leader)) {}

  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx) override;

 private:
  WatchHub* const hub_;
  const std::function<bool()> has_leader_;
};

}  // namespace kvd::server::watch

#endif  // KVD_SERVER_WATCH_WATCH_SERVICE_H_
