#include "server/cluster/cluster_service.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/grpc_status.h"

namespace kvd::server {
namespace {

constexpr auto kForwardTimeout = std::chrono::seconds(10);

absl::Status BadUrls() {
  return absl::InvalidArgumentError("etcdserver: given member URLs are invalid");
}
absl::Status TooManyLearners() {
  return absl::FailedPreconditionError("etcdserver: too many learner members in cluster");
}

// Go's net.SplitHostPort accepts "host:port" and "[v6]:port" (the port may be empty).
bool HasHostPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return close != std::string_view::npos && close + 1 < host.size() && host[close + 1] == ':' &&
           host.find(':', close + 2) == std::string_view::npos;
  }
  size_t colon = host.find(':');
  return colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos &&
         host.find_first_of("[]") == std::string_view::npos;
}

bool ValidPeerUrl(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return false;
  std::string_view scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https" && scheme != "unix" && scheme != "unixs") return false;
  std::string_view rest = url.substr(sep + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (end != std::string_view::npos && rest[end] == '/') return false;  // a path
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority = authority.substr(at + 1);
  if (authority.find_first_of(" \t") != std::string_view::npos) return false;
  return HasHostPort(authority);
}

// "http://host:port" → "host:port" for a gRPC channel.
std::string ChannelTarget(std::string_view url) {
  size_t sep = url.find("://");
  if (sep != std::string_view::npos) url = url.substr(sep + 3);
  size_t end = url.find('/');
  return std::string(url.substr(0, end));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParsePeerUrls(
    const google::protobuf::RepeatedPtrField<std::string>& urls) {
  if (urls.empty()) return BadUrls();
  std::vector<std::string> out;
  for (const std::string& url : urls) {
    std::string trimmed(absl::StripAsciiWhitespace(url));
    if (!ValidPeerUrl(trimmed)) return BadUrls();
    out.push_back(std::move(trimmed));
  }
  return out;
}

template <typename Response>
void ClusterService::FillMembers(Response* resp) const {
  node_->FillHeader(resp->mutable_header());
  resp->mutable_header()->set_revision(node_->kv().current_rev());
  resp->clear_members();
  for (etcdserverpb::Member& m : node_->Members()) *resp->add_members() = std::move(m);
}

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::MemberListRequest* req,
                                                     etcdserverpb::MemberListResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!req->linearizable()) {
    FillMembers(resp);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  node_->ReadIndex([this, reactor, resp](absl::Status s) {
    if (s.ok()) FillMembers(resp);
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::MemberAddRequest* req,
                                                    etcdserverpb::MemberAddResponse* resp) {
  absl::StatusOr<std::vector<std::string>> urls = ParsePeerUrls(req->peerurls());
  if (!urls.ok()) return Answer(ctx, urls.status());
  if (req->islearner()) {
    // etcd allows one learner at a time (membership.maxLearners).
    for (const etcdserverpb::Member& m : node_->Members()) {
      if (m.islearner()) return Answer(ctx, TooManyLearners());
    }
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  node_->AddMember(std::move(*urls), req->islearner(),
                   [this, reactor, resp](absl::StatusOr<etcdserverpb::Member> member) {
                     if (member.ok()) {
                       FillMembers(resp);
                       // The member as the cluster keeps it (the node's record).
                       *resp->mutable_member() = *member;
                       for (const etcdserverpb::Member& m : resp->members()) {
                         if (m.id() == member->id()) *resp->mutable_member() = m;
                       }
                     }
                     reactor->Finish(ToGrpc(member.status()));
                   });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(grpc::CallbackServerContext* ctx,
                                                       const etcdserverpb::MemberRemoveRequest* req,
                                                       etcdserverpb::MemberRemoveResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  node_->RemoveMember(req->id(), [this, reactor, resp](absl::Status s) {
    if (s.ok()) FillMembers(resp);
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(grpc::CallbackServerContext* ctx,
                                                       const etcdserverpb::MemberUpdateRequest* req,
                                                       etcdserverpb::MemberUpdateResponse* resp) {
  absl::StatusOr<std::vector<std::string>> urls = ParsePeerUrls(req->peerurls());
  if (!urls.ok()) return Answer(ctx, urls.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  node_->UpdateMember(req->id(), std::move(*urls), [this, reactor, resp](absl::Status s) {
    if (s.ok()) FillMembers(resp);
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* ctx, const etcdserverpb::MemberPromoteRequest* req,
    etcdserverpb::MemberPromoteResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  etcdserverpb::MemberPromoteRequest request = *req;
  node_->PromoteMember(req->id(), [this, reactor, resp, request](absl::Status s) {
    if (s.ok()) {
      FillMembers(resp);
    } else if (s == errors::NotLeader()) {
      ForwardPromote(reactor, request, resp);
      return;
    }
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

void ClusterService::ForwardPromote(grpc::ServerUnaryReactor* reactor,
                                    const etcdserverpb::MemberPromoteRequest& req,
                                    etcdserverpb::MemberPromoteResponse* resp) {
  uint64_t leader = node_->leader_id();
  std::string url;
  if (leader != node_->member_id()) {
    for (const etcdserverpb::Member& m : node_->Members()) {
      if (m.id() == leader && m.clienturls_size() > 0) url = m.clienturls(0);
    }
  }
  if (url.empty()) {
    reactor->Finish(ToGrpc(leader == 0 ? errors::NoLeader() : errors::NotLeader()));
    return;
  }
  // One call: the state lives until its callback, which deletes it.
  struct Call {
    std::unique_ptr<etcdserverpb::Cluster::Stub> stub;
    grpc::ClientContext ctx;
    etcdserverpb::MemberPromoteRequest req;
  };
  auto* call = new Call;
  call->stub = etcdserverpb::Cluster::NewStub(
      grpc::CreateChannel(ChannelTarget(url), grpc::InsecureChannelCredentials()));
  call->ctx.set_deadline(std::chrono::system_clock::now() + kForwardTimeout);
  call->req = req;
  call->stub->async()->MemberPromote(&call->ctx, &call->req, resp,
                                     [call, reactor](grpc::Status s) {
                                       delete call;
                                       reactor->Finish(s);
                                     });
}

}  // namespace kvd::server
