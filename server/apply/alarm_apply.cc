#include "server/apply/alarm_apply.h"

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "storage/check.h"

namespace kvd::server {
namespace {

using etcdserverpb::AlarmMember;

absl::StatusOr<std::vector<AlarmMember>> Decode(const std::optional<std::string>& value) {
  std::vector<AlarmMember> out;
  if (!value.has_value()) return out;
  etcdserverpb::AlarmResponse record;
  if (!record.ParseFromString(*value)) {
    return absl::DataLossError("kvd: the alarm record in the meta family is corrupt");
  }
  out.assign(record.alarms().begin(), record.alarms().end());
  return out;
}

bool SameAlarm(const AlarmMember& a, const AlarmMember& b) {
  return a.memberid() == b.memberid() && a.alarm() == b.alarm();
}

bool AlarmLess(const AlarmMember& a, const AlarmMember& b) {
  return std::make_tuple(a.memberid(), static_cast<int>(a.alarm())) <
         std::make_tuple(b.memberid(), static_cast<int>(b.alarm()));
}

bool TxnHasPut(const etcdserverpb::TxnRequest& txn) {
  for (const auto* ops : {&txn.success(), &txn.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_put()) return true;
      if (op.has_request_txn() && TxnHasPut(op.request_txn())) return true;
    }
  }
  return false;
}

bool TxnWrites(const etcdserverpb::TxnRequest& txn) {
  for (const auto* ops : {&txn.success(), &txn.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_put() || op.has_request_delete_range()) return true;
      if (op.has_request_txn() && TxnWrites(op.request_txn())) return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<AlarmMember>> LoadAlarms(const storage::Engine& engine) {
  absl::StatusOr<std::string> value = engine.Get(storage::Cf::kMeta, kMetaAlarmsKey);
  if (absl::IsNotFound(value.status())) return std::vector<AlarmMember>();
  if (!value.ok()) return value.status();
  return Decode(*value);
}

bool NeedsSpace(const internalpb::Request& req) {
  switch (req.request_case()) {
    case internalpb::Request::kPut:
    case internalpb::Request::kLeaseGrant:
      return true;
    case internalpb::Request::kTxn:
      return TxnHasPut(req.txn());
    default:
      return false;
  }
}

bool IsClientWrite(const internalpb::Request& req) {
  switch (req.request_case()) {
    case internalpb::Request::kPut:
    case internalpb::Request::kDeleteRange:
    case internalpb::Request::kCompaction:
    case internalpb::Request::kLeaseGrant:
    case internalpb::Request::kLeaseRevoke:
      return true;
    case internalpb::Request::kTxn:
      return TxnWrites(req.txn());
    default:
      return false;
  }
}

absl::Status CheckAlarms(const std::vector<AlarmMember>& alarms, const internalpb::Request& req) {
  bool corrupt = false, nospace = false;
  for (const AlarmMember& a : alarms) {
    corrupt |= a.alarm() == etcdserverpb::CORRUPT;
    nospace |= a.alarm() == etcdserverpb::NOSPACE;
  }
  if (corrupt && IsClientWrite(req)) return errors::Corrupt();
  if (nospace && NeedsSpace(req)) return errors::NoSpace();
  return absl::OkStatus();
}

absl::Status CheckAlarmsInBatch(const storage::mvcc::ApplyBatch& batch,
                                const internalpb::Request& req) {
  if (!IsClientWrite(req)) return absl::OkStatus();  // no read for the rest
  absl::StatusOr<std::optional<std::string>> value = batch.GetAux(storage::Cf::kMeta, kMetaAlarmsKey);
  if (!value.ok()) return value.status();
  absl::StatusOr<std::vector<AlarmMember>> alarms = Decode(*value);
  if (!alarms.ok()) return alarms.status();
  return CheckAlarms(*alarms, req);
}

absl::Status ApplyAlarm(storage::mvcc::ApplyBatch& batch, const etcdserverpb::AlarmRequest& req,
                        google::protobuf::Message* response) {
  etcdserverpb::AlarmResponse* resp = nullptr;
  if (response != nullptr) {
    resp = dynamic_cast<etcdserverpb::AlarmResponse*>(response);
    KVD_CHECK(resp != nullptr);
  }
  absl::StatusOr<std::optional<std::string>> value = batch.GetAux(storage::Cf::kMeta, kMetaAlarmsKey);
  if (!value.ok()) return value.status();
  absl::StatusOr<std::vector<AlarmMember>> alarms = Decode(*value);
  if (!alarms.ok()) return alarms.status();

  AlarmMember target;
  target.set_memberid(req.memberid());
  target.set_alarm(req.alarm());
  auto it = std::find_if(alarms->begin(), alarms->end(),
                         [&](const AlarmMember& a) { return SameAlarm(a, target); });
  bool changed = false;
  switch (req.action()) {
    case etcdserverpb::AlarmRequest::GET:
      if (resp != nullptr) {
        for (const AlarmMember& a : *alarms) {
          if (req.alarm() == etcdserverpb::NONE || a.alarm() == req.alarm()) {
            *resp->add_alarms() = a;
          }
        }
      }
      return absl::OkStatus();
    case etcdserverpb::AlarmRequest::ACTIVATE:
      if (it == alarms->end()) {
        alarms->insert(std::upper_bound(alarms->begin(), alarms->end(), target, AlarmLess),
                       target);
        changed = true;
      }
      if (resp != nullptr) *resp->add_alarms() = target;
      break;
    case etcdserverpb::AlarmRequest::DEACTIVATE:
      if (it != alarms->end()) {
        alarms->erase(it);
        changed = true;
        if (resp != nullptr) *resp->add_alarms() = target;
      }
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("etcdserver: unknown alarm action ", static_cast<int>(req.action())));
  }
  if (!changed) return absl::OkStatus();
  if (alarms->empty()) {
    batch.DeleteAux(storage::Cf::kMeta, kMetaAlarmsKey);
  } else {
    etcdserverpb::AlarmResponse record;
    for (const AlarmMember& a : *alarms) *record.add_alarms() = a;
    batch.PutAux(storage::Cf::kMeta, kMetaAlarmsKey, record.SerializeAsString());
  }
  return absl::OkStatus();
}

std::string AlarmStatusText(const etcdserverpb::AlarmMember& alarm) {
  return absl::StrCat("memberID:", alarm.memberid(),
                      " alarm:", etcdserverpb::AlarmType_Name(alarm.alarm()), " ");
}

}  // namespace kvd::server
