// etcd's Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases.
//
// Grant and Revoke are proposed to the node (server/lease/lease_apply.h applies them); the
// service picks the ID of a grant that names none and raises a TTL below the minimum, so
// the applied request is deterministic. Keep-alives renew on the leader's Lessor; the
// stream answers each request in order (read, renew, write, read...).
//
// Followers: only the leader knows deadlines. Renew() (every keep-alive) and TimeToLive are
// forwarded to the leader's client endpoint (LeaderForwarder, at most one hop); the
// keep-alive stream waits for each answer asynchronously, so a forwarded renewal blocks no
// thread. Without options.leader_address a follower answers errors::NotLeader().
#ifndef KVD_SERVER_LEASE_LEASE_SERVICE_H_
#define KVD_SERVER_LEASE_LEASE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "server/lease/leader_forwarder.h"
#include "server/lease/lessor.h"
#include "server/node.h"

namespace kvd::server::lease {

struct LeaseServiceOptions {
  // On a member that does not lead: the leader's client address ("host:port"), or nullopt
  // when there is no leader (requests then fail with errors::NoLeader()). Must never name
  // this member. Unset: no forwarding (single member).
  std::function<std::optional<std::string>()> leader_address;
  int64_t forward_timeout_ms = 5000;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  // REQUIRES: node and lessor outlive the service.
  LeaseService(Node* node, Lessor* lessor, LeaseServiceOptions options = {});

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseLeasesRequest* req,
                                        etcdserverpb::LeaseLeasesResponse* resp) override;

  // One keep-alive: done gets the lease's TTL (0: no such lease, or expired), or an error
  // (etcd's, e.g. errors::NoLeader()). On a follower it is forwarded to the leader, unless
  // it was itself forwarded (then errors::NotLeader()). done may run before Renew returns.
  using RenewDone = absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&>;
  void Renew(int64_t id, bool forwarded, RenewDone done);

  // Fills a response header as etcd does: cluster, member, term and current revision.
  void FillHeader(etcdserverpb::ResponseHeader* header) const;

 private:
  // A fresh server-chosen lease ID: positive, not in use (etcd's idutil layout: member bits,
  // then a time-seeded counter).
  int64_t NextLeaseId();

  // Where to forward a request this member cannot answer; error if it must not be
  // forwarded (already forwarded, no forwarding configured, no leader).
  absl::StatusOr<std::string> ForwardTarget(bool forwarded) const;

  Node* const node_;
  Lessor* const lessor_;
  const LeaseServiceOptions options_;
  LeaderForwarder forwarder_;
  const uint64_t id_prefix_;
  std::atomic<uint64_t> id_counter_;
};

}  // namespace kvd::server::lease

#endif  // KVD_SERVER_LEASE_LEASE_SERVICE_H_
