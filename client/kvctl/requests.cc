#include "client/kvctl/requests.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/kvctl/exit.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

bool ParseHexUint64(absl::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  uint64_t value = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return false;
    }
    if (value > (std::numeric_limits<uint64_t>::max() >> 4)) return false;
    value = value << 4 | static_cast<uint64_t>(digit);
  }
  *out = value;
  return true;
}

bool ParseHexInt64(absl::string_view text, int64_t* out) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  uint64_t value = 0;
  if (!ParseHexUint64(text, &value)) return false;
  const uint64_t limit =
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + (negative ? 1 : 0);
  if (value > limit) return false;
  *out = negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
  return true;
}

void GetFlags::Register(FlagSet& flags) {
  flags.String("consistency", '\0', &consistency);
  flags.String("order", '\0', &order);
  flags.String("sort-by", '\0', &sort_by);
  flags.Int64("limit", &limit);
  flags.Bool("prefix", '\0', &prefix);
  flags.Bool("from-key", '\0', &from_key);
  flags.Int64("rev", &rev);
  flags.Bool("keys-only", '\0', &keys_only);
  flags.Bool("count-only", '\0', &count_only);
  flags.Bool("print-value-only", '\0', &print_value_only);
}

void PutFlags::Register(FlagSet& flags) {
  flags.String("lease", '\0', &lease);
  flags.Bool("prev-kv", '\0', &prev_kv);
  flags.Bool("ignore-value", '\0', &ignore_value);
  flags.Bool("ignore-lease", '\0', &ignore_lease);
}

void DelFlags::Register(FlagSet& flags) {
  flags.Bool("prefix", '\0', &prefix);
  flags.Bool("prev-kv", '\0', &prev_kv);
  flags.Bool("from-key", '\0', &from_key);
}

absl::StatusOr<pb::RangeRequest> BuildRange(const std::vector<std::string>& args,
                                            const GetFlags& flags) {
  if (args.empty()) {
    return MakeFailure(kExitBadArgs,
                       "get command needs one argument as key and an optional argument as "
                       "range_end");
  }
  if (flags.prefix && flags.from_key) {
    return MakeFailure(kExitBadArgs,
                       "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  pb::RangeRequest request;
  if (flags.consistency == "s") {
    request.set_serializable(true);
  } else if (flags.consistency != "l") {
    return MakeFailure(kExitBadFeature,
                       absl::StrCat("unknown consistency flag \"", flags.consistency, "\""));
  }
  std::string key = args[0];
  if (args.size() > 1) {
    if (flags.prefix || flags.from_key) {
      return MakeFailure(kExitBadArgs,
                         "too many arguments, only accept one argument when `--prefix` or "
                         "`--from-key` is set");
    }
    request.set_range_end(args[1]);
  }
  request.set_limit(flags.limit);
  if (flags.rev > 0) request.set_revision(flags.rev);

  pb::RangeRequest::SortOrder order = pb::RangeRequest::NONE;
  const std::string order_name = absl::AsciiStrToUpper(flags.order);
  if (order_name == "ASCEND") {
    order = pb::RangeRequest::ASCEND;
  } else if (order_name == "DESCEND") {
    order = pb::RangeRequest::DESCEND;
  } else if (!order_name.empty()) {
    return MakeFailure(kExitBadFeature, absl::StrCat("bad sort order ", flags.order));
  }
  pb::RangeRequest::SortTarget target = pb::RangeRequest::KEY;
  const std::string target_name = absl::AsciiStrToUpper(flags.sort_by);
  if (target_name == "CREATE") {
    target = pb::RangeRequest::CREATE;
  } else if (target_name == "KEY" || target_name.empty()) {
    target = pb::RangeRequest::KEY;
  } else if (target_name == "MODIFY") {
    target = pb::RangeRequest::MOD;
  } else if (target_name == "VALUE") {
    target = pb::RangeRequest::VALUE;
  } else if (target_name == "VERSION") {
    target = pb::RangeRequest::VERSION;
  } else {
    return MakeFailure(kExitBadFeature, absl::StrCat("bad sort target ", flags.sort_by));
  }
  // Keys come back in ascending key order anyway; asking for that sort explicitly would
  // make the server sort the whole range (etcd's clientv3 drops it the same way).
  if (target == pb::RangeRequest::KEY && order == pb::RangeRequest::ASCEND) {
    order = pb::RangeRequest::NONE;
  }
  request.set_sort_order(order);
  request.set_sort_target(target);

  if (flags.prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      request.set_range_end(std::string(1, '\0'));
    } else {
      request.set_range_end(PrefixEnd(key));
    }
  }
  if (flags.from_key) {
    if (key.empty()) key = std::string(1, '\0');
    request.set_range_end(std::string(1, '\0'));
  }
  request.set_key(key);
  request.set_keys_only(flags.keys_only);
  request.set_count_only(flags.count_only);
  return request;
}

absl::StatusOr<pb::PutRequest> BuildPut(const std::vector<std::string>& args, const PutFlags& flags,
                                        const StdinReader& read_stdin) {
  constexpr absl::string_view kUsage =
      "put command needs 1 argument and input from stdin or 2 arguments";
  if (args.empty()) return MakeFailure(kExitBadArgs, kUsage);
  if (flags.ignore_value && args.size() > 1) {
    return MakeFailure(kExitBadArgs,
                       "put command needs only 1 argument when 'ignore-value' is set");
  }
  pb::PutRequest request;
  request.set_key(args[0]);
  if (!flags.ignore_value) {
    if (args.size() > 1) {
      request.set_value(args[1]);
    } else {
      std::string value = read_stdin ? read_stdin() : std::string();
      if (value.empty()) return MakeFailure(kExitBadArgs, kUsage);
      request.set_value(std::move(value));
    }
  }
  int64_t lease = 0;
  if (!ParseHexInt64(flags.lease, &lease)) {
    return MakeFailure(kExitBadArgs,
                       absl::StrCat("bad lease ID (strconv.ParseInt: parsing \"", flags.lease,
                                    "\": invalid syntax), expecting ID in Hex"));
  }
  request.set_lease(lease);
  request.set_prev_kv(flags.prev_kv);
  request.set_ignore_value(flags.ignore_value);
  request.set_ignore_lease(flags.ignore_lease);
  return request;
}

absl::StatusOr<pb::DeleteRangeRequest> BuildDelete(const std::vector<std::string>& args,
                                                   const DelFlags& flags) {
  if (args.empty() || args.size() > 2) {
    return MakeFailure(kExitBadArgs,
                       "del command needs one argument as key and an optional argument as "
                       "range_end");
  }
  if (flags.prefix && flags.from_key) {
    return MakeFailure(kExitBadArgs,
                       "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  pb::DeleteRangeRequest request;
  std::string key = args[0];
  if (args.size() > 1) {
    if (flags.prefix || flags.from_key) {
      return MakeFailure(kExitBadArgs,
                         "too many arguments, only accept one argument when `--prefix` or "
                         "`--from-key` is set");
    }
    request.set_range_end(args[1]);
  }
  if (flags.prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      request.set_range_end(std::string(1, '\0'));
    } else {
      request.set_range_end(PrefixEnd(key));
    }
  }
  request.set_prev_kv(flags.prev_kv);
  if (flags.from_key) {
    if (key.empty()) key = std::string(1, '\0');
    request.set_range_end(std::string(1, '\0'));
  }
  request.set_key(key);
  return request;
}

}  // namespace kvd::kvctl
