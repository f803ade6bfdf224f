// Exit codes and failures of kvctl commands, as etcdctl defines them.
//
// A command fails with an absl::Status. Errors kvctl detects itself carry their exit code
// as a payload (MakeFailure); errors from the server or the connection carry none and exit
// with kExitError, as in etcdctl. Either way the message is printed as "Error: <message>".
#ifndef KVD_CLIENT_KVCTL_EXIT_H_
#define KVD_CLIENT_KVCTL_EXIT_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvd::kvctl {

enum ExitCode : int {
  kExitSuccess = 0,
  kExitError = 1,
  kExitBadConnection = 2,
  kExitInvalidInput = 3,  // malformed txn input
  kExitBadFeature = 4,    // a valid flag with an unsupported value
  kExitInterrupted = 5,
  kExitIO = 6,
  kExitBadArgs = 128,
};

// A failure that exits with `code` after printing "Error: <message>".
absl::Status MakeFailure(ExitCode code, absl::string_view message);

// The exit code for a failed command: the attached code, else kExitError.
// REQUIRES: !status.ok()
int ExitCodeOf(const absl::Status& status);

// The text etcdctl would print for a failure: the message of kvctl's own failures and of
// etcd's errors ("etcdserver: ..."), "context deadline exceeded" for timeouts, and Go
// gRPC's "rpc error: code = Unimplemented desc = ..." for any other gRPC status.
std::string ErrorText(const absl::Status& status);

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_EXIT_H_
