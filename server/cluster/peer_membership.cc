#include "server/cluster/peer_membership.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace kvd::server {

grpc::ServerUnaryReactor* PeerMembershipService::Members(grpc::CallbackServerContext* ctx,
                                                         const peerpb::MembersRequest* req,
                                                         peerpb::MembersResponse* resp) {
  resp->set_cluster_id(cluster_id_);
  for (etcdserverpb::Member& m : members_()) *resp->add_members() = std::move(m);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

absl::StatusOr<peerpb::MembersResponse> FetchMembership(const std::vector<std::string>& peer_urls,
                                                        absl::Duration timeout) {
  std::vector<std::string> errors;
  for (const std::string& url : peer_urls) {
    absl::string_view target(url);
    absl::ConsumePrefix(&target, "http://");
    auto channel = grpc::CreateChannel(std::string(absl::StripSuffix(target, "/")),
                                       grpc::InsecureChannelCredentials());
    auto stub = peerpb::PeerMembership::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
    peerpb::MembersRequest req;
    peerpb::MembersResponse resp;
    grpc::Status s = stub->Members(&ctx, req, &resp);
    if (s.ok()) return resp;
    errors.push_back(absl::StrCat(url, ": ", s.error_message()));
  }
  return absl::UnavailableError(absl::StrCat(
      "could not get the cluster's membership from any peer (", absl::StrJoin(errors, "; "), ")"));
}

}  // namespace kvd::server
