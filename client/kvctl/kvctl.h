// kvctl: an etcdctl-compatible command line client (etcdctl v3 syntax and output).
//
//   kvctl [global flags] <command> [flags] [args]
//
// Global flags: --endpoints (comma list, default 127.0.0.1:2379), --dial-timeout (2s),
// --command-timeout (5s), -w/--write-out simple|json|fields|table, --hex, --user,
// --password. Unset global flags are taken from ETCDCTL_ENDPOINTS, ETCDCTL_DIAL_TIMEOUT, ...
// like etcdctl. Commands: see `kvctl --help` (put, get, del, txn, compaction, watch, lease,
// lock, elect, member, endpoint, move-leader, alarm, defrag, snapshot save, auth, user,
// role, version).
// Exit codes are etcdctl's (see exit.h).
#ifndef KVD_CLIENT_KVCTL_KVCTL_H_
#define KVD_CLIENT_KVCTL_KVCTL_H_

#include <functional>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace kvd::kvctl {

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  // Looks up an environment variable; returns null if unset.
  std::function<const char*(const char*)> getenv;
};

// Runs one kvctl invocation. `args` excludes the program name. Returns the exit code.
int Run(const std::vector<std::string>& args, Io io);

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_KVCTL_H_
