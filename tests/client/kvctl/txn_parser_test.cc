#include "client/kvctl/txn_parser.h"

#include <random>
#include <sstream>

#include "client/kvctl/exit.h"
#include "gtest/gtest.h"

namespace kvd::kvctl {
namespace {

namespace pb = ::etcdserverpb;

pb::Compare MustCompare(absl::string_view line) {
  absl::StatusOr<pb::Compare> cmp = ParseCompare(line);
  EXPECT_TRUE(cmp.ok()) << line << ": " << cmp.status();
  return cmp.ok() ? *cmp : pb::Compare();
}

TEST(ParseCompareTest, EveryTargetAndItsShortName) {
  pb::Compare c = MustCompare(R"(mod("key") > "5")");
  EXPECT_EQ(c.target(), pb::Compare::MOD);
  EXPECT_EQ(c.result(), pb::Compare::GREATER);
  EXPECT_EQ(c.key(), "key");
  EXPECT_EQ(c.target_union_case(), pb::Compare::kModRevision);
  EXPECT_EQ(c.mod_revision(), 5);
  EXPECT_EQ(MustCompare(R"(m("k") = "7")").mod_revision(), 7);

  c = MustCompare(R"(ver("k") < "3")");
  EXPECT_EQ(c.target(), pb::Compare::VERSION);
  EXPECT_EQ(c.result(), pb::Compare::LESS);
  EXPECT_EQ(c.version(), 3);
  EXPECT_EQ(MustCompare(R"(version("k") = "0")").target_union_case(), pb::Compare::kVersion);

  c = MustCompare(R"(c("k") != "9")");
  EXPECT_EQ(c.target(), pb::Compare::CREATE);
  EXPECT_EQ(c.result(), pb::Compare::NOT_EQUAL);
  EXPECT_EQ(c.create_revision(), 9);
  EXPECT_EQ(MustCompare(R"(create("k") = "1")").create_revision(), 1);

  c = MustCompare(R"(value("k") = "v 1")");
  EXPECT_EQ(c.target(), pb::Compare::VALUE);
  EXPECT_EQ(c.result(), pb::Compare::EQUAL);
  EXPECT_EQ(c.value(), "v 1");
  EXPECT_EQ(MustCompare(R"(val("k") = "x")").value(), "x");

  // Lease ids are hexadecimal, as everywhere in etcdctl.
  c = MustCompare(R"(lease("k") = "694d77aa9e38260f")");
  EXPECT_EQ(c.target(), pb::Compare::LEASE);
  EXPECT_EQ(c.key(), "k");
  EXPECT_EQ(c.lease(), 0x694d77aa9e38260f);
}

TEST(ParseCompareTest, GoQuotingAndSpacing) {
  // Go escapes in keys and values; raw `...` strings; spaces are flexible around the
  // operator and before the quoted strings.
  pb::Compare c = MustCompare(R"(value("a\"b\x41\n") = "\u00e9\101")");
  EXPECT_EQ(c.key(), "a\"bA\n");
  EXPECT_EQ(c.value(),
            "\xc3\xa9"
            "A");
  c = MustCompare("value(`raw\\n`)   =   `x y`");
  EXPECT_EQ(c.key(), "raw\\n");
  EXPECT_EQ(c.value(), "x y");
  c = MustCompare(R"(mod( "k")   >   "1")");
  EXPECT_EQ(c.mod_revision(), 1);
  EXPECT_EQ(c.key(), "k");
  // Like Go's Sscanf("%s"), the operator runs up to the next space.
  EXPECT_FALSE(ParseCompare(R"(mod("k") >"1")").ok());
}

TEST(ParseCompareTest, MalformedInputIsRejectedWithEtcdctlMessages) {
  struct Case {
    const char* line;
    const char* message;
  };
  const Case cases[] = {
      {"bogus", "malformed comparison: bogus"},
      {R"(mod("k") > 1)", R"(malformed comparison: mod("k") > 1)"},
      {R"(mod(k) > "1")", R"(malformed comparison: mod(k) > "1")"},
      {R"(mod("k" > "1")", R"(malformed comparison: mod("k" > "1")"},
      {R"(mod("k") ! "1")", R"(malformed comparison: mod("k") ! "1" (unknown operator !))"},
      {R"(size("k") > "1")", R"(malformed comparison: size("k") > "1" (unknown target size))"},
      {R"(mod("k") > "x")", R"(invalid txn compare request: mod("k") > "x")"},
      {R"(lease("k") = "xyz")", R"(invalid txn compare request: lease("k") = "xyz")"},
      {R"(value("k\q") = "x")", R"(malformed comparison: value("k\q") = "x")"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<pb::Compare> cmp = ParseCompare(c.line);
    ASSERT_FALSE(cmp.ok()) << c.line;
    EXPECT_EQ(cmp.status().message(), c.message);
    EXPECT_EQ(ExitCodeOf(cmp.status()), kExitInvalidInput) << c.line;
  }
}

TEST(ArgifyTest, QuotesAndWhitespace) {
  absl::StatusOr<std::vector<std::string>> args =
      Argify("put  \"a key\"\t'single quoted' plain\"not\"quoted \"esc\\tx\"");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args, (std::vector<std::string>{"put", "a key", "single quoted", "plain\"not\"quoted",
                                             "esc\tx"}));
  args = Argify("   ");
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(args->empty());
}

TEST(ParseRequestOpTest, PutGetDelWithTheirFlags) {
  absl::StatusOr<pb::RequestOp> op = ParseRequestOp("put k \"v 1\" --prev-kv --lease=1f");
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_TRUE(op->has_request_put());
  EXPECT_EQ(op->request_put().key(), "k");
  EXPECT_EQ(op->request_put().value(), "v 1");
  EXPECT_TRUE(op->request_put().prev_kv());
  EXPECT_EQ(op->request_put().lease(), 0x1f);

  op = ParseRequestOp("get abc --prefix --limit 2 --keys-only");
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_TRUE(op->has_request_range());
  EXPECT_EQ(op->request_range().key(), "abc");
  EXPECT_EQ(op->request_range().range_end(), "abd");
  EXPECT_EQ(op->request_range().limit(), 2);
  EXPECT_TRUE(op->request_range().keys_only());

  op = ParseRequestOp("get a z");
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->request_range().range_end(), "z");

  op = ParseRequestOp("del k --from-key --prev-kv");
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_TRUE(op->has_request_delete_range());
  EXPECT_EQ(op->request_delete_range().key(), "k");
  EXPECT_EQ(op->request_delete_range().range_end(), std::string(1, '\0'));
  EXPECT_TRUE(op->request_delete_range().prev_kv());
}

TEST(ParseRequestOpTest, Errors) {
  struct Case {
    const char* line;
    const char* message;
    int exit_code;
  };
  const Case cases[] = {
      {"get", "invalid txn compare request: get", kExitInvalidInput},
      {"foo bar", "invalid txn request: foo bar", kExitInvalidInput},
      {"get k --bogus", "invalid txn request: get k --bogus", kExitInvalidInput},
      {"get k -w json", "invalid txn request: get k -w json", kExitInvalidInput},
      // put without a value would read stdin in etcdctl; inside txn there is none.
      {"put k", "put command needs 1 argument and input from stdin or 2 arguments", kExitBadArgs},
      {"get k --prefix --from-key",
       "`--prefix` and `--from-key` cannot be set at the same time, choose one", kExitBadArgs},
  };
  for (const Case& c : cases) {
    absl::StatusOr<pb::RequestOp> op = ParseRequestOp(c.line);
    ASSERT_FALSE(op.ok()) << c.line;
    EXPECT_EQ(op.status().message(), c.message);
    EXPECT_EQ(ExitCodeOf(op.status()), c.exit_code) << c.line;
  }
}

TEST(ReadTxnTest, ThreeSectionsEachEndedByAnEmptyLine) {
  std::istringstream in(
      "mod(\"k\") > \"0\"\n"
      "  value(\"k\") = \"v\"  \n"
      "\n"
      "put k v2\n"
      "get k\n"
      "\n"
      "del k\n"
      "\n");
  absl::StatusOr<pb::TxnRequest> txn = ReadTxn(in, nullptr);
  ASSERT_TRUE(txn.ok()) << txn.status();
  ASSERT_EQ(txn->compare_size(), 2);
  EXPECT_EQ(txn->compare(1).value(), "v");
  ASSERT_EQ(txn->success_size(), 2);
  EXPECT_TRUE(txn->success(0).has_request_put());
  EXPECT_TRUE(txn->success(1).has_request_range());
  ASSERT_EQ(txn->failure_size(), 1);
  EXPECT_TRUE(txn->failure(0).has_request_delete_range());
}

TEST(ReadTxnTest, EmptySectionsAreAllowed) {
  std::istringstream in("\n\n\n");
  absl::StatusOr<pb::TxnRequest> txn = ReadTxn(in, nullptr);
  ASSERT_TRUE(txn.ok()) << txn.status();
  EXPECT_EQ(txn->compare_size() + txn->success_size() + txn->failure_size(), 0);
}

TEST(ReadTxnTest, InputEndingBeforeTheLastEmptyLineIsEof) {
  for (const char* text : {"", "mod(\"k\") > \"0\"\n", "\nput k v\n\nget k\n", "\n\nget k"}) {
    std::istringstream in(text);
    absl::StatusOr<pb::TxnRequest> txn = ReadTxn(in, nullptr);
    ASSERT_FALSE(txn.ok()) << text;
    EXPECT_EQ(txn.status().message(), "EOF");
    EXPECT_EQ(ExitCodeOf(txn.status()), kExitInvalidInput);
  }
}

TEST(ReadTxnTest, InteractivePrompts) {
  std::istringstream in("\n\n\n");
  std::ostringstream prompts;
  ASSERT_TRUE(ReadTxn(in, &prompts).ok());
  EXPECT_EQ(prompts.str(),
            "compares:\n"
            "success requests (get, put, del):\n"
            "failure requests (get, put, del):\n");
}

TEST(ReadTxnTest, FirstBadLineStopsReading) {
  std::istringstream in("mod(\"k\") > \"0\"\nnonsense\n\n\n\n");
  absl::StatusOr<pb::TxnRequest> txn = ReadTxn(in, nullptr);
  ASSERT_FALSE(txn.ok());
  EXPECT_EQ(txn.status().message(), "malformed comparison: nonsense");
}

// Arbitrary input is rejected or accepted, never crashes (run under ASan/UBSan too).
TEST(TxnParserRobustnessTest, RandomLinesNeverCrash) {
  std::mt19937 rng(20261125);
  const std::string alphabet = "modverclasuinput()\"`'\\ \t=<>!-xu0123456789abcdefpgt";
  for (int i = 0; i < 20000; ++i) {
    std::string line;
    const int length = static_cast<int>(rng() % 40);
    for (int k = 0; k < length; ++k) {
      line.push_back(rng() % 10 == 0 ? static_cast<char>(rng() % 256)
                                     : alphabet[rng() % alphabet.size()]);
    }
    absl::StatusOr<pb::Compare> cmp = ParseCompare(line);
    if (!cmp.ok()) {
      EXPECT_NE(ExitCodeOf(cmp.status()), 0);
    }
    absl::StatusOr<pb::RequestOp> op = ParseRequestOp(line);
    if (!op.ok()) {
      EXPECT_NE(ExitCodeOf(op.status()), 0);
    }
    std::istringstream in(line + "\n" + line + "\n\n\n\n");
    (void)ReadTxn(in, nullptr);
  }
}

}  // namespace
}  // namespace kvd::kvctl
