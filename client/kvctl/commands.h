// The kvctl commands, one Run* function each, grouped by file:
//   kv_commands.cc       put, get, del, txn, compaction, watch
//   lease_commands.cc    lease grant|revoke|timetolive|list|keep-alive
//   concurrency_commands.cc  lock, elect
//   cluster_commands.cc  endpoint status|health|hashkv, member ..., move-leader, alarm,
//                        defrag, snapshot save
//   auth_commands.cc     auth ..., user ..., role ...
// `args`/`positional` are the command's positional arguments (for commands with
// subcommands, the subcommand first). Each returns OK or a failure that carries etcdctl's
// exit code (exit.h); output goes through ctx.printer() or ctx.io().
#ifndef KVD_CLIENT_KVCTL_COMMANDS_H_
#define KVD_CLIENT_KVCTL_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/kvctl/context.h"
#include "client/kvctl/flags.h"
#include "client/kvctl/requests.h"

namespace kvd::kvctl {

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

struct MemberFlags {
  std::string peer_urls;
  bool learner = false;
  void Register(FlagSet& flags) {
    flags.String("peer-urls", '\0', &peer_urls);
    flags.Bool("learner", '\0', &learner);
  }
};

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

absl::Status RunPut(Context& ctx, const std::vector<std::string>& args, const PutFlags& flags);
absl::Status RunGet(Context& ctx, const std::vector<std::string>& args, const GetFlags& flags);
absl::Status RunDel(Context& ctx, const std::vector<std::string>& args, const DelFlags& flags);
absl::Status RunTxn(Context& ctx, const std::vector<std::string>& args, bool interactive);
absl::Status RunCompaction(Context& ctx, const std::vector<std::string>& args, bool physical);
absl::Status RunWatch(Context& ctx, const std::vector<std::string>& args, const WatchFlags& flags);

absl::Status RunLease(Context& ctx, const std::vector<std::string>& positional, bool keys,
                      bool once);

// lock NAME [COMMAND ARGS...]; elect NAME PROPOSAL; elect -l NAME.
absl::Status RunLock(Context& ctx, const std::vector<std::string>& args, int64_t ttl_s);
absl::Status RunElect(Context& ctx, const std::vector<std::string>& args, bool listen);

absl::Status RunEndpointStatus(Context& ctx, bool cluster);
absl::Status RunEndpointHealth(Context& ctx, bool cluster);
absl::Status RunEndpointHashKV(Context& ctx, bool cluster, int64_t revision);
absl::Status RunMember(Context& ctx, const std::vector<std::string>& positional,
                       const MemberFlags& flags);
absl::Status RunMoveLeader(Context& ctx, const std::vector<std::string>& args);
absl::Status RunAlarm(Context& ctx, const std::vector<std::string>& positional);
absl::Status RunDefrag(Context& ctx, bool cluster);
// `timeout_given`: --command-timeout was set (snapshots have no time limit otherwise).
absl::Status RunSnapshot(Context& ctx, const std::vector<std::string>& positional,
                         bool timeout_given);

absl::Status RunAuth(Context& ctx, const std::vector<std::string>& positional);
absl::Status RunUser(Context& ctx, const std::vector<std::string>& positional,
                     const AuthFlags& flags);
absl::Status RunRole(Context& ctx, const std::vector<std::string>& positional,
                     const AuthFlags& flags);

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_COMMANDS_H_
