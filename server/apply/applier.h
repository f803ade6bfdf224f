// Applies committed requests to the store: the deterministic state machine every member
// runs over the same log.
#ifndef KVD_SERVER_APPLY_APPLIER_H_
#define KVD_SERVER_APPLY_APPLIER_H_

#include "absl/status/status.h"
#include "api/kvdpb/internal.pb.h"
#include "google/protobuf/message.h"
#include "server/apply/kv_apply.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {

class Applier {
 public:
  explicit Applier(LeaseExists lease_exists) : lease_exists_(std::move(lease_exists)) {}

  // Applies req inside batch. On OK, *response (when not null) holds the response; its type
  // must match the request: PutResponse for put, DeleteRangeResponse for delete_range,
  // TxnResponse for txn, CompactionResponse for compaction, AlarmResponse for alarm. A
  // failed request changes nothing. Active alarms refuse writes (server/apply/alarm_apply.h).
  absl::Status Apply(storage::mvcc::ApplyBatch& batch, const internalpb::Request& req,
                     google::protobuf::Message* response) const;

 private:
  LeaseExists lease_exists_;
};

}  // namespace kvd::server

#endif  // KVD_SERVER_APPLY_APPLIER_H_
