// etcd's KV request semantics over the MVCC store: what a Range, Put, DeleteRange, Txn or
// Compaction request means, and the response it gets.
//
// These functions are deterministic: the same request applied to the same store state
// gives the same response and the same writes on every member. Requests must already have
// passed CheckRangeRequest & co. (server/apply/kv_checks.h); what is checked here is what
// depends on the store's state (revisions, key existence, leases).
//
// Response headers carry only the revision; the gRPC layer fills cluster/member/term.
#ifndef KVD_SERVER_APPLY_KV_APPLY_H_
#define KVD_SERVER_APPLY_KV_APPLY_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {

// Answers whether a lease exists (a Put naming a missing lease fails).
using LeaseExists = std::function<bool(int64_t lease_id)>;

// A read through view (a snapshot for plain reads, or the open request of a batch).
absl::StatusOr<etcdserverpb::RangeResponse> ApplyRange(const storage::mvcc::KvView& view,
                                                       const etcdserverpb::RangeRequest& req);

// Each of these opens and closes one request in batch; a request that fails changes
// nothing and consumes no revision.
absl::StatusOr<etcdserverpb::PutResponse> ApplyPut(storage::mvcc::ApplyBatch& batch,
                                                   const etcdserverpb::PutRequest& req,
                                                   const LeaseExists& lease_exists);
absl::StatusOr<etcdserverpb::DeleteRangeResponse> ApplyDeleteRange(
    storage::mvcc::ApplyBatch& batch, const etcdserverpb::DeleteRangeRequest& req);
absl::StatusOr<etcdserverpb::TxnResponse> ApplyTxn(storage::mvcc::ApplyBatch& batch,
                                                   const etcdserverpb::TxnRequest& req,
                                                   const LeaseExists& lease_exists);
absl::StatusOr<etcdserverpb::CompactionResponse> ApplyCompaction(
    storage::mvcc::ApplyBatch& batch, const etcdserverpb::CompactionRequest& req);

// A txn with no Put or DeleteRange anywhere in it (it can be served as a read).
bool IsReadOnlyTxn(const etcdserverpb::TxnRequest& req);
// A read-only txn evaluated on a snapshot. REQUIRES: IsReadOnlyTxn(req).
absl::StatusOr<etcdserverpb::TxnResponse> ApplyReadOnlyTxn(const storage::mvcc::KvView& view,
                                                           const etcdserverpb::TxnRequest& req);

}  // namespace kvd::server

#endif  // KVD_SERVER_APPLY_KV_APPLY_H_
