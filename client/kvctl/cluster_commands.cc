// endpoint status|health|hashkv, member ..., move-leader, alarm, defrag, snapshot save.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/kvctl/commands.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/output.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

namespace {

// The endpoints an endpoint command works on: --endpoints, or with --cluster the client
// URLs of every member.
absl::StatusOr<std::vector<std::string>> EndpointsOf(Context& ctx, bool cluster) {
  if (!cluster) return ctx.globals().endpoints;
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::MemberListResponse> members = (*c)->MemberList(pb::MemberListRequest());
  if (!members.ok()) {
    return MakeFailure(kExitError,
                       absl::StrCat("failed to fetch endpoints from etcd cluster member list: ",
                                    ErrorText(members.status())));
  }
  std::vector<std::string> endpoints;
  for (const pb::Member& m : members->members()) {
    endpoints.insert(endpoints.end(), m.clienturls().begin(), m.clienturls().end());
  }
  return endpoints;
}

absl::Status MemberIdArg(const std::vector<std::string>& args, uint64_t* id) {
  if (args.size() != 1) return MakeFailure(kExitBadArgs, "member ID is not provided");
  if (ParseHexUint64(args[0], id)) return absl::OkStatus();
  return MakeFailure(kExitBadArgs,
                     absl::StrCat("bad member ID arg (strconv.ParseUint: parsing \"", args[0],
                                  "\": invalid syntax), expecting ID in Hex"));
}

}  // namespace

// Like etcdctl, a failed endpoint is reported on its own line and the command exits with
// kExitError at the end without an "Error:" line (the failure's message is empty).
absl::Status RunEndpointStatus(Context& ctx, bool cluster) {
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsOf(ctx, cluster);
  if (!endpoints.ok()) return endpoints.status();
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  std::vector<EndpointStatus> statuses;
  bool failed = false;
  for (const std::string& ep : *endpoints) {
    absl::StatusOr<pb::StatusResponse> status = (*c)->Status(ep);
    if (!status.ok()) {
      failed = true;
      ctx.io().err << "Failed to get the status of endpoint " << ep << " ("
                   << ErrorText(status.status()) << ")\n";
      continue;
    }
    statuses.push_back({ep, *std::move(status)});
  }
  ctx.printer().EndpointStatuses(statuses);
  if (failed) return MakeFailure(kExitError, "");
  return absl::OkStatus();
}

absl::Status RunEndpointHealth(Context& ctx, bool cluster) {
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsOf(ctx, cluster);
  if (!endpoints.ok()) return endpoints.status();
  // Each endpoint gets its own client and is checked in parallel: a linearizable read of
  // the key "health" must succeed (permission denied also proves the member is serving).
  std::vector<EndpointHealth> healths(endpoints->size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < endpoints->size(); ++i) {
    threads.emplace_back([&ctx, &healths, &endpoints, i] {
      EndpointHealth& h = healths[i];
      h.endpoint = (*endpoints)[i];
      absl::StatusOr<std::unique_ptr<client::Client>> c =
          client::Client::Create(ctx.ClientOptions({h.endpoint}));
      if (!c.ok()) {
        h.error = std::string(c.status().message());
        return;
      }
      const absl::Time start = absl::Now();
      pb::RangeRequest request;
      request.set_key("health");
      absl::StatusOr<pb::RangeResponse> response = (*c)->Range(request);
      h.took = absl::Now() - start;
      if (response.ok() || response.status().code() == absl::StatusCode::kPermissionDenied) {
        h.healthy = true;
      } else {
        h.error = ErrorText(response.status());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ctx.printer().EndpointHealths(healths);
  for (const EndpointHealth& h : healths) {
    if (!h.healthy) return MakeFailure(kExitError, "unhealthy cluster");
  }
  return absl::OkStatus();
}

absl::Status RunEndpointHashKV(Context& ctx, bool cluster, int64_t revision) {
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsOf(ctx, cluster);
  if (!endpoints.ok()) return endpoints.status();
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  std::vector<EndpointHashKV> hashes;
  absl::Status last_error;
  for (const std::string& ep : *endpoints) {
    absl::StatusOr<pb::HashKVResponse> hash = (*c)->HashKV(ep, revision);
    if (!hash.ok()) {
      last_error = hash.status();
      ctx.io().err << "Failed to get the hash of endpoint " << ep << " ("
                   << ErrorText(hash.status()) << ")\n";
      continue;
    }
    hashes.push_back({ep, *std::move(hash)});
  }
  ctx.printer().EndpointHashKVs(hashes);
  return last_error;
}

absl::Status RunMember(Context& ctx, const std::vector<std::string>& positional,
                       const MemberFlags& flags) {
  const std::string sub = positional.empty() ? "" : positional[0];
  const std::vector<std::string> args(positional.begin() + (positional.empty() ? 0 : 1),
                                      positional.end());
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  Printer printer = ctx.printer();
  uint64_t id = 0;
  if (sub == "list") {
    absl::StatusOr<pb::MemberListResponse> r = (*c)->MemberList(pb::MemberListRequest());
    if (!r.ok()) return r.status();
    printer.MemberList(*r);
    return absl::OkStatus();
  }
  if (sub == "add") {
    if (args.empty()) return MakeFailure(kExitBadArgs, "member name not provided");
    if (args.size() > 1) {
      std::string error = "too many arguments";
      for (const std::string& a : args) {
        if (absl::StartsWith(absl::AsciiStrToLower(a), "http")) {
          absl::StrAppend(&error, ", did you mean --peer-urls=", a);
        }
      }
      return MakeFailure(kExitBadArgs, error);
    }
    if (flags.peer_urls.empty()) return MakeFailure(kExitBadArgs, "member peer urls not provided");
    pb::MemberAddRequest request;
    for (absl::string_view u : absl::StrSplit(flags.peer_urls, ','))
      request.add_peerurls(std::string(u));
    request.set_islearner(flags.learner);
    absl::StatusOr<pb::MemberAddResponse> r = (*c)->MemberAdd(request);
    if (!r.ok()) return r.status();
    if (absl::Status s = printer.MemberChange("added to", r->member().id(), r->header(), *r);
        !s.ok()) {
      return s;
    }
    if (ctx.format() == Format::kSimple) {
      // What the new member needs to join, in etcd's environment variables.
      std::vector<std::string> conf;
      for (const pb::Member& m : r->members()) {
        for (const std::string& u : m.peerurls()) {
          conf.push_back(absl::StrCat(m.id() == r->member().id() ? args[0] : m.name(), "=", u));
        }
      }
      ctx.io().out << "\nETCD_NAME=" << GoQuote(args[0]) << "\n"
                   << "ETCD_INITIAL_CLUSTER=" << GoQuote(absl::StrJoin(conf, ",")) << "\n"
                   << "ETCD_INITIAL_ADVERTISE_PEER_URLS=" << GoQuote(flags.peer_urls) << "\n"
                   << "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n";
    }
    return absl::OkStatus();
  }
  if (sub == "remove" || sub == "promote" || sub == "update") {
    if (absl::Status s = MemberIdArg(args, &id); !s.ok()) return s;
    if (sub == "remove") {
      absl::StatusOr<pb::MemberRemoveResponse> r = (*c)->MemberRemove(id);
      if (!r.ok()) return r.status();
      return printer.MemberChange("removed from", id, r->header(), *r);
    }
    if (sub == "promote") {
      absl::StatusOr<pb::MemberPromoteResponse> r = (*c)->MemberPromote(id);
      if (!r.ok()) return r.status();
      return printer.MemberChange("promoted in", id, r->header(), *r);
    }
    if (flags.peer_urls.empty()) return MakeFailure(kExitBadArgs, "member peer urls not provided");
    pb::MemberUpdateRequest request;
    request.set_id(id);
    for (absl::string_view u : absl::StrSplit(flags.peer_urls, ','))
      request.add_peerurls(std::string(u));
    absl::StatusOr<pb::MemberUpdateResponse> r = (*c)->MemberUpdate(request);
    if (!r.ok()) return r.status();
    return printer.MemberChange("updated in", id, r->header(), *r);
  }
  return MakeFailure(kExitBadArgs, "usage: kvctl member list|add|remove|update|promote ...");
}

// Finds the leader among the endpoints (by asking each for its status) and asks it to
// transfer leadership, as etcdctl does.
absl::Status RunMoveLeader(Context& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1) return MakeFailure(kExitBadArgs, "move-leader command needs 1 argument");
  uint64_t target = 0;
  if (!ParseHexUint64(args[0], &target)) {
    return MakeFailure(
        kExitBadArgs, absl::StrCat("strconv.ParseUint: parsing \"", args[0], "\": invalid syntax"));
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  for (const std::string& ep : ctx.globals().endpoints) {
    absl::StatusOr<pb::StatusResponse> status = (*c)->Status(ep);
    if (!status.ok()) return status.status();
    if (status->header().member_id() != status->leader()) continue;
    absl::StatusOr<pb::MoveLeaderResponse> r = (*c)->MoveLeader(ep, target);
    if (!r.ok()) return r.status();
    return ctx.printer().MoveLeader(status->leader(), target, *r);
  }
  return MakeFailure(kExitBadArgs, absl::StrCat("no leader endpoint given at [",
                                                absl::StrJoin(ctx.globals().endpoints, " "), "]"));
}

absl::Status RunAlarm(Context& ctx, const std::vector<std::string>& positional) {
  const std::string sub = positional.empty() ? "" : positional[0];
  if (sub != "list" && sub != "disarm") {
    return MakeFailure(kExitBadArgs, "usage: kvctl alarm list|disarm");
  }
  if (positional.size() > 1) {
    return MakeFailure(kExitBadArgs, absl::StrCat("alarm ", sub, " command accepts no arguments"));
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  pb::AlarmRequest list;
  list.set_action(pb::AlarmRequest::GET);
  absl::StatusOr<pb::AlarmResponse> alarms = (*c)->Alarm(list);
  if (!alarms.ok()) return alarms.status();
  if (sub == "list") return ctx.printer().Alarm(*alarms);
  // Disarm every raised alarm, one request each (as etcd's clientv3 does).
  pb::AlarmResponse disarmed;
  for (const pb::AlarmMember& a : alarms->alarms()) {
    pb::AlarmRequest request;
    request.set_action(pb::AlarmRequest::DEACTIVATE);
    request.set_memberid(a.memberid());
    request.set_alarm(a.alarm());
    absl::StatusOr<pb::AlarmResponse> r = (*c)->Alarm(request);
    if (!r.ok()) return r.status();
    disarmed.mutable_alarms()->MergeFrom(r->alarms());
  }
  return ctx.printer().Alarm(disarmed);
}

// Saves a snapshot of the one endpoint's backend to `path` (written to path.part, synced,
// then renamed, so `path` is either absent or complete).
absl::Status RunSnapshot(Context& ctx, const std::vector<std::string>& positional,
                         bool timeout_given) {
  if (positional.empty() || positional[0] != "save") {
    return MakeFailure(kExitBadArgs, "usage: kvctl snapshot save FILE");
  }
  if (positional.size() != 2) {
    return MakeFailure(kExitBadArgs, "snapshot save expects one argument");
  }
  const std::vector<std::string>& endpoints = ctx.globals().endpoints;
  if (endpoints.size() != 1) {
    return MakeFailure(kExitInterrupted,
                       absl::StrCat("snapshot must be requested to one selected node, not "
                                    "multiple [",
                                    absl::StrJoin(endpoints, " "), "]"));
  }
  const std::string path = positional[1];
  const std::string part = path + ".part";
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  const int fd = open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);  // as etcdctl: 0600
  std::FILE* file = fd >= 0 ? fdopen(fd, "wb") : nullptr;
  if (file == nullptr) {
    return MakeFailure(kExitInterrupted,
                       absl::StrCat("could not open ", part, " (", std::strerror(errno), ")"));
  }
  // Like etcdctl: no time limit unless --command-timeout was given.
  const absl::Duration timeout =
      timeout_given ? ctx.globals().command_timeout : absl::InfiniteDuration();
  absl::Status status =
      (*c)->Snapshot(endpoints[0], timeout, [&](const pb::SnapshotResponse& chunk) {
        if (std::fwrite(chunk.blob().data(), 1, chunk.blob().size(), file) != chunk.blob().size()) {
          return absl::DataLossError(absl::StrCat("write ", part, ": ", std::strerror(errno)));
        }
        return absl::OkStatus();
      });
  if (status.ok() && (std::fflush(file) != 0 || fsync(fileno(file)) != 0)) {
    status = absl::DataLossError(absl::StrCat("sync ", part, ": ", std::strerror(errno)));
  }
  std::fclose(file);
  if (status.ok() && std::rename(part.c_str(), path.c_str()) != 0) {
    status = absl::DataLossError(absl::StrCat("rename ", part, ": ", std::strerror(errno)));
  }
  if (!status.ok()) {
    std::remove(part.c_str());
    return MakeFailure(kExitInterrupted, ErrorText(status));
  }
  ctx.io().out << "Snapshot saved at " << path << "\n";
  return absl::OkStatus();
}

// Defragments each endpoint; failures are reported per endpoint, then exit kExitError.
absl::Status RunDefrag(Context& ctx, bool cluster) {
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsOf(ctx, cluster);
  if (!endpoints.ok()) return endpoints.status();
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  bool failed = false;
  for (const std::string& ep : *endpoints) {
    absl::StatusOr<pb::DefragmentResponse> r = (*c)->Defragment(ep);
    if (!r.ok()) {
      failed = true;
      ctx.io().err << "Failed to defragment etcd member[" << ep << "] (" << ErrorText(r.status())
                   << ")\n";
    } else {
      ctx.io().out << "Finished defragmenting etcd member[" << ep << "]\n";
    }
  }
  return failed ? MakeFailure(kExitError, "") : absl::OkStatus();
}

}  // namespace kvd::kvctl
