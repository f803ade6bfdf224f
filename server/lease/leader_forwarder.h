// Forwards a follower's lease requests that only the leader can answer (keep-alives, and
// TimeToLive, whose remaining TTL only the leader knows) to the leader's client endpoint,
// as etcd forwards them (etcd: one HTTP request to the leader per renewal).
//
// Each forwarded keep-alive is one LeaseKeepAlive stream with one request; TimeToLive is a
// unary call. Calls carry kForwardedMetadata so a member that receives a forwarded request
// but does not lead (leadership moved) answers errors::NotLeader() instead of forwarding
// again: a request is forwarded at most once. Channels are cached per leader address.
//
// Thread-safe; callbacks run on gRPC's threads.
#ifndef KVD_SERVER_LEASE_LEADER_FORWARDER_H_
#define KVD_SERVER_LEASE_LEADER_FORWARDER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"

namespace kvd::server::lease {

// Metadata key marking a request forwarded by a follower.
inline constexpr char kForwardedMetadata[] = "kvd-lease-forwarded";

class LeaderForwarder {
 public:
  explicit LeaderForwarder(int64_t timeout_ms = 5000) : timeout_ms_(timeout_ms) {}

  // One keep-alive of lease id on the leader at address ("host:port"): done gets the TTL
  // the leader answered (0: no such lease), or the call's error.
  void Renew(const std::string& address, int64_t id,
             absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&> done);

  // TimeToLive on the leader.
  void TimeToLive(
      const std::string& address, const etcdserverpb::LeaseTimeToLiveRequest& req,
      absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>) &&> done);

 private:
  std::shared_ptr<etcdserverpb::Lease::Stub> StubFor(const std::string& address);

  const int64_t timeout_ms_;
  absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<etcdserverpb::Lease::Stub> stub_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvd::server::lease

#endif  // KVD_SERVER_LEASE_LEADER_FORWARDER_H_
