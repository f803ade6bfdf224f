#include "server/v3lock/lock_service.h"

#include <memory>
#include <string>
#include <utility>

#include "api/errors.h"
#include "server/grpc_status.h"

namespace kvd::server::v3lock {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

// The key under prefix with the smallest create revision (WithFirstCreate).
RequestOp GetOwner(const std::string& prefix) {
  RequestOp op;
  RangeRequest* r = op.mutable_request_range();
  r->set_key(prefix);
  r->set_range_end(PrefixEnd(prefix));
  r->set_sort_target(RangeRequest::CREATE);
  r->set_sort_order(RangeRequest::ASCEND);
  r->set_limit(1);
  return op;
}

RequestOp Get(const std::string& key) {
  RequestOp op;
  op.mutable_request_range()->set_key(key);
  return op;
}

// One Lock call. All methods run on the executor.
class LockCall : public std::enable_shared_from_this<LockCall> {
 public:
  LockCall(Recipes* recipes, const v3lockpb::LockRequest& req, v3lockpb::LockResponse* resp)
      : recipes_(recipes),
        prefix_(req.name() + "/"),
        key_(SessionKey(prefix_, req.lease())),
        lease_(req.lease()),
        resp_(resp) {}

  void set_reactor(grpc::ServerUnaryReactor* reactor) { reactor_ = reactor; }

  void Begin() {
    if (lease_ != 0) return Enter();
    // As etcd's service (a clientv3 session without a lease): a fresh lease for this lock.
    recipes_->GrantSessionLease([self = shared_from_this()](absl::StatusOr<int64_t> id) {
      if (self->finished_) return;
      if (!id.ok()) return self->Finish(id.status());
      self->lease_ = *id;
      self->key_ = SessionKey(self->prefix_, *id);
      self->Enter();
    });
  }

  void Cancel() {
    if (finished_) return;
    canceled_ = true;
    if (waiter_ != nullptr) waiter_->Cancel();
    // As etcd: a Lock abandoned while waiting deletes its key. While the txn is in flight
    // there is nothing to delete yet; Acquired does it.
    if (my_rev_ > 0) Unlock();
    Finish(absl::CancelledError("context canceled"));
  }

 private:
  void Enter() {
    TxnRequest txn;
    Compare* cmp = txn.add_compare();
    cmp->set_key(key_);
    cmp->set_target(Compare::CREATE);
    cmp->set_result(Compare::EQUAL);
    cmp->set_create_revision(0);
    RequestOp* put = txn.add_success();
    put->mutable_request_put()->set_key(key_);
    put->mutable_request_put()->set_lease(lease_);
    *txn.add_success() = GetOwner(prefix_);
    *txn.add_failure() = Get(key_);
    *txn.add_failure() = GetOwner(prefix_);
    recipes_->Txn(std::move(txn), [self = shared_from_this()](absl::StatusOr<TxnResponse> t) {
      self->Acquired(std::move(t));
    });
  }

  void Acquired(absl::StatusOr<TxnResponse> t) {
    if (!t.ok()) return Finish(t.status());
    if (t->succeeded()) {
      my_rev_ = t->header().revision();
    } else {
      const auto& mine = t->responses(0).response_range().kvs();
      // The key existed when the txn was evaluated (its compare failed).
      if (mine.empty()) return Finish(SessionExpired());
      my_rev_ = mine[0].create_revision();
    }
    if (canceled_) {
      if (t->succeeded()) Unlock();
      return;
    }
    const auto& owner = t->responses(1).response_range().kvs();
    if (owner.empty() || owner[0].create_revision() == my_rev_) {
      *resp_->mutable_header() = t->header();
      return Succeed();
    }
    waiter_ = DeletesWaiter::Start(
        recipes_, prefix_, my_rev_ - 1,
        [self = shared_from_this()](absl::Status s) { self->Waited(std::move(s)); });
  }

  void Waited(absl::Status s) {
    waiter_.reset();
    if (!s.ok()) {
      Unlock();
      return Finish(s);
    }
    // Make sure the key survived the wait (the lease may have ended).
    RangeRequest get;
    get.set_key(key_);
    recipes_->Range(std::move(get),
                    [self = shared_from_this()](absl::StatusOr<etcdserverpb::RangeResponse> r) {
                      if (self->finished_) return;
                      if (!r.ok()) {
                        self->Unlock();
                        return self->Finish(r.status());
                      }
                      if (r->kvs().empty()) return self->Finish(SessionExpired());
                      *self->resp_->mutable_header() = r->header();
                      self->Succeed();
                    });
  }

  void Unlock() {
    TxnRequest txn;
    txn.add_success()->mutable_request_delete_range()->set_key(key_);
    recipes_->Txn(std::move(txn), [](absl::StatusOr<TxnResponse>) {});
  }

  void Succeed() {
    resp_->set_key(key_);
    Finish(absl::OkStatus());
  }

  void Finish(absl::Status s) {
    if (finished_) return;
    finished_ = true;
    reactor_->Finish(ToGrpc(s));
  }

  Recipes* const recipes_;
  const std::string prefix_;
  std::string key_;  // set with lease_
  int64_t lease_;    // the request's, or the session lease granted for lease 0
  v3lockpb::LockResponse* const resp_;
  grpc::ServerUnaryReactor* reactor_ = nullptr;
  int64_t my_rev_ = -1;
  bool finished_ = false;
  bool canceled_ = false;
  std::shared_ptr<DeletesWaiter> waiter_;
};

}  // namespace

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext* ctx,
                                            const v3lockpb::LockRequest* req,
                                            v3lockpb::LockResponse* resp) {
  if (absl::Status s = CheckLeader(*ctx, recipes_->node()->has_leader()); !s.ok())
    return Answer(ctx, s);
  auto call = std::make_shared<LockCall>(recipes_, *req, resp);
  auto* reactor = new CancelableReactor(recipes_, [call] { call->Cancel(); });
  call->set_reactor(reactor);
  recipes_->Post([call] { call->Begin(); });
  return reactor;
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* ctx,
                                              const v3lockpb::UnlockRequest* req,
                                              v3lockpb::UnlockResponse* resp) {
  if (absl::Status s = CheckLeader(*ctx, recipes_->node()->has_leader()); !s.ok())
    return Answer(ctx, s);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  TxnRequest txn;
  txn.add_success()->mutable_request_delete_range()->set_key(req->key());
  recipes_->Txn(std::move(txn), [reactor, resp](absl::StatusOr<TxnResponse> t) {
    if (t.ok()) *resp->mutable_header() = t->header();
    reactor->Finish(ToGrpc(t.status()));
  });
  return reactor;
}

}  // namespace kvd::server::v3lock
