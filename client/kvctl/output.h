// kvctl's output formats, byte for byte as etcdctl prints them.
//
//   simple  human-readable lines (get: key line then value line; put: OK; del: count).
//   json    what etcdctl's Go encoding/json prints for the same response: proto field names,
//           fields with zero values left out, 64-bit numbers as numbers, bytes in base64,
//           enums as numbers, a oneof as {"<OneofName>":{"<FieldName>":...}} in Go's
//           CamelCase (see EtcdJson).
//   table   etcdctl's tablewriter tables (endpoint commands only, as in etcdctl).
//   fields  one `"Name" : value` line per field, strings Go-quoted (for scripts).
#ifndef KVD_CLIENT_KVCTL_OUTPUT_H_
#define KVD_CLIENT_KVCTL_OUTPUT_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "client/kvctl/go_format.h"
#include "google/protobuf/message.h"

namespace kvd::kvctl {

// Results of the endpoint commands.

struct EndpointStatus {
  std::string endpoint;
  etcdserverpb::StatusResponse status;
};

struct EndpointHealth {
  std::string endpoint;
  bool healthy = false;
  absl::Duration took;
  std::string error;  // empty when healthy
};

struct EndpointHashKV {
  std::string endpoint;
  etcdserverpb::HashKVResponse hash_kv;
};

// etcdctl's simple output of `role get`.
std::string RoleGetText(absl::string_view role, const etcdserverpb::AuthRoleGetResponse& r);

enum class Format { kSimple, kJson, kTable, kFields };

// Errors: INVALID_ARGUMENT for a name other than simple, json, table, fields.
absl::Status ParseFormat(absl::string_view name, Format* format);

class Printer {
 public:
  // `hex`: print keys and values as \x.. escapes (simple format).
  Printer(Format format, bool hex, std::ostream& out, std::ostream& err)
      : format_(format), hex_(hex), out_(out), err_(err) {}

  // Errors (exit code kExitBadFeature): the format does not support this output.
  absl::Status Get(const etcdserverpb::RangeResponse& response, bool value_only);
  absl::Status Put(const etcdserverpb::PutResponse& response);
  absl::Status Del(const etcdserverpb::DeleteRangeResponse& response);
  absl::Status Txn(const etcdserverpb::TxnResponse& response);
  void EndpointStatuses(const std::vector<EndpointStatus>& statuses);
  // Simple output goes to the error stream, as in etcdctl.
  void EndpointHealths(const std::vector<EndpointHealth>& healths);
  void EndpointHashKVs(const std::vector<EndpointHashKV>& hashes);

  // One watch response: its events (simple, fields) or the whole response (json).
  // Errors (kExitBadFeature): table output.
  absl::Status Watch(const etcdserverpb::WatchResponse& response);

  // Lease and member commands. Errors (kExitBadFeature): table output, except for
  // MemberList.
  absl::Status LeaseGrant(const etcdserverpb::LeaseGrantResponse& response);
  absl::Status LeaseRevoke(int64_t id, const etcdserverpb::LeaseRevokeResponse& response);
  absl::Status LeaseKeepAlive(const etcdserverpb::LeaseKeepAliveResponse& response);
  absl::Status LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& response, bool keys);
  absl::Status LeaseLeases(const etcdserverpb::LeaseLeasesResponse& response);
  void MemberList(const etcdserverpb::MemberListResponse& response);
  // member add/remove/update/promote: `verb` is "added to", "removed from", "updated in"
  // or "promoted in"; `response` is the RPC's response (for json).
  absl::Status MemberChange(absl::string_view verb, uint64_t member_id,
                            const etcdserverpb::ResponseHeader& header,
                            const google::protobuf::Message& response);
  absl::Status MoveLeader(uint64_t from, uint64_t to,
                          const etcdserverpb::MoveLeaderResponse& response);
  absl::Status Alarm(const etcdserverpb::AlarmResponse& response);

  // user/role commands: `simple` is etcdctl's simple output; json prints `response`;
  // fields prints the header and `fields` (preformatted lines).
  absl::Status AuthResult(absl::string_view simple, const google::protobuf::Message& response,
                          const etcdserverpb::ResponseHeader& header,
                          absl::string_view fields = "");

 private:
  absl::Status Unsupported() const;
  // The shape Get, Put and Del share: printers of their own for simple and fields, etcd's
  // JSON, and no table.
  template <typename Response, typename Simple, typename Fields>
  absl::Status SimpleJsonFields(const Response& response, Simple simple, Fields fields);
  void PrintKV(const mvccpb::KeyValue& kv, bool value_only);
  void SimpleGet(const etcdserverpb::RangeResponse& response, bool value_only);
  void SimplePut(const etcdserverpb::PutResponse& response);
  void SimpleDel(const etcdserverpb::DeleteRangeResponse& response);
  void FieldsHeader(const etcdserverpb::ResponseHeader& header);
  void FieldsKV(absl::string_view prefix, const mvccpb::KeyValue& kv);
  void FieldsGet(const etcdserverpb::RangeResponse& response);
  void FieldsPut(const etcdserverpb::PutResponse& response);
  void FieldsDel(const etcdserverpb::DeleteRangeResponse& response);

  Format format_;
  bool hex_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_OUTPUT_H_
