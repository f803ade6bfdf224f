#include "client/kvctl/output.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/go_format.h"
#include "client/kvctl/requests.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;
using google::protobuf::Message;

// ---------------------------------------------------------------------------------------
// Printer
// ---------------------------------------------------------------------------------------

absl::Status ParseFormat(absl::string_view name, Format* format) {
  if (name == "simple") {
    *format = Format::kSimple;
  } else if (name == "json") {
    *format = Format::kJson;
  } else if (name == "table") {
    *format = Format::kTable;
  } else if (name == "fields") {
    *format = Format::kFields;
  } else if (name == "protobuf") {
    return MakeFailure(kExitBadFeature,
                       absl::StrCat(name, " not supported as output format by kvctl"));
  } else {
    return MakeFailure(kExitBadFeature, "unsupported output format");  // etcdctl's words
  }
  return absl::OkStatus();
}

absl::Status Printer::Unsupported() const {
  return MakeFailure(kExitBadFeature, "table not supported as output format");
}

void Printer::PrintKV(const mvccpb::KeyValue& kv, bool value_only) {
  auto text = [&](const std::string& bytes) {
    if (!hex_) return bytes;
    std::string out;
    for (unsigned char c : bytes) absl::StrAppendFormat(&out, "\\x%02x", c);
    return out;
  };
  if (!value_only) out_ << text(kv.key()) << "\n";
  out_ << text(kv.value()) << "\n";
}

void Printer::SimpleGet(const pb::RangeResponse& response, bool value_only) {
  for (const mvccpb::KeyValue& kv : response.kvs()) PrintKV(kv, value_only);
}

void Printer::SimplePut(const pb::PutResponse& response) {
  out_ << "OK\n";
  if (response.has_prev_kv()) PrintKV(response.prev_kv(), false);
}

void Printer::SimpleDel(const pb::DeleteRangeResponse& response) {
  out_ << response.deleted() << "\n";
  for (const mvccpb::KeyValue& kv : response.prev_kvs()) PrintKV(kv, false);
}

void Printer::FieldsHeader(const pb::ResponseHeader& h) {
  out_ << "\"ClusterID\" : " << h.cluster_id() << "\n"
       << "\"MemberID\" : " << h.member_id() << "\n"
       << "\"Revision\" : " << h.revision() << "\n"
       << "\"RaftTerm\" : " << h.raft_term() << "\n";
}

void Printer::FieldsKV(absl::string_view prefix, const mvccpb::KeyValue& kv) {
  out_ << "\"" << prefix << "Key\" : " << GoQuote(kv.key()) << "\n"
       << "\"" << prefix << "CreateRevision\" : " << kv.create_revision() << "\n"
       << "\"" << prefix << "ModRevision\" : " << kv.mod_revision() << "\n"
       << "\"" << prefix << "Version\" : " << kv.version() << "\n"
       << "\"" << prefix << "Value\" : " << GoQuote(kv.value()) << "\n"
       << "\"" << prefix << "Lease\" : " << kv.lease() << "\n";
}

void Printer::FieldsGet(const pb::RangeResponse& response) {
  FieldsHeader(response.header());
  for (const mvccpb::KeyValue& kv : response.kvs()) FieldsKV("", kv);
  out_ << "\"More\" : " << (response.more() ? "true" : "false") << "\n"
       << "\"Count\" : " << response.count() << "\n";
}

void Printer::FieldsPut(const pb::PutResponse& response) {
  FieldsHeader(response.header());
  if (response.has_prev_kv()) FieldsKV("Prev", response.prev_kv());
}

void Printer::FieldsDel(const pb::DeleteRangeResponse& response) {
  FieldsHeader(response.header());
  out_ << "\"Deleted\" : " << response.deleted() << "\n";
  for (const mvccpb::KeyValue& kv : response.prev_kvs()) FieldsKV("Prev", kv);
}

template <typename Response, typename Simple, typename Fields>
absl::Status Printer::SimpleJsonFields(const Response& response, Simple simple, Fields fields) {
  switch (format_) {
    case Format::kSimple:
      simple();
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      fields();
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::Get(const pb::RangeResponse& response, bool value_only) {
  return SimpleJsonFields(
      response, [&] { SimpleGet(response, value_only); }, [&] { FieldsGet(response); });
}

absl::Status Printer::Put(const pb::PutResponse& response) {
  return SimpleJsonFields(
      response, [&] { SimplePut(response); }, [&] { FieldsPut(response); });
}

absl::Status Printer::Del(const pb::DeleteRangeResponse& response) {
  return SimpleJsonFields(
      response, [&] { SimpleDel(response); }, [&] { FieldsDel(response); });
}

absl::Status Printer::Txn(const pb::TxnResponse& response) {
  switch (format_) {
    case Format::kSimple:
      out_ << (response.succeeded() ? "SUCCESS" : "FAILURE") << "\n";
      for (const pb::ResponseOp& op : response.responses()) {
        out_ << "\n";
        switch (op.response_case()) {
          case pb::ResponseOp::kResponseRange:
            SimpleGet(op.response_range(), false);
            break;
          case pb::ResponseOp::kResponsePut:
            SimplePut(op.response_put());
            break;
          case pb::ResponseOp::kResponseDeleteRange:
            SimpleDel(op.response_delete_range());
            break;
          default:
            out_ << "unexpected response " << op.ShortDebugString() << "\n";
            break;
        }
      }
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(response.header());
      out_ << "\"Succeeded\" : " << (response.succeeded() ? "true" : "false") << "\n";
      for (const pb::ResponseOp& op : response.responses()) {
        switch (op.response_case()) {
          case pb::ResponseOp::kResponseRange:
            FieldsGet(op.response_range());
            break;
          case pb::ResponseOp::kResponsePut:
            FieldsPut(op.response_put());
            break;
          case pb::ResponseOp::kResponseDeleteRange:
            FieldsDel(op.response_delete_range());
            break;
          default:
            out_ << "\"Unknown\" : " << GoQuote(op.ShortDebugString()) << "\n";
            break;
        }
      }
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

namespace {

// Go's fmt.Println of a []string: "[a b c]".
std::string GoStringSlice(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, " "), "]");
}

std::vector<std::string> StatusRow(const EndpointStatus& s) {
  const pb::StatusResponse& r = s.status;
  return {s.endpoint,
          absl::StrFormat("%x", r.header().member_id()),
          r.version(),
          HumanizeBytes(static_cast<uint64_t>(r.dbsize())),
          r.leader() == r.header().member_id() ? "true" : "false",
          r.islearner() ? "true" : "false",
          absl::StrCat(r.raftterm()),
          absl::StrCat(r.raftindex()),
          absl::StrCat(r.raftappliedindex()),
          absl::StrJoin(r.errors(), ", ")};
}

}  // namespace

void Printer::EndpointStatuses(const std::vector<EndpointStatus>& statuses) {
  static const std::vector<std::string> kHeader = {"endpoint",  "ID",         "version",
                                                   "db size",   "is leader",  "is learner",
                                                   "raft term", "raft index", "raft applied index",
                                                   "errors"};
  std::vector<std::vector<std::string>> rows;
  for (const EndpointStatus& s : statuses) rows.push_back(StatusRow(s));
  switch (format_) {
    case Format::kSimple:
      for (const auto& row : rows) out_ << absl::StrJoin(row, ", ") << "\n";
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointStatus& s : statuses) {
        items.push_back(absl::StrCat("{\"Endpoint\":", GoJsonString(s.endpoint),
                                     ",\"Status\":", EtcdJson(s.status), "}"));
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable:
      out_ << RenderTable(kHeader, rows);
      break;
    case Format::kFields:
      for (const EndpointStatus& s : statuses) {
        const pb::StatusResponse& r = s.status;
        FieldsHeader(r.header());
        out_ << "\"Version\" : " << GoQuote(r.version()) << "\n"
             << "\"DBSize\" : " << r.dbsize() << "\n"
             << "\"Leader\" : " << r.leader() << "\n"
             << "\"IsLearner\" : " << (r.islearner() ? "true" : "false") << "\n"
             << "\"RaftIndex\" : " << r.raftindex() << "\n"
             << "\"RaftTerm\" : " << r.raftterm() << "\n"
             << "\"RaftAppliedIndex\" : " << r.raftappliedindex() << "\n"
             << "\"Errors\" : " << GoStringSlice(r.errors()) << "\n"
             << "\"Endpoint\" : " << GoQuote(s.endpoint) << "\n\n";
      }
      break;
  }
}

void Printer::EndpointHealths(const std::vector<EndpointHealth>& healths) {
  switch (format_) {
    case Format::kSimple:
      for (const EndpointHealth& h : healths) {
        if (h.error.empty()) {
          err_ << h.endpoint
               << " is healthy: successfully committed proposal: took = " << GoDuration(h.took)
               << "\n";
        } else {
          err_ << h.endpoint << " is unhealthy: failed to commit proposal: " << h.error << "\n";
        }
      }
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointHealth& h : healths) {
        std::string item = absl::StrCat("{\"endpoint\":", GoJsonString(h.endpoint),
                                        ",\"health\":", h.healthy ? "true" : "false",
                                        ",\"took\":", GoJsonString(GoDuration(h.took)));
        if (!h.error.empty()) absl::StrAppend(&item, ",\"error\":", GoJsonString(h.error));
        items.push_back(item + "}");
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable: {
      std::vector<std::vector<std::string>> rows;
      for (const EndpointHealth& h : healths) {
        rows.push_back({h.endpoint, h.healthy ? "true" : "false", GoDuration(h.took), h.error});
      }
      out_ << RenderTable({"endpoint", "health", "took", "error"}, rows);
      break;
    }
    case Format::kFields:
      for (const EndpointHealth& h : healths) {
        out_ << "\"Endpoint\" : " << GoQuote(h.endpoint) << "\n"
             << "\"Health\" : " << (h.healthy ? "true" : "false") << "\n"
             << "\"Took\" : " << GoDuration(h.took) << "\n"
             << "\"Error\" : " << h.error << "\n\n";
      }
      break;
  }
}

void Printer::EndpointHashKVs(const std::vector<EndpointHashKV>& hashes) {
  std::vector<std::vector<std::string>> rows;
  for (const EndpointHashKV& h : hashes) {
    rows.push_back({h.endpoint, absl::StrCat(h.hash_kv.hash())});
  }
  switch (format_) {
    case Format::kSimple:
      for (const auto& row : rows) out_ << absl::StrJoin(row, ", ") << "\n";
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointHashKV& h : hashes) {
        items.push_back(absl::StrCat("{\"Endpoint\":", GoJsonString(h.endpoint),
                                     ",\"HashKV\":", EtcdJson(h.hash_kv), "}"));
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable:
      out_ << RenderTable({"endpoint", "hash"}, rows);
      break;
    case Format::kFields:
      for (const EndpointHashKV& h : hashes) {
        FieldsHeader(h.hash_kv.header());
        out_ << "\"Endpoint\" : " << GoQuote(h.endpoint) << "\n"
             << "\"Hash\" : " << h.hash_kv.hash() << "\n\n";
      }
      break;
  }
}

absl::Status Printer::Watch(const pb::WatchResponse& r) {
  switch (format_) {
    case Format::kSimple:
      for (const mvccpb::Event& e : r.events()) {
        out_ << mvccpb::Event::EventType_Name(e.type()) << "\n";
        if (e.has_prev_kv()) PrintKV(e.prev_kv(), false);
        PrintKV(e.kv(), false);
      }
      break;
    case Format::kJson: {
      // etcd's clientv3.WatchResponse, as Go's encoding/json prints it.
      std::vector<std::string> events;
      for (const mvccpb::Event& e : r.events()) events.push_back(EtcdJson(e));
      out_ << "{\"Header\":" << EtcdJson(r.header()) << ",\"Events\":"
           << "[" << absl::StrJoin(events, ",") << "]"
           << ",\"CompactRevision\":" << r.compact_revision()
           << ",\"Canceled\":" << (r.canceled() ? "true" : "false")
           << ",\"Created\":" << (r.created() ? "true" : "false") << "}\n";
      break;
    }
    case Format::kFields:
      FieldsHeader(r.header());
      for (const mvccpb::Event& e : r.events()) {
        out_ << "\"Type\" : " << mvccpb::Event::EventType_Name(e.type()) << "\n";
        if (e.has_prev_kv()) FieldsKV("Prev", e.prev_kv());
        FieldsKV("", e.kv());
      }
      break;
    case Format::kTable:
      return Unsupported();
  }
  out_ << std::flush;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Leases and members
// ---------------------------------------------------------------------------------------

namespace {

// etcd's clientv3 lease responses embed *ResponseHeader, so Go's encoding/json flattens the
// header's fields (each omitted when zero) into the response object.
std::string FlatJson(const pb::ResponseHeader& h, const std::vector<std::string>& fields) {
  std::vector<std::string> parts;
  if (h.cluster_id() != 0) parts.push_back(absl::StrCat("\"cluster_id\":", h.cluster_id()));
  if (h.member_id() != 0) parts.push_back(absl::StrCat("\"member_id\":", h.member_id()));
  if (h.revision() != 0) parts.push_back(absl::StrCat("\"revision\":", h.revision()));
  if (h.raft_term() != 0) parts.push_back(absl::StrCat("\"raft_term\":", h.raft_term()));
  parts.insert(parts.end(), fields.begin(), fields.end());
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string LeaseHex(int64_t id) { return absl::StrFormat("%016x", static_cast<uint64_t>(id)); }

}  // namespace

absl::Status Printer::LeaseGrant(const pb::LeaseGrantResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "lease " << LeaseHex(r.id()) << " granted with TTL(" << r.ttl() << "s)\n";
      break;
    case Format::kJson:
      out_ << FlatJson(r.header(),
                       {absl::StrCat("\"ID\":", r.id()), absl::StrCat("\"TTL\":", r.ttl()),
                        absl::StrCat("\"Error\":", GoJsonString(r.error()))})
           << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      out_ << "\"ID\" : " << r.id() << "\n\"TTL\" : " << r.ttl() << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseRevoke(int64_t id, const pb::LeaseRevokeResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "lease " << LeaseHex(id) << " revoked\n";
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseKeepAlive(const pb::LeaseKeepAliveResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "lease " << LeaseHex(r.id()) << " keepalived with TTL(" << r.ttl() << ")\n";
      break;
    case Format::kJson:
      out_ << FlatJson(r.header(),
                       {absl::StrCat("\"ID\":", r.id()), absl::StrCat("\"TTL\":", r.ttl())})
           << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      out_ << "\"ID\" : " << r.id() << "\n\"TTL\" : " << r.ttl() << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseTimeToLive(const pb::LeaseTimeToLiveResponse& r, bool keys) {
  switch (format_) {
    case Format::kSimple: {
      if (r.grantedttl() == 0 && r.ttl() == -1) {
        out_ << "lease " << LeaseHex(r.id()) << " already expired\n";
        break;
      }
      out_ << "lease " << LeaseHex(r.id()) << " granted with TTL(" << r.grantedttl()
           << "s), remaining(" << r.ttl() << "s)";
      if (keys) out_ << ", attached keys([" << absl::StrJoin(r.keys(), " ") << "])";
      out_ << "\n";
      break;
    }
    case Format::kJson: {
      std::vector<std::string> encoded;
      for (const std::string& k : r.keys()) {
        encoded.push_back(absl::StrCat("\"", absl::Base64Escape(k), "\""));
      }
      out_ << FlatJson(r.header(),
                       {absl::StrCat("\"id\":", r.id()), absl::StrCat("\"ttl\":", r.ttl()),
                        absl::StrCat("\"granted-ttl\":", r.grantedttl()),
                        absl::StrCat("\"keys\":",
                                     encoded.empty()
                                         ? "null"
                                         : absl::StrCat("[", absl::StrJoin(encoded, ","), "]"))})
           << "\n";
      break;
    }
    case Format::kFields:
      FieldsHeader(r.header());
      out_ << "\"ID\" : " << r.id() << "\n\"TTL\" : " << r.ttl()
           << "\n\"GrantedTTL\" : " << r.grantedttl() << "\n";
      for (const std::string& k : r.keys()) out_ << "\"Key\" : " << GoQuote(k) << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseLeases(const pb::LeaseLeasesResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "found " << r.leases_size() << " leases\n";
      for (const pb::LeaseStatus& l : r.leases()) out_ << LeaseHex(l.id()) << "\n";
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const pb::LeaseStatus& l : r.leases()) {
        items.push_back(absl::StrCat("{\"id\":", l.id(), "}"));
      }
      out_ << FlatJson(r.header(), {absl::StrCat("\"leases\":[", absl::StrJoin(items, ","), "]")})
           << "\n";
      break;
    }
    case Format::kFields:
      FieldsHeader(r.header());
      for (const pb::LeaseStatus& l : r.leases()) out_ << "\"ID\" : " << l.id() << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

void Printer::MemberList(const pb::MemberListResponse& r) {
  std::vector<std::vector<std::string>> rows;
  for (const pb::Member& m : r.members()) {
    rows.push_back({absl::StrFormat("%x", m.id()), m.name().empty() ? "unstarted" : "started",
                    m.name(), absl::StrJoin(m.peerurls(), ","), absl::StrJoin(m.clienturls(), ","),
                    m.islearner() ? "true" : "false"});
  }
  switch (format_) {
    case Format::kSimple:
      for (const auto& row : rows) out_ << absl::StrJoin(row, ", ") << "\n";
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kTable:
      out_ << RenderTable({"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"},
                          rows);
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      for (const pb::Member& m : r.members()) {
        out_ << "\"ID\" : " << m.id() << "\n\"Name\" : " << GoQuote(m.name()) << "\n";
        for (const std::string& u : m.peerurls()) out_ << "\"PeerURL\" : " << GoQuote(u) << "\n";
        for (const std::string& u : m.clienturls()) {
          out_ << "\"ClientURL\" : " << GoQuote(u) << "\n";
        }
        out_ << "\"IsLearner\" : " << (m.islearner() ? "true" : "false") << "\n\n";
      }
      break;
  }
}

absl::Status Printer::MemberChange(absl::string_view verb, uint64_t member_id,
                                   const pb::ResponseHeader& header, const Message& response) {
  switch (format_) {
    case Format::kSimple:
      out_ << absl::StrFormat("Member %16x %s cluster %16x\n", member_id, verb,
                              header.cluster_id());
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(header);
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::MoveLeader(uint64_t from, uint64_t to, const pb::MoveLeaderResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << absl::StrFormat("Leadership transferred from %x to %x\n", from, to);
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kFields:
    case Format::kTable:
      return MakeFailure(kExitBadFeature,
                         absl::StrCat(format_ == Format::kTable ? "table" : "fields",
                                      " not supported as output format"));
  }
  return absl::OkStatus();
}

absl::Status Printer::Alarm(const pb::AlarmResponse& r) {
  switch (format_) {
    case Format::kSimple:
      // Go's %+v of the message: its compact text form, each field followed by a space.
      for (const pb::AlarmMember& a : r.alarms()) {
        if (a.memberid() != 0) out_ << "memberID:" << a.memberid() << " ";
        if (a.alarm() != pb::NONE) out_ << "alarm:" << pb::AlarmType_Name(a.alarm()) << " ";
        out_ << "\n";
      }
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      for (const pb::AlarmMember& a : r.alarms()) {
        out_ << "\"MemberID\" : " << a.memberid()
             << "\n\"AlarmType\" : " << pb::AlarmType_Name(a.alarm()) << "\n\n";
      }
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::AuthResult(absl::string_view simple, const Message& response,
                                 const pb::ResponseHeader& header, absl::string_view fields) {
  switch (format_) {
    case Format::kSimple:
      out_ << simple;
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(header);
      out_ << fields;
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

std::string RoleGetText(absl::string_view role, const pb::AuthRoleGetResponse& r) {
  std::string out = absl::StrCat("Role ", role, "\n");
  auto range = [](const authpb::Permission& p) {
    std::string line;
    if (p.range_end() != std::string(1, '\0')) {
      line = absl::StrCat("\t[", p.key(), ", ", p.range_end(), ")");
    } else {
      line = absl::StrCat("\t[", p.key(), ", <open ended>");
    }
    if (PrefixEnd(p.key()) == p.range_end()) absl::StrAppend(&line, " (prefix ", p.key(), ")");
    return line + "\n";
  };
  for (const bool write : {false, true}) {
    absl::StrAppend(&out, write ? "KV Write:\n" : "KV Read:\n");
    for (const authpb::Permission& p : r.perm()) {
      const bool matches =
          p.permtype() == authpb::Permission::READWRITE ||
          p.permtype() == (write ? authpb::Permission::WRITE : authpb::Permission::READ);
      if (!matches) continue;
      absl::StrAppend(&out, p.range_end().empty() ? absl::StrCat("\t", p.key(), "\n") : range(p));
    }
  }
  return out;
}

}  // namespace kvd::kvctl
