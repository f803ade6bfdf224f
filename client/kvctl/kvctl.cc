#include "client/kvctl/kvctl.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/kvctl/commands.h"
#include "client/kvctl/context.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/flags.h"
#include "client/kvctl/output.h"
#include "client/kvctl/requests.h"

namespace kvd::kvctl {

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
  lock NAME [COMMAND ARGS...] acquires a lock (--ttl=10: session seconds); runs COMMAND
                              with ETCD_LOCK_KEY/ETCD_LOCK_REV set, or holds it until
                              interrupted
  elect NAME PROPOSAL         campaigns; leads until interrupted
  elect -l NAME               prints the leader and each change (alias --listen)
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

// Global flags that may also come from the environment, as ETCDCTL_<NAME>.
constexpr absl::string_view kEnvFlags[] = {
    "endpoints", "dial-timeout", "command-timeout", "write-out", "hex", "user", "password"};

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
  int64_t lock_ttl = 10;
  bool elect_listen = false;
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
  } else if (command == "lock") {
    flags.Int64("ttl", &lock_ttl);
  } else if (command == "elect") {
    flags.Bool("listen", 'l', &elect_listen);
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
  // Like etcdctl, a command group without its subcommand prints help.
  constexpr absl::string_view kGroups[] = {"endpoint", "lease", "member", "alarm",
                                           "snapshot", "auth",  "user",   "role"};
  if (positional->empty() &&
      std::find(std::begin(kGroups), std::end(kGroups), command) != std::end(kGroups)) {
    io.out << kUsage;
    return kExitSuccess;
  }
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
  } else if (command == "lock") {
    status = RunLock(ctx, *positional, lock_ttl);
  } else if (command == "elect") {
    status = RunElect(ctx, *positional, elect_listen);
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
