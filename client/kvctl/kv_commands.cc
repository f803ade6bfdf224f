// put, get, del, txn, compaction and watch.
#include <iterator>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/kvctl/commands.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/output.h"
#include "client/kvctl/txn_parser.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

namespace {

std::string ReadAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

absl::Status RunPut(Context& ctx, const std::vector<std::string>& args, const PutFlags& flags) {
  absl::StatusOr<pb::PutRequest> request =
      BuildPut(args, flags, [&] { return ReadAll(ctx.io().in); });
  if (!request.ok()) return request.status();
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::PutResponse> response = (*c)->Put(*request);
  if (!response.ok()) return response.status();
  return ctx.printer().Put(*response);
}

absl::Status RunGet(Context& ctx, const std::vector<std::string>& args, const GetFlags& flags) {
  absl::StatusOr<pb::RangeRequest> request = BuildRange(args, flags);
  if (!request.ok()) return request.status();
  if (flags.print_value_only && ctx.format() != Format::kSimple) {
    return MakeFailure(kExitBadArgs, "print-value-only is only for `--write-out=simple`");
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::RangeResponse> response = (*c)->Range(*request);
  if (!response.ok()) return response.status();
  if (flags.count_only && ctx.format() == Format::kSimple) {
    ctx.io().out << response->count() << "\n";
    return absl::OkStatus();
  }
  return ctx.printer().Get(*response, flags.print_value_only);
}

absl::Status RunDel(Context& ctx, const std::vector<std::string>& args, const DelFlags& flags) {
  absl::StatusOr<pb::DeleteRangeRequest> request = BuildDelete(args, flags);
  if (!request.ok()) return request.status();
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::DeleteRangeResponse> response = (*c)->DeleteRange(*request);
  if (!response.ok()) return response.status();
  return ctx.printer().Del(*response);
}

absl::Status RunTxn(Context& ctx, const std::vector<std::string>& args, bool interactive) {
  if (!args.empty()) return MakeFailure(kExitBadArgs, "txn command does not accept argument");
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<pb::TxnRequest> request =
      ReadTxn(ctx.io().in, interactive ? &ctx.io().out : nullptr);
  if (!request.ok()) return request.status();
  absl::StatusOr<pb::TxnResponse> response = (*c)->Txn(*request);
  if (!response.ok()) return response.status();
  return ctx.printer().Txn(*response);
}

absl::Status RunCompaction(Context& ctx, const std::vector<std::string>& args, bool physical) {
  if (args.size() != 1) return MakeFailure(kExitBadArgs, "compaction command needs 1 argument");
  int64_t revision = 0;
  if (!absl::SimpleAtoi(args[0], &revision)) {
    return MakeFailure(kExitError,
                       absl::StrCat("strconv.ParseInt: parsing \"", args[0], "\": invalid syntax"));
  }
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  pb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(physical);
  absl::StatusOr<pb::CompactionResponse> response = (*c)->Compact(request);
  if (!response.ok()) return response.status();
  ctx.io().out << "compacted revision " << revision << "\n";
  return absl::OkStatus();
}

// Prints events until the server cancels the watch (exit kExitInterrupted, as etcdctl) or
// the stream breaks.
absl::Status RunWatch(Context& ctx, const std::vector<std::string>& args, const WatchFlags& flags) {
  if (flags.interactive) {
    return MakeFailure(kExitBadFeature, "interactive watch is not supported by kvctl");
  }
  if (args.empty()) return MakeFailure(kExitBadArgs, "bad number of arguments");
  if (args.size() > 2) {
    return MakeFailure(kExitBadArgs, "bad number of arguments (kvctl runs no exec-command)");
  }
  pb::WatchCreateRequest create;
  std::string key = args[0];
  if (args.size() == 2) {
    if (flags.prefix) {
      return MakeFailure(kExitBadArgs, "`range_end` and `--prefix` are mutually exclusive");
    }
    create.set_range_end(args[1]);
  }
  if (flags.prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      create.set_range_end(std::string(1, '\0'));
    } else {
      create.set_range_end(PrefixEnd(key));
    }
  }
  create.set_key(key);
  create.set_start_revision(flags.rev);
  create.set_prev_kv(flags.prev_kv);
  if (ctx.format() == Format::kTable) {
    return MakeFailure(kExitBadFeature, "table not supported as output format");
  }

  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<std::unique_ptr<client::WatchStream>> stream = (*c)->Watch(create);
  if (!stream.ok()) return stream.status();
  Printer printer = ctx.printer();
  while (true) {
    absl::StatusOr<pb::WatchResponse> r = (*stream)->Next();
    if (!r.ok()) {
      ctx.io().err << "watch was canceled (" << ErrorText(r.status()) << ")\n";
      break;
    }
    if (r->created() && r->events_size() == 0 && !r->canceled()) continue;
    if (r->canceled()) {
      std::string why = r->cancel_reason();
      if (r->compact_revision() != 0) {
        why = "etcdserver: mvcc: required revision has been compacted";
      } else if (why.empty()) {
        why = "etcdserver: mvcc: required revision is a future revision";
      }
      ctx.io().err << "watch was canceled (" << why << ")\n";
    } else if (r->events_size() == 0 && r->compact_revision() == 0) {
      ctx.io().out << "progress notify: " << r->header().revision() << "\n";
    }
    if (absl::Status s = printer.Watch(*r); !s.ok()) return s;
    if (r->canceled()) break;
  }
  return MakeFailure(kExitInterrupted, "watch is canceled by the server");
}

}  // namespace kvd::kvctl
