// Go's text formats, reproduced so that kvctl prints exactly what etcdctl (a Go program)
// prints: encoding/json of etcd's messages, strconv.Quote, time.Duration, go-humanize and
// the tablewriter tables etcdctl uses.
#ifndef KVD_CLIENT_KVCTL_GO_FORMAT_H_
#define KVD_CLIENT_KVCTL_GO_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace kvd::kvctl {

// Go's encoding/json rendering of a gogoproto-generated etcd message.
std::string EtcdJson(const google::protobuf::Message& message);
// A JSON string literal escaped as Go's encoding/json does (HTML-safe, invalid UTF-8
// replaced by U+FFFD).
std::string GoJsonString(absl::string_view text);
// Go's strconv.Quote: a double-quoted string with Go escapes for control characters,
// non-printable runes and invalid UTF-8.
std::string GoQuote(absl::string_view text);
// protoc-gen-go's CamelCase ("response_put" -> "ResponsePut").
std::string GoCamelCase(absl::string_view name);
// go-humanize's Bytes: SI units, e.g. 24576 -> "25 kB", 1500 -> "1.5 kB", 7 -> "7 B".
std::string HumanizeBytes(uint64_t bytes);
// Go's time.Duration.String(): "1.57403ms", "2.5s", "1m0s", "512µs".
std::string GoDuration(absl::Duration d);
// An olekukonko/tablewriter table as etcdctl configures it: upper-case centered headers,
// right-aligned cells.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_GO_FORMAT_H_
