// Checks a KV request on its own, before it is proposed: what etcd's gRPC layer rejects
// without looking at the store. Same order of checks and same errors as etcd, so a request
// that breaks several rules gets the error etcd would give.
#ifndef KVD_SERVER_APPLY_KV_CHECKS_H_
#define KVD_SERVER_APPLY_KV_CHECKS_H_

#include "absl/status/status.h"
#include "api/etcdserverpb/rpc.pb.h"

namespace kvd::server {

absl::Status CheckRangeRequest(const etcdserverpb::RangeRequest& req);
absl::Status CheckPutRequest(const etcdserverpb::PutRequest& req);
absl::Status CheckDeleteRequest(const etcdserverpb::DeleteRangeRequest& req);
// Op counts (each level's largest of compares/success/failure, within max_txn_ops), keys,
// and overlapping writes: two puts of one key, or a put inside a deleted range, on one
// path through the txn (errors::DuplicateKey()).
absl::Status CheckTxnRequest(const etcdserverpb::TxnRequest& req, int max_txn_ops);

}  // namespace kvd::server

#endif  // KVD_SERVER_APPLY_KV_CHECKS_H_
