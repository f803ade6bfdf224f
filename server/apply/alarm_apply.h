// Alarms in the replicated state (etcd's alarm store), and the requests they refuse.
//
// The active alarms live in the meta column family under kMetaAlarmsKey as an
// etcdserverpb::AlarmResponse whose `alarms` list is sorted by (memberID, alarm) and holds
// no duplicates; the key is absent when no alarm is active. Alarm changes are raft entries
// (internalpb::Request.alarm) applied by ApplyAlarm, so every member holds the same alarms,
// and they travel in state snapshots with the rest of the meta family.
//
// While an alarm is active the state machine refuses, on every member alike (what etcd's
// capped and corrupt appliers do):
//   NOSPACE  requests that need space: Put, a Txn with a Put anywhere in it (in either
//            branch, whichever one runs), LeaseGrant -> errors::NoSpace(). Reads,
//            DeleteRange, delete-only Txns, Compaction and LeaseRevoke still run, so an
//            operator can free space.
//   CORRUPT  every client write: Put, DeleteRange, Txn, Compaction, LeaseGrant,
//            LeaseRevoke -> errors::Corrupt(). Reads still run.
// A refused request changes nothing and consumes no revision.
#ifndef KVD_SERVER_APPLY_ALARM_APPLY_H_
#define KVD_SERVER_APPLY_ALARM_APPLY_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "api/kvdpb/internal.pb.h"
#include "google/protobuf/message.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {

inline constexpr char kMetaAlarmsKey[] = "alarms";

// The active alarms in the committed state of engine (any thread).
absl::StatusOr<std::vector<etcdserverpb::AlarmMember>> LoadAlarms(const storage::Engine& engine);

// Whether req needs space (is refused while NOSPACE is active).
bool NeedsSpace(const internalpb::Request& req);
// Whether req is a client write (is refused while CORRUPT is active).
bool IsClientWrite(const internalpb::Request& req);

// The refusal alarms impose on req (OK when none): errors::Corrupt() first, then
// errors::NoSpace().
absl::Status CheckAlarms(const std::vector<etcdserverpb::AlarmMember>& alarms,
                         const internalpb::Request& req);
// CheckAlarms against the alarms the batch sees (its own earlier alarm changes included).
// For the state machine (apply thread).
absl::Status CheckAlarmsInBatch(const storage::mvcc::ApplyBatch& batch,
                                const internalpb::Request& req);

// Applies an alarm request inside batch, as etcd does:
//   ACTIVATE    adds (memberID, alarm); the response lists that alarm (also when it was
//               already active).
//   DEACTIVATE  removes it; the response lists it if it was active, else nothing.
//   GET         changes nothing; the response lists the active alarms of type alarm (NONE:
//               all), whatever memberID says.
// response, when not null, must be an etcdserverpb::AlarmResponse (header untouched).
// Errors: InvalidArgument for an unknown action; DataLoss for a corrupt record.
absl::Status ApplyAlarm(storage::mvcc::ApplyBatch& batch, const etcdserverpb::AlarmRequest& req,
                        google::protobuf::Message* response);

// "memberID:<decimal> alarm:<NAME> " — etcd's text for an alarm in Status.errors (the
// trailing space included: etcd prints the message in protobuf's compact text form).
std::string AlarmStatusText(const etcdserverpb::AlarmMember& alarm);

}  // namespace kvd::server

#endif  // KVD_SERVER_APPLY_ALARM_APPLY_H_
