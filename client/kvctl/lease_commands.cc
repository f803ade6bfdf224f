// lease grant|revoke|timetolive|list|keep-alive.
#include <algorithm>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/kvctl/commands.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/output.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

namespace {

absl::Status LeaseIdArg(const std::string& arg, int64_t* id) {
  if (ParseHexInt64(arg, id)) return absl::OkStatus();
  return MakeFailure(kExitBadArgs, absl::StrCat("bad lease ID arg (strconv.ParseInt: parsing \"",
                                                arg, "\": invalid syntax), expecting ID in Hex"));
}

}  // namespace

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

}  // namespace kvd::kvctl
