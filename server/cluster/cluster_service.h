// etcd's Cluster service: MemberList, MemberAdd, MemberRemove, MemberUpdate, MemberPromote.
//
// Membership changes are raft conf changes made by the node (Node::AddMember & co.), which
// also answers most of etcd's refusals; this layer adds what etcd's gRPC layer checks
// before that (peer URLs must be http(s)/unix(s) URLs of the form scheme://host:port with
// no path: "etcdserver: given member URLs are invalid"), etcd's limit of one learner
// ("etcdserver: too many learner members in cluster"), and the membership after the change
// in each response. MemberList with `linearizable` (etcd 3.5) waits for a ReadIndex first.
//
// MemberPromote needs the leader's view of the learner's log; a follower forwards it to the
// leader's first client URL (etcd forwards it over its peer HTTP API).
//
// Response headers: cluster_id, member_id, raft_term and the member's current revision
// (etcd 3.4 leaves the revision of Cluster responses at 0; a revision there is harmless to
// every client, and consistent with the other services).
//
// Threads: handlers never block a gRPC thread; the node answers through the call's reactor.
#ifndef KVD_SERVER_CLUSTER_CLUSTER_SERVICE_H_
#define KVD_SERVER_CLUSTER_CLUSTER_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "server/node.h"

namespace kvd::server {

// etcd's rules for a peer URL list (types.NewURLs): at least one URL; each, with surrounding
// spaces trimmed, has scheme http, https, unix or unixs, a host of the form host:port, and
// no path. Returns the trimmed URLs, or "etcdserver: given member URLs are invalid".
absl::StatusOr<std::vector<std::string>> ParsePeerUrls(
    const google::protobuf::RepeatedPtrField<std::string>& urls);

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(Node* node) : node_(node) {}

  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* ctx,
                                      const etcdserverpb::MemberAddRequest* req,
                                      etcdserverpb::MemberAddResponse* resp) override;
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberRemoveRequest* req,
                                         etcdserverpb::MemberRemoveResponse* resp) override;
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberUpdateRequest* req,
                                         etcdserverpb::MemberUpdateResponse* resp) override;
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MemberListRequest* req,
                                       etcdserverpb::MemberListResponse* resp) override;
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* ctx,
                                          const etcdserverpb::MemberPromoteRequest* req,
                                          etcdserverpb::MemberPromoteResponse* resp) override;

 private:
  // Header (with the current revision) and the current membership.
  template <typename Response>
  void FillMembers(Response* resp) const;
  // Sends req to the leader's client URL; answers reactor with its answer.
  void ForwardPromote(grpc::ServerUnaryReactor* reactor, const etcdserverpb::MemberPromoteRequest& req,
                      etcdserverpb::MemberPromoteResponse* resp);

  Node* const node_;
};

}  // namespace kvd::server

#endif  // KVD_SERVER_CLUSTER_CLUSTER_SERVICE_H_
