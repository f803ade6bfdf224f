// Membership discovery between members (api/kvdpb/membership.proto): the service every
// member serves on its peer URLs, and the client a joining member uses.
#ifndef KVD_SERVER_CLUSTER_PEER_MEMBERSHIP_H_
#define KVD_SERVER_CLUSTER_PEER_MEMBERSHIP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/kvdpb/membership.grpc.pb.h"

namespace kvd::server {

class PeerMembershipService final : public peerpb::PeerMembership::CallbackService {
 public:
  // members() is called per request; it must be thread-safe.
  PeerMembershipService(uint64_t cluster_id,
                        std::function<std::vector<etcdserverpb::Member>()> members)
      : cluster_id_(cluster_id), members_(std::move(members)) {}

  grpc::ServerUnaryReactor* Members(grpc::CallbackServerContext* ctx,
                                    const peerpb::MembersRequest* req,
                                    peerpb::MembersResponse* resp) override;

 private:
  const uint64_t cluster_id_;
  const std::function<std::vector<etcdserverpb::Member>()> members_;
};

// Asks the members at peer_urls (tried in turn, each within timeout) for the membership.
absl::StatusOr<peerpb::MembersResponse> FetchMembership(const std::vector<std::string>& peer_urls,
                                                        absl::Duration timeout);

}  // namespace kvd::server

#endif  // KVD_SERVER_CLUSTER_PEER_MEMBERSHIP_H_
