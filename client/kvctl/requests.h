// The put, get and del requests built from command-line arguments, exactly as etcdctl
// builds them. The `put`, `get` and `del` commands and the request lines of `txn` share
// this code, so "get k --prefix" means the same in both places.
#ifndef KVD_CLIENT_KVCTL_REQUESTS_H_
#define KVD_CLIENT_KVCTL_REQUESTS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "api/key_range.h"
#include "client/kvctl/flags.h"

namespace kvd::kvctl {

// The end of the range of all keys starting with a prefix (etcd's GetPrefixRangeEnd).
using ::kvd::api::PrefixEnd;

struct GetFlags {
  std::string consistency = "l";
  std::string order;
  std::string sort_by;
  int64_t limit = 0;
  bool prefix = false;
  bool from_key = false;
  int64_t rev = 0;
  bool keys_only = false;
  bool count_only = false;
  bool print_value_only = false;
  void Register(FlagSet& flags);
};

struct PutFlags {
  std::string lease = "0";  // hexadecimal lease id
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
  void Register(FlagSet& flags);
};

struct DelFlags {
  bool prefix = false;
  bool prev_kv = false;
  bool from_key = false;
  void Register(FlagSet& flags);
};

// Reads the whole of standard input (for `put KEY` without a value). Null: no stdin.
using StdinReader = std::function<std::string()>;

// Errors (all carry etcdctl's exit code, see exit.h): bad argument counts, conflicting
// flags, unknown --consistency/--order/--sort-by values, a lease id that is not hex.
absl::StatusOr<etcdserverpb::RangeRequest> BuildRange(const std::vector<std::string>& args,
                                                      const GetFlags& flags);
absl::StatusOr<etcdserverpb::PutRequest> BuildPut(const std::vector<std::string>& args,
                                                  const PutFlags& flags,
                                                  const StdinReader& read_stdin);
absl::StatusOr<etcdserverpb::DeleteRangeRequest> BuildDelete(const std::vector<std::string>& args,
                                                             const DelFlags& flags);

// Parse hexadecimal numbers as Go's strconv.ParseInt(s, 16, 64) (optional sign) and
// strconv.ParseUint(s, 16, 64) do: no "0x" prefix, no overflow.
bool ParseHexInt64(absl::string_view text, int64_t* out);
bool ParseHexUint64(absl::string_view text, uint64_t* out);

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_REQUESTS_H_
