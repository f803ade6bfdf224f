#include "client/kvctl/requests.h"

#include "client/kvctl/exit.h"
#include "gtest/gtest.h"

namespace kvd::kvctl {
namespace {

namespace pb = ::etcdserverpb;
const std::string kNul(1, '\0');

TEST(PrefixEndTest, IncrementsTheLastByteBelowFF) {
  EXPECT_EQ(PrefixEnd("abc"), "abd");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("a\xff\xff"), "b");
  EXPECT_EQ(PrefixEnd("\xff\xff"), kNul);
  EXPECT_EQ(PrefixEnd(std::string("a\0", 2)), std::string("a\x01", 2));
}

TEST(ParseHexInt64Test, LikeStrconvParseIntBase16) {
  int64_t v = 0;
  EXPECT_TRUE(ParseHexInt64("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(ParseHexInt64("694d77aa9e38260F", &v));
  EXPECT_EQ(v, 0x694d77aa9e38260f);
  EXPECT_TRUE(ParseHexInt64("-10", &v));
  EXPECT_EQ(v, -16);
  EXPECT_TRUE(ParseHexInt64("7fffffffffffffff", &v));
  EXPECT_FALSE(ParseHexInt64("8000000000000000", &v));
  EXPECT_FALSE(ParseHexInt64("0x10", &v));
  EXPECT_FALSE(ParseHexInt64("", &v));
  EXPECT_FALSE(ParseHexInt64("zz", &v));
  uint64_t u = 0;
  EXPECT_TRUE(ParseHexUint64("a88b7f4e8a5c2e80", &u));
  EXPECT_EQ(u, 0xa88b7f4e8a5c2e80ULL);
  EXPECT_TRUE(ParseHexUint64("ffffffffffffffff", &u));
  EXPECT_FALSE(ParseHexUint64("10000000000000000", &u));
  EXPECT_FALSE(ParseHexUint64("-1", &u));
}

TEST(BuildRangeTest, PlainKeyAndRange) {
  GetFlags flags;
  absl::StatusOr<pb::RangeRequest> r = BuildRange({"k"}, flags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key(), "k");
  EXPECT_EQ(r->range_end(), "");
  EXPECT_FALSE(r->serializable());
  r = BuildRange({"a", "c"}, flags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->range_end(), "c");
}

TEST(BuildRangeTest, PrefixAndFromKeyWithEmptyKeyMeanEverything) {
  GetFlags prefix;
  prefix.prefix = true;
  absl::StatusOr<pb::RangeRequest> r = BuildRange({"ab"}, prefix);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->range_end(), "ac");
  r = BuildRange({""}, prefix);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key(), kNul);
  EXPECT_EQ(r->range_end(), kNul);
  GetFlags from;
  from.from_key = true;
  r = BuildRange({"m"}, from);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key(), "m");
  EXPECT_EQ(r->range_end(), kNul);
}

TEST(BuildRangeTest, OptionsMapToTheRequest) {
  GetFlags flags;
  flags.consistency = "s";
  flags.limit = 5;
  flags.rev = 42;
  flags.keys_only = true;
  flags.count_only = true;
  flags.order = "descend";
  flags.sort_by = "modify";
  absl::StatusOr<pb::RangeRequest> r = BuildRange({"k"}, flags);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->serializable());
  EXPECT_EQ(r->limit(), 5);
  EXPECT_EQ(r->revision(), 42);
  EXPECT_TRUE(r->keys_only());
  EXPECT_TRUE(r->count_only());
  EXPECT_EQ(r->sort_order(), pb::RangeRequest::DESCEND);
  EXPECT_EQ(r->sort_target(), pb::RangeRequest::MOD);
}

TEST(BuildRangeTest, AscendingByKeyIsSentAsNoSort) {
  GetFlags flags;
  flags.order = "ASCEND";
  absl::StatusOr<pb::RangeRequest> r = BuildRange({"k"}, flags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->sort_order(), pb::RangeRequest::NONE);
  flags.sort_by = "VALUE";
  r = BuildRange({"k"}, flags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->sort_order(), pb::RangeRequest::ASCEND);
  EXPECT_EQ(r->sort_target(), pb::RangeRequest::VALUE);
}

TEST(BuildRangeTest, ErrorsAndTheirExitCodes) {
  GetFlags none;
  absl::StatusOr<pb::RangeRequest> r = BuildRange({}, none);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ExitCodeOf(r.status()), kExitBadArgs);
  EXPECT_EQ(r.status().message(),
            "get command needs one argument as key and an optional argument as range_end");

  GetFlags both;
  both.prefix = both.from_key = true;
  EXPECT_EQ(ExitCodeOf(BuildRange({"k"}, both).status()), kExitBadArgs);

  GetFlags prefix;
  prefix.prefix = true;
  EXPECT_EQ(ExitCodeOf(BuildRange({"a", "b"}, prefix).status()), kExitBadArgs);

  GetFlags consistency;
  consistency.consistency = "x";
  r = BuildRange({"k"}, consistency);
  EXPECT_EQ(r.status().message(), "unknown consistency flag \"x\"");
  EXPECT_EQ(ExitCodeOf(r.status()), kExitBadFeature);

  GetFlags order;
  order.order = "up";
  EXPECT_EQ(BuildRange({"k"}, order).status().message(), "bad sort order up");
  GetFlags target;
  target.sort_by = "size";
  EXPECT_EQ(ExitCodeOf(BuildRange({"k"}, target).status()), kExitBadFeature);
}

TEST(BuildPutTest, ValueFromArgumentOrStdin) {
  PutFlags flags;
  absl::StatusOr<pb::PutRequest> p = BuildPut({"k", "v"}, flags, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->value(), "v");
  EXPECT_EQ(p->lease(), 0);
  p = BuildPut({"k"}, flags, [] { return std::string("from stdin\n"); });
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->value(), "from stdin\n");
  p = BuildPut({"k"}, flags, [] { return std::string(); });
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "put command needs 1 argument and input from stdin or 2 arguments");
  EXPECT_EQ(ExitCodeOf(p.status()), kExitBadArgs);
}

TEST(BuildPutTest, FlagsAndLease) {
  PutFlags flags;
  flags.lease = "1f";
  flags.prev_kv = true;
  flags.ignore_lease = true;
  absl::StatusOr<pb::PutRequest> p = BuildPut({"k", "v"}, flags, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->lease(), 31);
  EXPECT_TRUE(p->prev_kv());
  EXPECT_TRUE(p->ignore_lease());

  PutFlags ignore;
  ignore.ignore_value = true;
  p = BuildPut({"k"}, ignore, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->ignore_value());
  EXPECT_EQ(p->value(), "");
  EXPECT_EQ(BuildPut({"k", "v"}, ignore, nullptr).status().message(),
            "put command needs only 1 argument when 'ignore-value' is set");

  PutFlags bad;
  bad.lease = "zz";
  EXPECT_EQ(BuildPut({"k", "v"}, bad, nullptr).status().message(),
            "bad lease ID (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in "
            "Hex");
}

TEST(BuildDeleteTest, RangesAndErrors) {
  DelFlags flags;
  flags.prefix = true;
  flags.prev_kv = true;
  absl::StatusOr<pb::DeleteRangeRequest> d = BuildDelete({"ab"}, flags);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->range_end(), "ac");
  EXPECT_TRUE(d->prev_kv());
  DelFlags plain;
  EXPECT_EQ(BuildDelete({"a", "b"}, plain)->range_end(), "b");
  EXPECT_EQ(ExitCodeOf(BuildDelete({}, plain).status()), kExitBadArgs);
  EXPECT_EQ(ExitCodeOf(BuildDelete({"a", "b", "c"}, plain).status()), kExitBadArgs);
}

}  // namespace
}  // namespace kvd::kvctl
