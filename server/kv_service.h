// etcd's KV service: Range, Put, DeleteRange, Txn, Compact.
//
// Requests are checked here (kv_checks.h) and then either read from a snapshot (Range and
// read-only Txn, after ReadIndex unless serializable) or proposed to the node. Handlers
// never block a gRPC thread: the node answers through the call's reactor.
#ifndef KVD_SERVER_KV_SERVICE_H_
#define KVD_SERVER_KV_SERVICE_H_

#include <cstdint>
#include <functional>

#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "server/node.h"

namespace kvd::server {

struct RequestLimits {
  // etcd's --max-request-bytes: larger requests get errors::RequestTooLarge().
  int64_t max_request_bytes = 1536 * 1024;
  // etcd's --max-txn-ops.
  int max_txn_ops = 128;
  // Asked before a write is proposed (MaintenanceService::AdmitWrite: alarms and the
  // backend quota); an error is the answer. Unset: every write is proposed.
  std::function<absl::Status(const internalpb::Request&)> admit_write;
  // --kvd-plant-bug=local-reads (fault-harness tests only): every read is served from the
  // local state as if serializable, without ReadIndex, so it can be stale.
  bool plant_local_reads = false;
};

// etcd's interceptor, before any check of a request (KV and Lease calls): a learner serves
// only serializable reads, and a call that requires a leader (hasleader=true) fails on a
// member that knows none.
absl::Status Admit(const Node& node, const grpc::ServerContextBase& ctx,
                   bool serializable_read = false);

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(Node* node, RequestLimits limits) : node_(node), limits_(limits) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::CompactionRequest* req,
                                    etcdserverpb::CompactionResponse* resp) override;

 private:
  // Proposes req (already checked); answers with *resp, its header filled.
  template <typename Response>
  void ProposeAndFinish(grpc::ServerUnaryReactor* reactor, internalpb::Request req, Response* resp);

  Node* const node_;
  const RequestLimits limits_;
};

}  // namespace kvd::server

#endif  // KVD_SERVER_KV_SERVICE_H_
