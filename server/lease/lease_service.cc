#include "server/lease/lease_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "api/errors.h"
#include "server/grpc_status.h"
#include "server/kv_service.h"

namespace kvd::server::lease {
namespace {

constexpr uint64_t kSuffixMask = (uint64_t{1} << 48) - 1;

bool IsForwarded(const grpc::CallbackServerContext* ctx) {
  return ctx->client_metadata().count(kForwardedMetadata) > 0;
}

using KeepAliveReactorBase = grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                                     etcdserverpb::LeaseKeepAliveResponse>;

// Answers each keep-alive in order: read, renew, write, read... One read or one write is
// outstanding at a time, and none while a renewal is pending, so done callbacks never race
// with OnDone.
class KeepAliveReactor final : public KeepAliveReactorBase {
 public:
  // A stream refused at its start (refusal not OK) ends at once with that status.
  KeepAliveReactor(LeaseService* service, bool forwarded, const absl::Status& refusal)
      : service_(service), forwarded_(forwarded) {
    if (refusal.ok()) {
      StartRead(&req_);
    } else {
      Finish(ToGrpc(refusal));
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or went away)
      Finish(grpc::Status::OK);
      return;
    }
    int64_t id = req_.id();
    service_->Renew(id, forwarded_, [this, id](absl::StatusOr<int64_t> ttl) {
      if (!ttl.ok()) {
        Finish(ToGrpc(ttl.status()));
        return;
      }
      resp_.Clear();
      service_->FillHeader(resp_.mutable_header());
      resp_.set_id(id);
      resp_.set_ttl(*ttl);
      StartWrite(&resp_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "keep-alive stream closed"));
      return;
    }
    StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  LeaseService* const service_;
  const bool forwarded_;
  etcdserverpb::LeaseKeepAliveRequest req_;
  etcdserverpb::LeaseKeepAliveResponse resp_;
};

uint64_t UnixMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

LeaseService::LeaseService(Node* node, Lessor* lessor, LeaseServiceOptions options)
    : node_(node),
      lessor_(lessor),
      options_(std::move(options)),
      forwarder_(options_.forward_timeout_ms),
      id_prefix_((node->member_id() & 0xffff) << 48),
      id_counter_((UnixMs() & ((uint64_t{1} << 40) - 1)) << 8) {}

int64_t LeaseService::NextLeaseId() {
  for (;;) {
    uint64_t suffix = (id_counter_.fetch_add(1, std::memory_order_relaxed) + 1) & kSuffixMask;
    int64_t id = static_cast<int64_t>((id_prefix_ | suffix) & ~(uint64_t{1} << 63));
    if (id != 0 && !lessor_->Exists(id)) return id;
  }
}

void LeaseService::FillHeader(etcdserverpb::ResponseHeader* header) const {
  node_->FillHeader(header);
  header->set_revision(node_->kv().current_rev());
}

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::LeaseGrantRequest* req,
                                                   etcdserverpb::LeaseGrantResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  if (req->ttl() > kMaxLeaseTtlSeconds) return Answer(ctx, errors::LeaseTtlTooLarge());
  internalpb::Request proposal;
  etcdserverpb::LeaseGrantRequest* grant = proposal.mutable_lease_grant();
  grant->set_ttl(std::max(req->ttl(), lessor_->options().min_ttl_s));
  grant->set_id(req->id() != 0 ? req->id() : NextLeaseId());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  node_->Propose(std::move(proposal), resp, [this, reactor, resp](absl::Status s) {
    if (s.ok()) node_->FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseRevokeRequest* req,
                                                    etcdserverpb::LeaseRevokeResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  internalpb::Request proposal;
  proposal.mutable_lease_revoke()->set_id(req->id());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  node_->Propose(std::move(proposal), resp, [this, reactor, resp](absl::Status s) {
    if (s.ok()) node_->FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* ctx) {
  return new KeepAliveReactor(this, IsForwarded(ctx), Admit(*node_, *ctx));
}

absl::StatusOr<std::string> LeaseService::ForwardTarget(bool forwarded) const {
  if (forwarded || !options_.leader_address) return errors::NotLeader();
  std::optional<std::string> address = options_.leader_address();
  if (!address) return errors::NoLeader();
  return *address;
}

void LeaseService::Renew(int64_t id, bool forwarded, RenewDone done) {
  absl::StatusOr<int64_t> local = lessor_->Renew(id);
  if (local.ok() && *local == 0) {
    // Unknown to this leader: its grant may be committed but not applied here yet (a
    // client answered by a follower renews through the leader at once). Ask again once
    // everything committed so far is applied, as etcd's leader does.
    node_->ReadIndex([this, id, done = std::move(done)](absl::Status ready) mutable {
      if (!ready.ok()) {
        std::move(done)(ready);
        return;
      }
      std::move(done)(lessor_->Renew(id));
    });
    return;
  }
  if (local.ok() || local.status() != errors::NotLeader()) {
    std::move(done)(std::move(local));
    return;
  }
  absl::StatusOr<std::string> leader = ForwardTarget(forwarded);
  if (!leader.ok()) {
    std::move(done)(leader.status());
    return;
  }
  forwarder_.Renew(*leader, id, std::move(done));
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* ctx, const etcdserverpb::LeaseTimeToLiveRequest* req,
    etcdserverpb::LeaseTimeToLiveResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!lessor_->is_leader()) {
    // Only the leader knows how long a lease has left.
    absl::StatusOr<std::string> leader = ForwardTarget(IsForwarded(ctx));
    if (leader.ok()) {
      forwarder_.TimeToLive(
          *leader, *req,
          [reactor, resp](absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> answer) {
            if (answer.ok()) *resp = std::move(*answer);
            reactor->Finish(ToGrpc(answer.status()));
          });
      return reactor;
    }
    if (leader.status() == errors::NoLeader()) {
      reactor->Finish(ToGrpc(leader.status()));
      return reactor;
    }
    // Not forwarded (single member, or already forwarded once): answer from the applied
    // state.
  }
  int64_t id = req->id();
  bool want_keys = req->keys();
  node_->ReadIndex([this, reactor, resp, id, want_keys](absl::Status ready) {
    if (!ready.ok()) {
      reactor->Finish(ToGrpc(ready));
      return;
    }
    std::unique_ptr<storage::mvcc::ReadTxn> view = node_->kv().Read();
    node_->FillHeader(resp->mutable_header());
    resp->mutable_header()->set_revision(view->view_rev());
    resp->set_id(id);
    std::optional<Lessor::TimeToLive> ttl = lessor_->GetTimeToLive(id);
    if (!ttl) {
      resp->set_ttl(-1);  // etcd 3.4: an unknown lease is not an error
      reactor->Finish(grpc::Status::OK);
      return;
    }
    resp->set_ttl(ttl->ttl_s);
    resp->set_grantedttl(ttl->granted_ttl_s);
    if (want_keys) {
      absl::StatusOr<std::vector<std::string>> keys = view->KeysOfLease(id);
      if (!keys.ok()) {
        reactor->Finish(ToGrpc(keys.status()));
        return;
      }
      std::sort(keys->begin(), keys->end());
      for (std::string& key : *keys) resp->add_keys(std::move(key));
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseLeasesRequest* req,
                                                    etcdserverpb::LeaseLeasesResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  node_->ReadIndex([this, reactor, resp](absl::Status ready) {
    if (!ready.ok()) {
      reactor->Finish(ToGrpc(ready));
      return;
    }
    FillHeader(resp->mutable_header());
    for (int64_t id : lessor_->Leases()) resp->add_leases()->set_id(id);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace kvd::server::lease
