#include "server/apply/applier.h"

#include <utility>

#include "server/apply/alarm_apply.h"
#include "storage/check.h"

namespace kvd::server {
namespace {

// Moves result into *out when the caller wants it, checking the caller's type.
template <typename Response>
absl::Status Deliver(absl::StatusOr<Response> result, google::protobuf::Message* out) {
  if (!result.ok()) return result.status();
  if (out != nullptr) {
    auto* typed = dynamic_cast<Response*>(out);
    KVD_CHECK(typed != nullptr);
    *typed = std::move(*result);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Applier::Apply(storage::mvcc::ApplyBatch& batch, const internalpb::Request& req,
                            google::protobuf::Message* response) const {
  // Active alarms refuse writes on every member alike (server/apply/alarm_apply.h).
  if (absl::Status s = CheckAlarmsInBatch(batch, req); !s.ok()) return s;
  switch (req.request_case()) {
    case internalpb::Request::kPut:
      return Deliver(ApplyPut(batch, req.put(), lease_exists_), response);
    case internalpb::Request::kDeleteRange:
      return Deliver(ApplyDeleteRange(batch, req.delete_range()), response);
    case internalpb::Request::kTxn:
      return Deliver(ApplyTxn(batch, req.txn(), lease_exists_), response);
    case internalpb::Request::kCompaction:
      return Deliver(ApplyCompaction(batch, req.compaction()), response);
    case internalpb::Request::kAlarm:
      return ApplyAlarm(batch, req.alarm(), response);
    default:
      return absl::UnimplementedError("kvd: request type not supported by this member");
  }
}

}  // namespace kvd::server
