// `kvctl txn` input, in etcdctl's syntax:
//
//   <compare>*     one per line, e.g.  mod("key") > "0"   value("k") = "v"
//   <empty line>
//   <request>*     success requests:   put k v   get k --prefix   del k
//   <empty line>
//   <request>*     failure requests
//   <empty line>
//
// A compare is TARGET("key") OP "value" with TARGET one of ver|version, c|create, m|mod,
// val|value, lease and OP one of = != > <. Keys and values are Go-quoted strings ("..."
// with Go escapes, or `raw`). Numbers are decimal, lease ids hexadecimal. A request line is
// a put, get or del command line with its flags; arguments may be "double" or 'single'
// quoted.
#ifndef KVD_CLIENT_KVCTL_TXN_PARSER_H_
#define KVD_CLIENT_KVCTL_TXN_PARSER_H_

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/etcdserverpb/rpc.pb.h"

namespace kvd::kvctl {

// Reads one Go-quoted string ("..." or `...`) after optional leading spaces, advancing
// `in` past it. Errors: INVALID_ARGUMENT if there is none or an escape is invalid.
absl::StatusOr<std::string> ScanGoQuoted(absl::string_view& in);

// Splits a request line into arguments like etcdctl: whitespace separates, "..." is
// Go-unquoted, '...' is taken literally. Errors: a bad escape in "...".
absl::StatusOr<std::vector<std::string>> Argify(absl::string_view line);

// Errors carry etcdctl's exit code kExitInvalidInput ("malformed comparison: ...",
// "invalid txn compare request: ...", "invalid txn request: ...") or, for put/get/del
// argument errors inside a request line, that command's own error and code.
absl::StatusOr<etcdserverpb::Compare> ParseCompare(absl::string_view line);
absl::StatusOr<etcdserverpb::RequestOp> ParseRequestOp(absl::string_view line);

// Reads the three sections from `in`. If `prompts` is not null, prints etcdctl's
// interactive prompts to it before each section. Input that ends before the closing
// empty line of a section fails with "EOF" (kExitInvalidInput), as in etcdctl.
absl::StatusOr<etcdserverpb::TxnRequest> ReadTxn(std::istream& in, std::ostream* prompts);

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_TXN_PARSER_H_
