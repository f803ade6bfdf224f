#include "client/kvctl/kvctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/flags.h"
#include "client/kvctl/output.h"
#include "client/kvctl/requests.h"
#include "client/kvctl/txn_parser.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

namespace {

constexpr absl::string_view kVersion = "0.1.0";

constexpr absl::string_view kUsage =
    R"(kvctl: a command line client for kvd and etcd (etcdctl v3 syntax)

Usage:
  kvctl [global flags] <command> [flags] [arguments]

Commands:
  put KEY [VALUE]             puts a key (VALUE from stdin if omitted)
        --prev-kv --lease=HEXID --ignore-value --ignore-lease
  get KEY [RANGE_END]         gets a key or a range of keys
        --prefix --from-key --rev=N --limit=N --keys-only --count-only
        --print-value-only --order=ASCEND|DESCEND
        --sort-by=CREATE|KEY|MODIFY|VALUE|VERSION --consistency=l|s
  del KEY [RANGE_END]         deletes a key or a range of keys
        --prefix --from-key --prev-kv
  txn [-i]                    runs a transaction read from stdin: compares, empty line,
                              success requests, empty line, failure requests, empty line
  compaction REV [--physical] compacts the event history (alias: compact)
  endpoint status|health|hashkv [--cluster] [--rev=N]
                              per-endpoint status, health, or KV hash
  watch KEY [RANGE_END]       prints events until interrupted
        --prefix --rev=N --prev-kv
  lease grant TTL             grants a lease (ids are hexadecimal, as in etcdctl)
  lease revoke ID             revokes a lease and deletes its keys
  lease timetolive ID [--keys]
  lease list
  lease keep-alive [--once] ID
  member list                 lists the cluster's members
  member add NAME --peer-urls=URL,... [--learner]
  member remove|promote ID    (member ids are hexadecimal)
  member update ID --peer-urls=URL,...
  move-leader ID              transfers leadership (to be run against the leader's endpoint)
  alarm list|disarm           lists or clears alarms (e.g. NOSPACE)
  defrag [--cluster]          defragments each endpoint's backend
  snapshot save FILE          saves the one endpoint's backend snapshot to FILE
  auth enable|disable|status
  user add NAME[:PASSWORD] [--new-user-password=P] [--no-password] [--interactive=false]
  user delete|get [--detail]|passwd NAME, user list, user grant-role|revoke-role USER ROLE
  role add|delete|get NAME, role list
  role grant-permission ROLE read|write|readwrite KEY [RANGE_END] [--prefix|--from-key]
  role revoke-permission ROLE KEY [RANGE_END] [--prefix|--from-key]
  version                     prints the version

Global flags:
  --endpoints=HOST:PORT,...   gRPC endpoints (default 127.0.0.1:2379)
  --dial-timeout=DURATION     connection timeout (default 2s)
  --command-timeout=DURATION  timeout of one command (default 5s)
  -w, --write-out=FORMAT      simple, json, fields or table (default simple)
  --hex                       print keys and values as hex escapes
  --user=NAME[:PASSWORD]      authenticate (password read from stdin if not given)
  --password=PASSWORD         password for --user
  -h, --help                  prints this help
)";

struct Globals {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  absl::Duration dial_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(5);
  std::string write_out = "simple";
  bool hex = false;
  bool help = false;
  std::string user;  // "name" or "name:password"
  std::string password;

  void Register(FlagSet& flags) {
    flags.StringList("endpoints", &endpoints);
    flags.Duration("dial-timeout", &dial_timeout);
    flags.Duration("command-timeout", &command_timeout);
    flags.String("write-out", 'w', &write_out);
    flags.Bool("hex", '\0', &hex);
    flags.Bool("help", 'h', &help);
    flags.String("user", '\0', &user);
    flags.String("password", '\0', &password);
  }
};

// Global flags that may also come from the environment, as ETCDCTL_<NAME>.
constexpr absl::string_view kEnvFlags[] = {
    "endpoints", "dial-timeout", "command-timeout", "write-out", "hex", "user", "password"};

// What every command needs: the parsed global flags, the streams, and a client.
class Context {
 public:
  Context(Globals globals, Io& io) : globals_(std::move(globals)), io_(io) {}

  absl::Status Init() {
    for (std::string& ep : globals_.endpoints) ep = std::string(absl::StripAsciiWhitespace(ep));
    // --user NAME:PASSWORD, or --user NAME --password PASSWORD, or a password on stdin.
    if (!globals_.user.empty() && globals_.password.empty()) {
      const size_t colon = globals_.user.find(':');
      if (colon != std::string::npos) {
        globals_.password = globals_.user.substr(colon + 1);
        globals_.user.resize(colon);
      } else {
        io_.err << "Password: " << std::flush;
        std::getline(io_.in, globals_.password);
      }
    }
    return ParseFormat(globals_.write_out, &format_);
  }

  const Globals& globals() const { return globals_; }
  Io& io() { return io_; }
  Format format() const { return format_; }
  Printer printer() { return Printer(format_, globals_.hex, io_.out, io_.err); }

  client::Options ClientOptions(std::vector<std::string> endpoints) const {
    client::Options options;
    options.endpoints = std::move(endpoints);
    options.dial_timeout = globals_.dial_timeout;
    options.request_timeout = globals_.command_timeout;
    options.username = globals_.user;
    options.password = globals_.password;
    return options;
  }

  absl::StatusOr<client::Client*> Client() {
    if (client_ == nullptr) {
      absl::StatusOr<std::unique_ptr<client::Client>> c =
          client::Client::Create(ClientOptions(globals_.endpoints));
      if (!c.ok()) return MakeFailure(kExitBadArgs, c.status().message());
      client_ = *std::move(c);
    }
    return client_.get();
  }

 private:
  Globals globals_;
  Io& io_;
  Format format_ = Format::kSimple;
  std::unique_ptr<client::Client> client_;
};

std::string ReadAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status RunPut(Context& ctx, const std::vector<std::string>& args, const PutFlags& flags) {
  absl::StatusOr<pb::PutRequest> request =
      BuildPut(args, flags, [&] { return ReadAll(ctx.io().in); });
  if (!request.ok()) return request.status();
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::PutResponse> response = (*c)->Put(*request);
  if (!response.ok()) return response.status();
  return ctx.printer().Put(*response);
}

absl::Status RunGet(Context& ctx, const std::vector<std::string>& args, const GetFlags& flags) {
  absl::StatusOr<pb::RangeRequest> request = BuildRange(args, flags);
  if (!request.ok()) return request.status();
  if (flags.print_value_only && ctx.format() != Format::kSimple) {
    return MakeFailure(kExitBadArgs, "print-value-only is only for `--write-out=simple`");
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::RangeResponse> response = (*c)->Range(*request);
  if (!response.ok()) return response.status();
  if (flags.count_only && ctx.format() == Format::kSimple) {
    ctx.io().out << response->count() << "\n";
    return absl::OkStatus();
  }
  return ctx.printer().Get(*response, flags.print_value_only);
}

absl::Status RunDel(Context& ctx, const std::vector<std::string>& args, const DelFlags& flags) {
  absl::StatusOr<pb::DeleteRangeRequest> request = BuildDelete(args, flags);
  if (!request.ok()) return request.status();
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::DeleteRangeResponse> response = (*c)->DeleteRange(*request);
  if (!response.ok()) return response.status();
  return ctx.printer().Del(*response);
}

absl::Status RunTxn(Context& ctx, const std::vector<std::string>& args, bool interactive) {
  if (!args.empty()) return MakeFailure(kExitBadArgs, "txn command does not accept argument");
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::TxnRequest> request =
      ReadTxn(ctx.io().in, interactive ? &ctx.io().out : nullptr);
  if (!request.ok()) return request.status();
  absl::StatusOr<pb::TxnResponse> response = (*c)->Txn(*request);
  if (!response.ok()) return response.status();
  return ctx.printer().Txn(*response);
}

absl::Status RunCompaction(Context& ctx, const std::vector<std::string>& args, bool physical) {
  if (args.size() != 1) return MakeFailure(kExitBadArgs, "compaction command needs 1 argument");
  int64_t revision = 0;
  if (!absl::SimpleAtoi(args[0], &revision)) {
    return MakeFailure(kExitError,
                       absl::StrCat("strconv.ParseInt: parsing \"", args[0], "\": invalid syntax"));
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  pb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(physical);
  absl::StatusOr<pb::CompactionResponse> response = (*c)->Compact(request);
  if (!response.ok()) return response.status();
  ctx.io().out << "compacted revision " << revision << "\n";
  return absl::OkStatus();
}

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

struct WatchFlags {
  bool prefix = false;
  int64_t rev = 0;
  bool prev_kv = false;
  bool interactive = false;
  void Register(FlagSet& flags) {
    flags.Bool("prefix", '\0', &prefix);
    flags.Int64("rev", &rev);
    flags.Bool("prev-kv", '\0', &prev_kv);
    flags.Bool("interactive", 'i', &interactive);
  }
};

// Prints events until the server cancels the watch (exit kExitInterrupted, as etcdctl) or
// the stream breaks.
absl::Status RunWatch(Context& ctx, const std::vector<std::string>& args, const WatchFlags& flags) {
  if (flags.interactive) {
    return MakeFailure(kExitBadFeature, "interactive watch is not supported by kvctl");
  }
  if (args.empty()) return MakeFailure(kExitBadArgs, "bad number of arguments");
  if (args.size() > 2) {
    return MakeFailure(kExitBadArgs, "bad number of arguments (kvctl runs no exec-command)");
  }
  pb::WatchCreateRequest create;
  std::string key = args[0];
  if (args.size() == 2) {
    if (flags.prefix) {
      return MakeFailure(kExitBadArgs, "`range_end` and `--prefix` are mutually exclusive");
    }
    create.set_range_end(args[1]);
  }
  if (flags.prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      create.set_range_end(std::string(1, '\0'));
    } else {
      create.set_range_end(PrefixRangeEnd(key));
    }
  }
  create.set_key(key);
  create.set_start_revision(flags.rev);
  create.set_prev_kv(flags.prev_kv);
  if (ctx.format() == Format::kTable) {
    return MakeFailure(kExitBadFeature, "table not supported as output format");
  }

  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<std::unique_ptr<client::WatchStream>> stream = (*c)->Watch(create);
  if (!stream.ok()) return stream.status();
  Printer printer = ctx.printer();
  while (true) {
    absl::StatusOr<pb::WatchResponse> r = (*stream)->Next();
    if (!r.ok()) {
      ctx.io().err << "watch was canceled (" << ErrorText(r.status()) << ")\n";
      break;
    }
    if (r->created() && r->events_size() == 0 && !r->canceled()) continue;
    if (r->canceled()) {
      std::string why = r->cancel_reason();
      if (r->compact_revision() != 0) {
        why = "etcdserver: mvcc: required revision has been compacted";
      } else if (why.empty()) {
        why = "etcdserver: mvcc: required revision is a future revision";
      }
      ctx.io().err << "watch was canceled (" << why << ")\n";
    } else if (r->events_size() == 0 && r->compact_revision() == 0) {
      ctx.io().out << "progress notify: " << r->header().revision() << "\n";
    }
    if (absl::Status s = printer.Watch(*r); !s.ok()) return s;
    if (r->canceled()) break;
  }
  return MakeFailure(kExitInterrupted, "watch is canceled by the server");
}

absl::Status LeaseIdArg(const std::string& arg, int64_t* id) {
  if (ParseHexInt64(arg, id)) return absl::OkStatus();
  return MakeFailure(kExitBadArgs, absl::StrCat("bad lease ID arg (strconv.ParseInt: parsing \"",
                                                arg, "\": invalid syntax), expecting ID in Hex"));
}

absl::Status RunLease(Context& ctx, const std::vector<std::string>& positional, bool keys,
                      bool once) {
  const std::string sub = positional.empty() ? "" : positional[0];
  const std::vector<std::string> args(positional.begin() + (positional.empty() ? 0 : 1),
                                      positional.end());
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  Printer printer = ctx.printer();
  int64_t id = 0;
  if (sub == "grant") {
    if (args.size() != 1)
      return MakeFailure(kExitBadArgs, "lease grant command needs TTL argument");
    int64_t ttl = 0;
    if (!absl::SimpleAtoi(args[0], &ttl)) {
      return MakeFailure(kExitBadArgs, absl::StrCat("bad TTL (strconv.ParseInt: parsing \"",
                                                    args[0], "\": invalid syntax)"));
    }
    pb::LeaseGrantRequest request;
    request.set_ttl(ttl);
    absl::StatusOr<pb::LeaseGrantResponse> r = (*c)->LeaseGrant(request);
    if (!r.ok()) {
      return MakeFailure(kExitError,
                         absl::StrCat("failed to grant lease (", ErrorText(r.status()), ")"));
    }
    return printer.LeaseGrant(*r);
  }
  if (sub == "revoke") {
    if (args.size() != 1) return MakeFailure(kExitBadArgs, "lease revoke command needs 1 argument");
    if (absl::Status s = LeaseIdArg(args[0], &id); !s.ok()) return s;
    absl::StatusOr<pb::LeaseRevokeResponse> r = (*c)->LeaseRevoke(id);
    if (!r.ok()) {
      return MakeFailure(kExitError,
                         absl::StrCat("failed to revoke lease (", ErrorText(r.status()), ")"));
    }
    return printer.LeaseRevoke(id, *r);
  }
  if (sub == "timetolive") {
    if (args.size() != 1) {
      return MakeFailure(kExitBadArgs, "lease timetolive command needs lease ID as argument");
    }
    if (absl::Status s = LeaseIdArg(args[0], &id); !s.ok()) return s;
    pb::LeaseTimeToLiveRequest request;
    request.set_id(id);
    request.set_keys(keys);
    absl::StatusOr<pb::LeaseTimeToLiveResponse> r = (*c)->LeaseTimeToLive(request);
    if (!r.ok()) return MakeFailure(kExitBadConnection, ErrorText(r.status()));
    return printer.LeaseTimeToLive(*r, keys);
  }
  if (sub == "list") {
    absl::StatusOr<pb::LeaseLeasesResponse> r = (*c)->LeaseLeases();
    if (!r.ok()) return MakeFailure(kExitBadConnection, ErrorText(r.status()));
    return printer.LeaseLeases(*r);
  }
  if (sub == "keep-alive") {
    if (args.size() != 1) {
      return MakeFailure(kExitBadArgs, "lease keep-alive command needs lease ID as argument");
    }
    if (absl::Status s = LeaseIdArg(args[0], &id); !s.ok()) return s;
    if (once) {
      absl::StatusOr<pb::LeaseKeepAliveResponse> r = (*c)->LeaseKeepAliveOnce(id);
      if (!r.ok()) return MakeFailure(kExitBadConnection, ErrorText(r.status()));
      return printer.LeaseKeepAlive(*r);
    }
    // Renew every third of the TTL until the lease is gone (like clientv3's KeepAlive);
    // connection errors are retried.
    while (true) {
      absl::StatusOr<pb::LeaseKeepAliveResponse> r = (*c)->LeaseKeepAliveOnce(id);
      if (!r.ok() && r.status().code() == absl::StatusCode::kNotFound) break;
      absl::Duration wait = absl::Milliseconds(500);
      if (r.ok()) {
        if (absl::Status s = printer.LeaseKeepAlive(*r); !s.ok()) return s;
        ctx.io().out << std::flush;
        wait = std::max(wait, absl::Seconds(r->ttl()) / 3);
      }
      absl::SleepFor(wait);
    }
    if (ctx.format() == Format::kSimple) {
      ctx.io().out << "lease " << absl::StrFormat("%016x", static_cast<uint64_t>(id))
                   << " expired or revoked.\n";
    }
    return absl::OkStatus();
  }
  return MakeFailure(kExitBadArgs,
                     "usage: kvctl lease grant|revoke|timetolive|list|keep-alive ...");
}

struct MemberFlags {
  std::string peer_urls;
  bool learner = false;
  void Register(FlagSet& flags) {
    flags.String("peer-urls", '\0', &peer_urls);
    flags.Bool("learner", '\0', &learner);
  }
};

absl::Status MemberIdArg(const std::vector<std::string>& args, uint64_t* id) {
  if (args.size() != 1) return MakeFailure(kExitBadArgs, "member ID is not provided");
  if (ParseHexUint64(args[0], id)) return absl::OkStatus();
  return MakeFailure(kExitBadArgs,
                     absl::StrCat("bad member ID arg (strconv.ParseUint: parsing \"", args[0],
                                  "\": invalid syntax), expecting ID in Hex"));
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

struct AuthFlags {
  // user
  std::string new_user_password;
  bool interactive = true;
  bool no_password = false;
  bool detail = false;
  // role
  bool prefix = false;
  bool from_key = false;
  void Register(FlagSet& flags) {
    flags.String("new-user-password", '\0', &new_user_password);
    flags.Bool("interactive", '\0', &interactive);
    flags.Bool("no-password", '\0', &no_password);
    flags.Bool("detail", '\0', &detail);
    flags.Bool("prefix", '\0', &prefix);
    flags.Bool("from-key", '\0', &from_key);
  }
};

absl::Status RunAuth(Context& ctx, const std::vector<std::string>& positional) {
  const std::string sub = positional.empty() ? "" : positional[0];
  if (sub != "enable" && sub != "disable" && sub != "status") {
    return MakeFailure(kExitBadArgs, "usage: kvctl auth enable|disable|status");
  }
  if (positional.size() > 1) {
    return MakeFailure(kExitBadArgs,
                       absl::StrCat("auth ", sub, " command does not accept any arguments"));
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  if (sub == "status") {
    absl::StatusOr<pb::AuthStatusResponse> r = (*c)->AuthStatus();
    if (!r.ok()) return r.status();
    return ctx.printer().AuthResult(
        absl::StrCat("Authentication Status: ", r->enabled() ? "true" : "false",
                     "\nAuthRevision: ", r->authrevision(), "\n"),
        *r, r->header());
  }
  if (sub == "disable") {
    absl::StatusOr<pb::AuthDisableResponse> r = (*c)->AuthDisable();
    if (!r.ok()) return r.status();
    ctx.io().out << "Authentication Disabled\n";
    return absl::OkStatus();
  }
  // Like etcdctl: create the root role and grant it to root if that is what is missing.
  while (true) {
    absl::StatusOr<pb::AuthEnableResponse> r = (*c)->AuthEnable();
    if (r.ok()) break;
    if (r.status().message() != "etcdserver: root user does not have root role") {
      return r.status();
    }
    absl::StatusOr<pb::AuthRoleAddResponse> role = (*c)->RoleAdd("root");
    if (!role.ok()) return role.status();
    absl::StatusOr<pb::AuthUserGrantRoleResponse> grant = (*c)->UserGrantRole("root", "root");
    if (!grant.ok()) return grant.status();
  }
  ctx.io().out << "Authentication Enabled\n";
  return absl::OkStatus();
}

// Reads a new user's password: from stdin, one line (etcdctl reads the terminal without
// echo when interactive; kvctl reads stdin either way).
absl::StatusOr<std::string> ReadNewPassword(Context& ctx, const std::string& name,
                                            bool interactive) {
  std::string password;
  if (interactive) ctx.io().err << "Password of " << name << ": " << std::flush;
  std::getline(ctx.io().in, password);
  if (interactive && password.empty()) return MakeFailure(kExitBadArgs, "empty password");
  return password;
}

absl::Status RunUser(Context& ctx, const std::vector<std::string>& positional,
                     const AuthFlags& flags) {
  const std::string sub = positional.empty() ? "" : positional[0];
  const std::vector<std::string> args(positional.begin() + (positional.empty() ? 0 : 1),
                                      positional.end());
  auto need = [&](size_t n, absl::string_view message) {
    return args.size() == n ? absl::OkStatus() : MakeFailure(kExitBadArgs, message);
  };
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  Printer printer = ctx.printer();
  if (sub == "add") {
    if (absl::Status s = need(1, "user add command requires user name as its argument"); !s.ok()) {
      return s;
    }
    pb::AuthUserAddRequest request;
    std::string name = args[0];
    std::string password;
    if (flags.no_password) {
      request.mutable_options()->set_no_password(true);
    } else if (!flags.new_user_password.empty()) {
      password = flags.new_user_password;
    } else if (const size_t colon = name.find(':'); colon != std::string::npos) {
      password = name.substr(colon + 1);
      name.resize(colon);
      if (name.empty()) return MakeFailure(kExitBadArgs, "empty user name is not allowed");
    } else {
      absl::StatusOr<std::string> read = ReadNewPassword(ctx, name, flags.interactive);
      if (!read.ok()) return read.status();
      password = *read;
    }
    request.set_name(name);
    request.set_password(password);
    absl::StatusOr<pb::AuthUserAddResponse> r = (*c)->UserAdd(request);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("User ", name, " created\n"), *r, r->header());
  }
  if (sub == "delete") {
    if (absl::Status s = need(1, "user delete command requires user name as its argument");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<pb::AuthUserDeleteResponse> r = (*c)->UserDelete(args[0]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("User ", args[0], " deleted\n"), *r, r->header());
  }
  if (sub == "get") {
    if (absl::Status s = need(1, "user get command requires user name as its argument"); !s.ok()) {
      return s;
    }
    absl::StatusOr<pb::AuthUserGetResponse> r = (*c)->UserGet(args[0]);
    if (!r.ok()) return r.status();
    if (flags.detail && ctx.format() == Format::kSimple) {
      ctx.io().out << "User: " << args[0] << "\n";
      for (const std::string& role : r->roles()) {
        absl::StatusOr<pb::AuthRoleGetResponse> perms = (*c)->RoleGet(role);
        if (!perms.ok()) return perms.status();
        ctx.io().out << "\n" << RoleGetText(role, *perms);
      }
      return absl::OkStatus();
    }
    std::string simple = absl::StrCat("User: ", args[0], "\nRoles:");
    std::string fields = "\"Roles\" :";
    for (const std::string& role : r->roles()) {
      absl::StrAppend(&simple, " ", role);
      absl::StrAppend(&fields, " ", GoQuote(role));
    }
    return printer.AuthResult(simple + "\n", *r, r->header(), fields + "\n");
  }
  if (sub == "list") {
    if (absl::Status s = need(0, "user list command requires no arguments"); !s.ok()) return s;
    absl::StatusOr<pb::AuthUserListResponse> r = (*c)->UserList();
    if (!r.ok()) return r.status();
    std::string simple, fields = "\"Users\" :";
    for (const std::string& user : r->users()) {
      absl::StrAppend(&simple, user, "\n");
      absl::StrAppend(&fields, " ", GoQuote(user));
    }
    return printer.AuthResult(simple, *r, r->header(), fields + "\n");
  }
  if (sub == "passwd") {
    if (absl::Status s = need(1, "user passwd command requires user name as its argument");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::string> password = ReadNewPassword(ctx, args[0], flags.interactive);
    if (!password.ok()) return password.status();
    absl::StatusOr<pb::AuthUserChangePasswordResponse> r =
        (*c)->UserChangePassword(args[0], *password);
    if (!r.ok()) return r.status();
    return printer.AuthResult("Password updated\n", *r, r->header());
  }
  if (sub == "grant-role" || sub == "revoke-role") {
    const bool grant = sub == "grant-role";
    if (absl::Status s = need(2, grant ? "user grant command requires user name and role name "
                                         "as its argument"
                                       : "user revoke-role requires user name and role name as "
                                         "its argument");
        !s.ok()) {
      return s;
    }
    if (grant) {
      absl::StatusOr<pb::AuthUserGrantRoleResponse> r = (*c)->UserGrantRole(args[0], args[1]);
      if (!r.ok()) return r.status();
      return printer.AuthResult(
          absl::StrCat("Role ", args[1], " is granted to user ", args[0], "\n"), *r, r->header());
    }
    absl::StatusOr<pb::AuthUserRevokeRoleResponse> r = (*c)->UserRevokeRole(args[0], args[1]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(
        absl::StrCat("Role ", args[1], " is revoked from user ", args[0], "\n"), *r, r->header());
  }
  return MakeFailure(kExitBadArgs,
                     "usage: kvctl user add|delete|get|list|passwd|grant-role|revoke-role ...");
}

// The [key, range_end) of a role permission from KEY [RANGE_END] and --prefix/--from-key.
absl::Status PermRange(const std::vector<std::string>& args, const AuthFlags& flags,
                       std::string* key, std::string* range_end) {
  *key = args[0];
  range_end->clear();
  if (key->empty()) {
    if (flags.prefix && flags.from_key) {
      return MakeFailure(kExitBadArgs, "--from-key and --prefix flags are mutually exclusive");
    }
    // The empty key means "from the first key": etcd spells that "\0".
    *key = std::string(1, '\0');
    if (flags.prefix || flags.from_key) *range_end = std::string(1, '\0');
    return absl::OkStatus();
  }
  if (args.size() > 1) {
    if (flags.prefix) {
      return MakeFailure(kExitBadArgs, "unexpected endkey argument with --prefix flag");
    }
    if (flags.from_key) {
      return MakeFailure(kExitBadArgs, "unexpected endkey argument with --from-key flag");
    }
    *range_end = args[1];
  } else if (flags.prefix && flags.from_key) {
    return MakeFailure(kExitBadArgs, "--from-key and --prefix flags are mutually exclusive");
  } else if (flags.prefix) {
    *range_end = PrefixRangeEnd(*key);
  } else if (flags.from_key) {
    *range_end = std::string(1, '\0');
  }
  return absl::OkStatus();
}

absl::Status RunRole(Context& ctx, const std::vector<std::string>& positional,
                     const AuthFlags& flags) {
  const std::string sub = positional.empty() ? "" : positional[0];
  const std::vector<std::string> args(positional.begin() + (positional.empty() ? 0 : 1),
                                      positional.end());
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  Printer printer = ctx.printer();
  auto need_name = [&](absl::string_view what) {
    return args.size() == 1
               ? absl::OkStatus()
               : MakeFailure(kExitBadArgs, absl::StrCat("role ", what,
                                                        " command requires role name as its "
                                                        "argument"));
  };
  if (sub == "add") {
    if (absl::Status s = need_name("add"); !s.ok()) return s;
    absl::StatusOr<pb::AuthRoleAddResponse> r = (*c)->RoleAdd(args[0]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("Role ", args[0], " created\n"), *r, r->header());
  }
  if (sub == "delete") {
    if (absl::Status s = need_name("delete"); !s.ok()) return s;
    absl::StatusOr<pb::AuthRoleDeleteResponse> r = (*c)->RoleDelete(args[0]);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("Role ", args[0], " deleted\n"), *r, r->header());
  }
  if (sub == "get") {
    if (absl::Status s = need_name("get"); !s.ok()) return s;
    absl::StatusOr<pb::AuthRoleGetResponse> r = (*c)->RoleGet(args[0]);
    if (!r.ok()) return r.status();
    std::string fields;
    for (const authpb::Permission& p : r->perm()) {
      absl::StrAppend(&fields, "\"PermType\" :  ", authpb::Permission::Type_Name(p.permtype()),
                      "\n\"Key\" : ", GoQuote(p.key()), "\n\"RangeEnd\" : ", GoQuote(p.range_end()),
                      "\n");
    }
    return printer.AuthResult(RoleGetText(args[0], *r), *r, r->header(), fields);
  }
  if (sub == "list") {
    if (!args.empty()) return MakeFailure(kExitBadArgs, "role list command requires no arguments");
    absl::StatusOr<pb::AuthRoleListResponse> r = (*c)->RoleList();
    if (!r.ok()) return r.status();
    std::string simple, fields = "\"Roles\" :";
    for (const std::string& role : r->roles()) {
      absl::StrAppend(&simple, role, "\n");
      absl::StrAppend(&fields, " ", GoQuote(role));
    }
    return printer.AuthResult(simple, *r, r->header(), fields + "\n");
  }
  if (sub == "grant-permission") {
    if (args.size() < 3) {
      return MakeFailure(kExitBadArgs,
                         "role grant command requires role name, permission type, and key "
                         "[endkey] as its argument");
    }
    const std::string type = absl::AsciiStrToUpper(args[1]);
    authpb::Permission::Type perm_type;
    if (!authpb::Permission::Type_Parse(type, &perm_type)) {
      return MakeFailure(kExitBadArgs, absl::StrCat("invalid permission type: ", args[1]));
    }
    pb::AuthRoleGrantPermissionRequest request;
    request.set_name(args[0]);
    request.mutable_perm()->set_permtype(perm_type);
    std::string key, range_end;
    const std::vector<std::string> range(args.begin() + 2, args.end());
    if (absl::Status s = PermRange(range, flags, &key, &range_end); !s.ok()) return s;
    request.mutable_perm()->set_key(key);
    request.mutable_perm()->set_range_end(range_end);
    absl::StatusOr<pb::AuthRoleGrantPermissionResponse> r = (*c)->RoleGrantPermission(request);
    if (!r.ok()) return r.status();
    return printer.AuthResult(absl::StrCat("Role ", args[0], " updated\n"), *r, r->header());
  }
  if (sub == "revoke-permission") {
    if (args.size() < 2) {
      return MakeFailure(kExitBadArgs,
                         "role revoke-permission command requires role name and key [endkey] as "
                         "its argument");
    }
    pb::AuthRoleRevokePermissionRequest request;
    request.set_role(args[0]);
    std::string key, range_end;
    const std::vector<std::string> range(args.begin() + 1, args.end());
    if (absl::Status s = PermRange(range, flags, &key, &range_end); !s.ok()) return s;
    request.set_key(key);
    request.set_range_end(range_end);
    absl::StatusOr<pb::AuthRoleRevokePermissionResponse> r = (*c)->RoleRevokePermission(request);
    if (!r.ok()) return r.status();
    std::string simple;
    if (range_end.empty()) {
      simple = absl::StrCat("Permission of key ", args[1], " is revoked from role ", args[0], "\n");
    } else if (range_end != std::string(1, '\0')) {
      simple = absl::StrCat("Permission of range [", args[1], ", ", range_end,
                            ") is revoked from role ", args[0], "\n");
    } else {
      simple = absl::StrCat("Permission of range [", args[1],
                            ", <open ended> is revoked from role ", args[0], "\n");
    }
    return printer.AuthResult(simple, *r, r->header());
  }
  return MakeFailure(
      kExitBadArgs, "usage: kvctl role add|delete|get|list|grant-permission|revoke-permission ...");
}

// Sets unset global flags from ETCDCTL_* environment variables.
absl::Status ApplyEnvironment(const Io& io, const FlagSet& leading, FlagSet& command) {
  if (!io.getenv) return absl::OkStatus();
  for (absl::string_view name : kEnvFlags) {
    if (leading.Changed(name) || command.Changed(name)) continue;
    const std::string var =
        absl::StrCat("ETCDCTL_", absl::AsciiStrToUpper(absl::StrReplaceAll(name, {{"-", "_"}})));
    const char* value = io.getenv(var.c_str());
    if (value == nullptr) continue;
    absl::Status status = command.Set(name, value);
    if (!status.ok()) return MakeFailure(kExitBadArgs, absl::StrCat(var, ": ", status.message()));
  }
  return absl::OkStatus();
}

int Fail(Io& io, const absl::Status& status) {
  if (!status.message().empty()) io.err << "Error: " << ErrorText(status) << "\n";
  return ExitCodeOf(status);
}

}  // namespace

int Run(const std::vector<std::string>& args, Io io) {
  Globals globals;
  FlagSet leading;
  globals.Register(leading);
  absl::StatusOr<std::vector<std::string>> rest = leading.Parse(args, /*interspersed=*/false);
  if (!rest.ok()) return Fail(io, MakeFailure(kExitError, rest.status().message()));
  if (rest->empty() || globals.help || (*rest)[0] == "help") {
    io.out << kUsage;
    return kExitSuccess;
  }
  const std::string command = (*rest)[0];
  const std::vector<std::string> tail(rest->begin() + 1, rest->end());

  FlagSet flags;
  globals.Register(flags);
  GetFlags get;
  PutFlags put;
  DelFlags del;
  bool interactive = false;
  bool physical = false;
  bool cluster = false;
  int64_t hash_rev = 0;
  WatchFlags watch;
  MemberFlags member;
  AuthFlags auth;
  bool lease_keys = false;
  bool lease_once = false;
  if (command == "get") {
    get.Register(flags);
  } else if (command == "put") {
    put.Register(flags);
  } else if (command == "del") {
    del.Register(flags);
  } else if (command == "txn") {
    flags.Bool("interactive", 'i', &interactive);
  } else if (command == "compaction" || command == "compact") {
    flags.Bool("physical", '\0', &physical);
  } else if (command == "endpoint") {
    flags.Bool("cluster", '\0', &cluster);
    flags.Int64("rev", &hash_rev);
  } else if (command == "watch") {
    watch.Register(flags);
  } else if (command == "lease") {
    flags.Bool("keys", '\0', &lease_keys);
    flags.Bool("once", '\0', &lease_once);
  } else if (command == "member") {
    member.Register(flags);
  } else if (command == "user" || command == "role") {
    auth.Register(flags);
  } else if (command == "defrag") {
    flags.Bool("cluster", '\0', &cluster);
  } else if (command != "version" && command != "move-leader" && command != "alarm" &&
             command != "snapshot" && command != "auth") {
    return Fail(io, MakeFailure(kExitError,
                                absl::StrCat("unknown command \"", command, "\" for \"kvctl\"")));
  }
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(tail);
  if (!positional.ok()) return Fail(io, MakeFailure(kExitError, positional.status().message()));
  if (globals.help) {
    io.out << kUsage;
    return kExitSuccess;
  }
  if (absl::Status env = ApplyEnvironment(io, leading, flags); !env.ok()) return Fail(io, env);

  const bool timeout_given = leading.Changed("command-timeout") || flags.Changed("command-timeout");
  Context ctx(std::move(globals), io);
  if (absl::Status init = ctx.Init(); !init.ok()) return Fail(io, init);

  absl::Status status;
  if (command == "get") {
    status = RunGet(ctx, *positional, get);
  } else if (command == "put") {
    status = RunPut(ctx, *positional, put);
  } else if (command == "del") {
    status = RunDel(ctx, *positional, del);
  } else if (command == "txn") {
    status = RunTxn(ctx, *positional, interactive);
  } else if (command == "compaction" || command == "compact") {
    status = RunCompaction(ctx, *positional, physical);
  } else if (command == "version") {
    io.out << "kvctl version: " << kVersion << "\nAPI version: 3.5\n";
  } else if (command == "watch") {
    status = RunWatch(ctx, *positional, watch);
  } else if (command == "lease") {
    status = RunLease(ctx, *positional, lease_keys, lease_once);
  } else if (command == "member") {
    status = RunMember(ctx, *positional, member);
  } else if (command == "move-leader") {
    status = RunMoveLeader(ctx, *positional);
  } else if (command == "alarm") {
    status = RunAlarm(ctx, *positional);
  } else if (command == "defrag") {
    status = RunDefrag(ctx, cluster);
  } else if (command == "auth") {
    status = RunAuth(ctx, *positional);
  } else if (command == "user") {
    status = RunUser(ctx, *positional, auth);
  } else if (command == "role") {
    status = RunRole(ctx, *positional, auth);
  } else if (command == "snapshot") {
    status = RunSnapshot(ctx, *positional, timeout_given);
  } else if (command == "endpoint") {
    const std::string sub = positional->empty() ? "" : (*positional)[0];
    if (sub == "status") {
      status = RunEndpointStatus(ctx, cluster);
    } else if (sub == "health") {
      status = RunEndpointHealth(ctx, cluster);
    } else if (sub == "hashkv") {
      status = RunEndpointHashKV(ctx, cluster, hash_rev);
    } else {
      io.out << "usage: kvctl endpoint status|health|hashkv [--cluster] [--rev=N]\n";
      return sub.empty() ? kExitSuccess : kExitBadArgs;
    }
  }
  if (!status.ok()) return Fail(io, status);
  return kExitSuccess;
}

}  // namespace kvd::kvctl
