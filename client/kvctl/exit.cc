#include "client/kvctl/exit.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kvd::kvctl {

namespace {
constexpr absl::string_view kExitCodePayload = "type.kvd.dev/kvctl.ExitCode";
}  // namespace

absl::Status MakeFailure(ExitCode code, absl::string_view message) {
  absl::Status status(code == kExitBadArgs || code == kExitBadFeature
                          ? absl::StatusCode::kInvalidArgument
                          : absl::StatusCode::kUnknown,
                      message);
  status.SetPayload(kExitCodePayload, absl::Cord(absl::StrCat(static_cast<int>(code))));
  return status;
}

int ExitCodeOf(const absl::Status& status) {
  int code = kExitError;
  if (auto payload = status.GetPayload(kExitCodePayload)) {
    if (!absl::SimpleAtoi(std::string(*payload), &code)) code = kExitError;
  }
  return code;
}

std::string ErrorText(const absl::Status& status) {
  const std::string message(status.message());
  if (status.GetPayload(kExitCodePayload).has_value() || absl::StartsWith(message, "etcdserver:") ||
      absl::StartsWith(message, "context deadline exceeded")) {
    return message;
  }
  // Go's names of the gRPC codes (google.golang.org/grpc/codes).
  static constexpr const char* kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  const int code = static_cast<int>(status.code());
  const std::string name = code >= 0 && code < 17 ? kNames[code] : absl::StrCat("Code(", code, ")");
  return absl::StrCat("rpc error: code = ", name, " desc = ", message);
}

}  // namespace kvd::kvctl
