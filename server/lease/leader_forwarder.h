// Forwards a follower's lease requests that only the leader can answer (keep-alives, and
// TimeToLive, whose remaining TTL only the leader knows) to the leader's client endpoint,
// as etcd forwards them (etcd: one HTTP request to the leader per renewal).
//
// Each forwarded keep-alive is one LeaseKeepAlive stream with one request; TimeToLive is a
// unary call. Calls carry kForwardedMetadata so a member that receives a forwarded request
// but does not lead (leadership moved) answers errors::NotLeader() instead of forwarding
// again: a request is forwarded at most once. Channels are cached per leader address.
//
// Thread-safe; callbacks run on gRPC's threads. Channels are only ever destroyed by the
// forwarder's destructor, which cancels the calls still in flight and waits for them: a
// gRPC 1.51 channel whose last reference goes on one of its own callback threads aborts
// the process (a reference count underflow at exit).
#ifndef KVD_SERVER_LEASE_LEADER_FORWARDER_H_
#define KVD_SERVER_LEASE_LEADER_FORWARDER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
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
  ~LeaderForwarder();
  LeaderForwarder(const LeaderForwarder&) = delete;
  LeaderForwarder& operator=(const LeaderForwarder&) = delete;

  // One keep-alive of lease id on the leader at address ("host:port"): done gets the TTL
  // the leader answered (0: no such lease), or the call's error.
  void Renew(const std::string& address, int64_t id,
             absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&> done);

  // TimeToLive on the leader.
  void TimeToLive(
      const std::string& address, const etcdserverpb::LeaseTimeToLiveRequest& req,
      absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>) &&> done);

 private:
  friend class ForwardedCall;

  // Registers ctx as in flight under a fresh id and returns address's stub (created on
  // first use, kept until destruction), or nullptr once the destructor has begun.
  etcdserverpb::Lease::Stub* Begin(const std::string& address, grpc::ClientContext* ctx,
                                   uint64_t* id);
  // Call id has ended: its context is about to be destroyed (no longer to be canceled).
  void Ending(uint64_t id);
  // ... and it is gone: it touches neither its context nor a channel again.
  void Ended();

  const int64_t timeout_ms_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::unique_ptr<etcdserverpb::Lease::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
  int ending_ ABSL_GUARDED_BY(mu_) = 0;  // calls between Ending and Ended
};

}  // namespace kvd::server::lease

#endif  // KVD_SERVER_LEASE_LEADER_FORWARDER_H_
