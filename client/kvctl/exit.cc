#include "client/kvctl/exit.h"

#include <string>

#include "absl/strings/cord.h"
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

}  // namespace kvd::kvctl
