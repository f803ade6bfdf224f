#include "client/kvctl/flags.h"

#include "gtest/gtest.h"

namespace kvd::kvctl {
namespace {

struct Fixture {
  bool prefix = false;
  bool interactive = false;
  std::string write_out = "simple";
  int64_t limit = 0;
  absl::Duration timeout = absl::Seconds(5);
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  FlagSet flags;

  Fixture() {
    flags.Bool("prefix", '\0', &prefix);
    flags.Bool("interactive", 'i', &interactive);
    flags.String("write-out", 'w', &write_out);
    flags.Int64("limit", &limit);
    flags.Duration("command-timeout", &timeout);
    flags.StringList("endpoints", &endpoints);
  }
};

TEST(FlagSetTest, FlagsAndPositionalArgumentsMix) {
  Fixture f;
  absl::StatusOr<std::vector<std::string>> rest =
      f.flags.Parse({"get", "foo", "--prefix", "--limit", "3", "bar", "--write-out=json"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, (std::vector<std::string>{"get", "foo", "bar"}));
  EXPECT_TRUE(f.prefix);
  EXPECT_EQ(f.limit, 3);
  EXPECT_EQ(f.write_out, "json");
  EXPECT_TRUE(f.flags.Changed("prefix"));
  EXPECT_FALSE(f.flags.Changed("interactive"));
}

TEST(FlagSetTest, Shorthands) {
  Fixture f;
  ASSERT_TRUE(f.flags.Parse({"-w", "table", "-i"}).ok());
  EXPECT_EQ(f.write_out, "table");
  EXPECT_TRUE(f.interactive);
  Fixture g;
  ASSERT_TRUE(g.flags.Parse({"-wjson"}).ok());
  EXPECT_EQ(g.write_out, "json");
  Fixture h;
  ASSERT_TRUE(h.flags.Parse({"-iw=json"}).ok());
  EXPECT_TRUE(h.interactive);
  EXPECT_EQ(h.write_out, "json");
}

TEST(FlagSetTest, BoolValuesOnlyWithEquals) {
  Fixture f;
  absl::StatusOr<std::vector<std::string>> rest = f.flags.Parse({"--prefix", "false"});
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(f.prefix);
  EXPECT_EQ(*rest, std::vector<std::string>{"false"});
  ASSERT_TRUE(f.flags.Parse({"--prefix=false"}).ok());
  EXPECT_FALSE(f.prefix);
}

TEST(FlagSetTest, DoubleDashEndsFlagsAndDashIsPositional) {
  Fixture f;
  absl::StatusOr<std::vector<std::string>> rest =
      f.flags.Parse({"put", "--", "-key", "--prefix", "-"});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (std::vector<std::string>{"put", "-key", "--prefix", "-"}));
  EXPECT_FALSE(f.prefix);
}

TEST(FlagSetTest, NonInterspersedStopsAtFirstPositional) {
  Fixture f;
  absl::StatusOr<std::vector<std::string>> rest =
      f.flags.Parse({"--limit=2", "get", "--prefix", "k"}, /*interspersed=*/false);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (std::vector<std::string>{"get", "--prefix", "k"}));
  EXPECT_EQ(f.limit, 2);
  EXPECT_FALSE(f.prefix);
}

TEST(FlagSetTest, DurationsAndLists) {
  Fixture f;
  ASSERT_TRUE(
      f.flags.Parse({"--command-timeout=1m30s", "--endpoints=a:1,b:2", "--endpoints", "c:3"}).ok());
  EXPECT_EQ(f.timeout, absl::Seconds(90));
  EXPECT_EQ(f.endpoints, (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  ASSERT_TRUE(f.flags.Set("command-timeout", "250ms").ok());
  EXPECT_EQ(f.timeout, absl::Milliseconds(250));
  EXPECT_EQ(ParseGoDuration("3µs").value(), absl::Microseconds(3));
}

TEST(FlagSetTest, ErrorsUsePflagWording) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"--bogus"}, "unknown flag: --bogus"},
      {{"-x"}, "unknown shorthand flag: 'x' in -x"},
      {{"--limit"}, "flag needs an argument: --limit"},
      {{"-w"}, "flag needs an argument: 'w' in -w"},
      {{"--limit=abc"},
       "invalid argument \"abc\" for \"--limit\" flag: strconv.ParseInt: parsing \"abc\": "
       "invalid syntax"},
      {{"--prefix=maybe"},
       "invalid argument \"maybe\" for \"--prefix\" flag: strconv.ParseBool: parsing "
       "\"maybe\": invalid syntax"},
      {{"--command-timeout=5"},
       "invalid argument \"5\" for \"--command-timeout\" flag: time: invalid duration \"5\""},
  };
  for (const Case& c : cases) {
    Fixture f;
    absl::StatusOr<std::vector<std::string>> rest = f.flags.Parse(c.args);
    ASSERT_FALSE(rest.ok()) << c.args[0];
    EXPECT_EQ(rest.status().message(), c.message);
  }
}

}  // namespace
}  // namespace kvd::kvctl
