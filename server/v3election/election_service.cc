#include "server/v3election/election_service.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "server/grpc_status.h"
#include "server/v3lock/lock_service.h"

namespace kvd::server::v3election {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;
using v3lock::Recipes;

// The key under prefix with the smallest create revision (WithFirstCreate).
RangeRequest FirstCreate(const std::string& prefix) {
  RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(v3lock::PrefixEnd(prefix));
  r.set_sort_target(RangeRequest::CREATE);
  r.set_sort_order(RangeRequest::ASCEND);
  r.set_limit(1);
  return r;
}

void CompareCreate(TxnRequest* txn, const std::string& key, int64_t rev) {
  Compare* cmp = txn->add_compare();
  cmp->set_key(key);
  cmp->set_target(Compare::CREATE);
  cmp->set_result(Compare::EQUAL);
  cmp->set_create_revision(rev);
}

// If key still has create revision rev: put value (Proclaim) or delete it (Resign).
TxnRequest ProclaimTxn(const std::string& key, int64_t rev, const std::string& value,
                       int64_t lease) {
  TxnRequest txn;
  CompareCreate(&txn, key, rev);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
  return txn;
}
TxnRequest ResignTxn(const std::string& key, int64_t rev) {
  TxnRequest txn;
  CompareCreate(&txn, key, rev);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  return txn;
}

// One Campaign call. All methods run on the executor.
class CampaignCall : public std::enable_shared_from_this<CampaignCall> {
 public:
  CampaignCall(Recipes* recipes, const v3electionpb::CampaignRequest& req,
               v3electionpb::CampaignResponse* resp)
      : recipes_(recipes),
        name_(req.name()),
        prefix_(req.name() + "/"),
        key_(v3lock::SessionKey(prefix_, req.lease())),
        lease_(req.lease()),
        value_(req.value()),
        resp_(resp) {}

  void set_reactor(grpc::ServerUnaryReactor* reactor) { reactor_ = reactor; }

  void Begin() {
    if (lease_ != 0) return Enter();
    // As etcd's service (a clientv3 session without a lease): a fresh lease for this
    // campaign.
    recipes_->GrantSessionLease([self = shared_from_this()](absl::StatusOr<int64_t> id) {
      if (self->finished_) return;
      if (!id.ok()) return self->Finish(id.status());
      self->lease_ = *id;
      self->key_ = v3lock::SessionKey(self->prefix_, *id);
      self->Enter();
    });
  }

  void Cancel() {
    if (finished_) return;
    canceled_ = true;
    if (waiter_ != nullptr) waiter_->Cancel();
    if (leader_rev_ > 0) Resign();
    Finish(absl::CancelledError("context canceled"));
  }

 private:
  void Enter() {
    TxnRequest txn;
    CompareCreate(&txn, key_, 0);
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key_);
    put->set_value(value_);
    put->set_lease(lease_);
    txn.add_failure()->mutable_request_range()->set_key(key_);
    recipes_->Txn(std::move(txn), [self = shared_from_this()](absl::StatusOr<TxnResponse> t) {
      self->Entered(std::move(t));
    });
  }

  void Entered(absl::StatusOr<TxnResponse> t) {
    if (!t.ok()) return Finish(t.status());
    header_ = t->header();
    leader_rev_ = t->header().revision();
    if (!t->succeeded()) {
      const auto& kvs = t->responses(0).response_range().kvs();
      if (kvs.empty()) return Finish(v3lock::SessionExpired());
      leader_rev_ = kvs[0].create_revision();
      if (canceled_) return;
      if (kvs[0].value() != value_) {
        recipes_->Txn(ProclaimTxn(key_, leader_rev_, value_, lease_),
                      [self = shared_from_this()](absl::StatusOr<TxnResponse> p) {
                        if (self->finished_) return;
                        if (p.ok() && p->succeeded()) return self->Wait();
                        self->Resign();
                        self->Finish(p.ok() ? v3lock::ElectionNotLeader() : p.status());
                      });
        return;
      }
    }
    if (canceled_) {
      if (t->succeeded()) Resign();
      return;
    }
    Wait();
  }

  void Wait() {
    waiter_ = v3lock::DeletesWaiter::Start(
        recipes_, prefix_, leader_rev_ - 1, [self = shared_from_this()](absl::Status s) {
          self->waiter_.reset();
          if (!s.ok()) return self->Finish(s);
          v3electionpb::LeaderKey* leader = self->resp_->mutable_leader();
          leader->set_name(self->name_);
          leader->set_key(self->key_);
          leader->set_rev(self->leader_rev_);
          leader->set_lease(self->lease_);
          *self->resp_->mutable_header() = self->header_;
          self->Finish(absl::OkStatus());
        });
  }

  void Resign() {
    recipes_->Txn(ResignTxn(key_, leader_rev_), [](absl::StatusOr<TxnResponse>) {});
  }

  void Finish(absl::Status s) {
    if (finished_) return;
    finished_ = true;
    reactor_->Finish(ToGrpc(s));
  }

  Recipes* const recipes_;
  const std::string name_;
  const std::string prefix_;
  std::string key_;  // set with lease_
  int64_t lease_;    // the request's, or the session lease granted for lease 0
  const std::string value_;
  v3electionpb::CampaignResponse* const resp_;
  grpc::ServerUnaryReactor* reactor_ = nullptr;
  etcdserverpb::ResponseHeader header_;
  int64_t leader_rev_ = -1;
  bool finished_ = false;
  bool canceled_ = false;
  std::shared_ptr<v3lock::DeletesWaiter> waiter_;
};

// One Observe stream (etcd's Election.observe). State lives here and is touched on the
// executor only; the reactor forwards gRPC's callbacks to it.
class ObserveCall : public std::enable_shared_from_this<ObserveCall> {
 public:
  ObserveCall(Recipes* recipes, std::string name)
      : recipes_(recipes), prefix_(std::move(name) + "/") {}

  void set_reactor(grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* reactor) {
    reactor_ = reactor;
  }

  // Finds the leader (or waits for one), reports it, then follows its key.
  void Loop() {
    if (finished_) return;
    RangeRequest req = FirstCreate(prefix_);
    recipes_->Range(std::move(req), [self = shared_from_this()](absl::StatusOr<RangeResponse> r) {
      if (self->finished_) return;
      // etcd's Observe ends (OK) when its reads fail.
      if (!r.ok()) return self->Finish(absl::OkStatus());
      if (!r->kvs().empty()) {
        self->Emit(r->header(), r->kvs(0));
        return self->Follow(r->kvs(0).key(), r->header().revision() + 1);
      }
      // No leader yet: wait for the first put under the prefix.
      std::weak_ptr<ObserveCall> weak = self;
      self->watch_ = self->recipes_->NewWatch(self->prefix_, v3lock::PrefixEnd(self->prefix_),
                                              r->header().revision(),
                                              [weak](const etcdserverpb::WatchResponse& w) {
                                                std::shared_ptr<ObserveCall> c = weak.lock();
                                                if (c == nullptr || c->finished_) return;
                                                if (w.canceled())
                                                  return c->Finish(absl::OkStatus());
                                                for (const mvccpb::Event& e : w.events()) {
                                                  if (e.type() != mvccpb::Event::PUT) continue;
                                                  etcdserverpb::ResponseHeader header = w.header();
                                                  header.set_revision(e.kv().mod_revision());
                                                  c->Emit(header, e.kv());
                                                  c->Follow(e.kv().key(), header.revision() + 1);
                                                  return;
                                                }
                                              });
    });
  }

  void WriteDone(bool ok) {
    writing_ = false;
    if (!ok) return Finish(absl::OkStatus());
    SendNext();
  }

  void Cancel() { Finish(absl::CancelledError("context canceled")); }
  void FailAtStart(absl::Status s) { Finish(std::move(s)); }

 private:
  // Reports every change of the leader's key until it is deleted, then looks again.
  void Follow(const std::string& key, int64_t from_rev) {
    std::weak_ptr<ObserveCall> weak = shared_from_this();
    watch_ = recipes_->NewWatch(key, "", from_rev, [weak](const etcdserverpb::WatchResponse& w) {
      std::shared_ptr<ObserveCall> c = weak.lock();
      if (c == nullptr || c->finished_) return;
      if (w.canceled()) return c->Finish(absl::OkStatus());
      for (const mvccpb::Event& e : w.events()) {
        if (e.type() == mvccpb::Event::DELETE) {
          c->watch_.reset();
          return c->Loop();
        }
        c->Emit(w.header(), e.kv());
      }
    });
  }

  void Emit(const etcdserverpb::ResponseHeader& header, const mvccpb::KeyValue& kv) {
    v3electionpb::LeaderResponse resp;
    *resp.mutable_header() = header;
    *resp.mutable_kv() = kv;
    queue_.push_back(std::move(resp));
    SendNext();
  }

  void SendNext() {
    if (writing_ || finished_) return;
    if (finish_pending_) {
      finish_pending_ = false;
      finished_ = true;
      reactor_->Finish(pending_status_);
      return;
    }
    if (queue_.empty()) return;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    reactor_->StartWrite(&current_);
  }

  void Finish(absl::Status s) {
    if (finished_ || finish_pending_) return;
    watch_.reset();
    queue_.clear();
    if (writing_) {
      finish_pending_ = true;
      pending_status_ = ToGrpc(s);
      return;
    }
    finished_ = true;
    reactor_->Finish(ToGrpc(s));
  }

  Recipes* const recipes_;
  const std::string prefix_;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* reactor_ = nullptr;
  std::unique_ptr<Recipes::Watch> watch_;
  std::deque<v3electionpb::LeaderResponse> queue_;
  v3electionpb::LeaderResponse current_;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_pending_ = false;
  grpc::Status pending_status_;
};

class ObserveReactor final : public grpc::ServerWriteReactor<v3electionpb::LeaderResponse> {
 public:
  ObserveReactor(Recipes* recipes, std::shared_ptr<ObserveCall> call)
      : recipes_(recipes), call_(std::move(call)) {}
  void OnWriteDone(bool ok) override {
    recipes_->Post([call = call_, ok] { call->WriteDone(ok); });
  }
  void OnCancel() override {
    recipes_->Post([call = call_] { call->Cancel(); });
  }
  void OnDone() override { delete this; }

 private:
  Recipes* const recipes_;
  const std::shared_ptr<ObserveCall> call_;
};

}  // namespace

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::CampaignRequest* req,
                                                    v3electionpb::CampaignResponse* resp) {
  if (absl::Status s = CheckLeader(*ctx, recipes_->node()->has_leader()); !s.ok()) {
    return Answer(ctx, s);
  }
  auto call = std::make_shared<CampaignCall>(recipes_, *req, resp);
  auto* reactor = new v3lock::CancelableReactor(recipes_, [call] { call->Cancel(); });
  call->set_reactor(reactor);
  recipes_->Post([call] { call->Begin(); });
  return reactor;
}

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::ProclaimRequest* req,
                                                    v3electionpb::ProclaimResponse* resp) {
  if (absl::Status s = CheckLeader(*ctx, recipes_->node()->has_leader()); !s.ok()) {
    return Answer(ctx, s);
  }
  if (!req->has_leader()) return Answer(ctx, v3lock::MissingLeaderKey());
  const v3electionpb::LeaderKey& leader = req->leader();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  recipes_->Txn(ProclaimTxn(leader.key(), leader.rev(), req->value(), leader.lease()),
                [reactor, resp](absl::StatusOr<TxnResponse> t) {
                  if (!t.ok()) return reactor->Finish(ToGrpc(t.status()));
                  if (!t->succeeded()) return reactor->Finish(ToGrpc(v3lock::ElectionNotLeader()));
                  *resp->mutable_header() = t->header();
                  reactor->Finish(grpc::Status::OK);
                });
  return reactor;
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::LeaderRequest* req,
                                                  v3electionpb::LeaderResponse* resp) {
  if (absl::Status s = CheckLeader(*ctx, recipes_->node()->has_leader()); !s.ok()) {
    return Answer(ctx, s);
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  recipes_->Range(FirstCreate(req->name() + "/"), [reactor, resp](absl::StatusOr<RangeResponse> r) {
    if (!r.ok()) return reactor->Finish(ToGrpc(r.status()));
    if (r->kvs().empty()) {
      return reactor->Finish(ToGrpc(v3lock::ElectionNoLeader()));
    }
    *resp->mutable_header() = r->header();
    *resp->mutable_kv() = r->kvs(0);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) {
  auto call = std::make_shared<ObserveCall>(recipes_, req->name());
  auto* reactor = new ObserveReactor(recipes_, call);
  call->set_reactor(reactor);
  if (absl::Status s = CheckLeader(*ctx, recipes_->node()->has_leader()); !s.ok()) {
    recipes_->Post([call, s] { call->FailAtStart(s); });
    return reactor;
  }
  recipes_->Post([call] { call->Loop(); });
  return reactor;
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::ResignRequest* req,
                                                  v3electionpb::ResignResponse* resp) {
  if (absl::Status s = CheckLeader(*ctx, recipes_->node()->has_leader()); !s.ok()) {
    return Answer(ctx, s);
  }
  if (!req->has_leader()) return Answer(ctx, v3lock::MissingLeaderKey());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  recipes_->Txn(ResignTxn(req->leader().key(), req->leader().rev()),
                [reactor, resp](absl::StatusOr<TxnResponse> t) {
                  if (!t.ok()) return reactor->Finish(ToGrpc(t.status()));
                  *resp->mutable_header() = t->header();
                  reactor->Finish(grpc::Status::OK);
                });
  return reactor;
}

}  // namespace kvd::server::v3election
