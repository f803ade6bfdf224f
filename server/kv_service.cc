#include "server/kv_service.h"

#include <utility>

#include "api/errors.h"
#include "server/apply/kv_apply.h"
#include "server/apply/kv_checks.h"
#include "server/grpc_status.h"

namespace kvd::server {
namespace {

// A read-only txn may skip ReadIndex only if every range in it asks to be serializable.
bool IsSerializableTxn(const etcdserverpb::TxnRequest& txn) {
  for (const auto* ops : {&txn.success(), &txn.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_range() && !op.request_range().serializable()) return false;
      if (op.has_request_txn() && !IsSerializableTxn(op.request_txn())) return false;
    }
  }
  return true;
}

// Runs read after a ReadIndex unless serializable, then answers with its result.
template <typename Response, typename Read>
grpc::ServerUnaryReactor* ServeRead(Node* node, grpc::CallbackServerContext* ctx, bool serializable,
                                    Response* resp, Read read) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto serve = [node, reactor, resp, read = std::move(read)](absl::Status ready) {
    if (!ready.ok()) {
      reactor->Finish(ToGrpc(ready));
      return;
    }
    std::unique_ptr<storage::mvcc::ReadTxn> view = node->kv().Read();
    absl::StatusOr<Response> result = read(*view);
    if (!result.ok()) {
      reactor->Finish(ToGrpc(result.status()));
      return;
    }
    *resp = std::move(*result);
    node->FillHeader(resp->mutable_header());
    reactor->Finish(grpc::Status::OK);
  };
  if (serializable) {
    serve(absl::OkStatus());
  } else {
    node->ReadIndex(std::move(serve));
  }
  return reactor;
}

}  // namespace

absl::Status Admit(const Node& node, const grpc::ServerContextBase& ctx, bool serializable_read) {
  if (node.is_learner() && !serializable_read) return errors::RpcNotSupportedForLearner();
  return CheckLeader(ctx, node.has_leader());
}

template <typename Response>
void KvService::ProposeAndFinish(grpc::ServerUnaryReactor* reactor, internalpb::Request req,
                                 Response* resp) {
  if (static_cast<int64_t>(req.ByteSizeLong()) > limits_.max_request_bytes) {
    reactor->Finish(ToGrpc(errors::RequestTooLarge()));
    return;
  }
  if (limits_.admit_write) {
    if (absl::Status s = limits_.admit_write(req); !s.ok()) {
      reactor->Finish(ToGrpc(s));
      return;
    }
  }
  node_->Propose(std::move(req), resp, [this, reactor, resp](absl::Status s) {
    if (s.ok()) node_->FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  });
}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* ctx,
                                           const etcdserverpb::RangeRequest* req,
                                           etcdserverpb::RangeResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx, req->serializable()); !s.ok()) return Answer(ctx, s);
  if (absl::Status s = CheckRangeRequest(*req); !s.ok()) return Answer(ctx, s);
  return ServeRead(node_, ctx, req->serializable() || limits_.plant_local_reads, resp,
                   [req](const storage::mvcc::KvView& view) { return ApplyRange(view, *req); });
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  if (absl::Status s = CheckPutRequest(*req); !s.ok()) return Answer(ctx, s);
  internalpb::Request proposal;
  *proposal.mutable_put() = *req;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ProposeAndFinish(reactor, std::move(proposal), resp);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* ctx,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  if (absl::Status s = CheckDeleteRequest(*req); !s.ok()) return Answer(ctx, s);
  internalpb::Request proposal;
  *proposal.mutable_delete_range() = *req;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ProposeAndFinish(reactor, std::move(proposal), resp);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  if (absl::Status s = CheckTxnRequest(*req, limits_.max_txn_ops); !s.ok()) {
    return Answer(ctx, s);
  }
  if (IsReadOnlyTxn(*req)) {
    return ServeRead(
        node_, ctx, IsSerializableTxn(*req) || limits_.plant_local_reads, resp,
        [req](const storage::mvcc::KvView& view) { return ApplyReadOnlyTxn(view, *req); });
  }
  internalpb::Request proposal;
  *proposal.mutable_txn() = *req;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  ProposeAndFinish(reactor, std::move(proposal), resp);
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* ctx,
                                             const etcdserverpb::CompactionRequest* req,
                                             etcdserverpb::CompactionResponse* resp) {
  if (absl::Status s = Admit(*node_, *ctx); !s.ok()) return Answer(ctx, s);
  internalpb::Request proposal;
  *proposal.mutable_compaction() = *req;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  bool physical = req->physical();
  int64_t rev = req->revision();
  node_->Propose(std::move(proposal), resp, [this, reactor, resp, physical, rev](absl::Status s) {
    if (!s.ok()) {
      reactor->Finish(ToGrpc(s));
      return;
    }
    node_->FillHeader(resp->mutable_header());
    if (!physical) {
      reactor->Finish(grpc::Status::OK);
      return;
    }
    node_->WaitCompacted(rev, [reactor](absl::Status done) { reactor->Finish(ToGrpc(done)); });
  });
  return reactor;
}

}  // namespace kvd::server
