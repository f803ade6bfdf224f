// The kvctl binary end to end, against a real server (KVD_TEST_SERVER, etcd by default).
// Expected outputs are etcdctl's (captured from etcdctl 3.4.23 against etcd 3.4.23).
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/client/test_server.h"

namespace kvd::kvctl {
namespace {

using testing::RunResult;

class KvctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<testing::TestServer>> server = testing::TestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "server did not start"; }

  // Runs kvctl with --endpoints pointing at the test server.
  static RunResult Kvctl(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), "--endpoints=" + server_->endpoint());
    return Raw(args, input);
  }
  static RunResult Raw(const std::vector<std::string>& args, const std::string& input = "") {
    return testing::RunProcess(KVCTL_BINARY, args, input);
  }
  // The store revision after a write, read from put -w json.
  static int64_t PutRevision(const std::string& key, const std::string& value) {
    RunResult r = Kvctl({"put", key, value, "-w", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    int64_t revision = -1;
    if (std::regex_search(r.out, m, std::regex(R"re("revision":(\d+))re"))) {
      EXPECT_TRUE(absl::SimpleAtoi(m[1].str(), &revision));
    }
    return revision;
  }

  static testing::TestServer* server_;
};

testing::TestServer* KvctlTest::server_ = nullptr;

#define EXPECT_RUN(result, code, stdout_text, stderr_text) \
  do {                                                     \
    const RunResult& r_ = (result);                        \
    EXPECT_EQ(r_.exit_code, code) << r_.err;               \
    EXPECT_EQ(r_.out, stdout_text);                        \
    EXPECT_EQ(r_.err, stderr_text);                        \
  } while (0)

TEST_F(KvctlTest, PutThenGet) {
  EXPECT_RUN(Kvctl({"put", "pg/k1", "v1"}), 0, "OK\n", "");
  EXPECT_RUN(Kvctl({"get", "pg/k1"}), 0, "pg/k1\nv1\n", "");
  EXPECT_RUN(Kvctl({"get", "pg/missing"}), 0, "", "");
  EXPECT_RUN(Kvctl({"put", "pg/k1", "v2", "--prev-kv"}), 0, "OK\npg/k1\nv1\n", "");
  EXPECT_RUN(Kvctl({"put", "pg/stdin"}, "from stdin"), 0, "OK\n", "");
  EXPECT_RUN(Kvctl({"get", "pg/stdin", "--print-value-only"}), 0, "from stdin\n", "");
  EXPECT_RUN(Kvctl({"put", "pg/nothing"}), 128, "",
             "Error: put command needs 1 argument and input from stdin or 2 arguments\n");
  EXPECT_RUN(Kvctl({"--hex", "get", "pg/k1"}), 0, "\\x70\\x67\\x2f\\x6b\\x31\n\\x76\\x32\n", "");
}

TEST_F(KvctlTest, FlagsMayComeBeforeOrAfterArguments) {
  EXPECT_RUN(Kvctl({"put", "fl/a", "1"}), 0, "OK\n", "");
  EXPECT_RUN(Kvctl({"put", "fl/b", "2"}), 0, "OK\n", "");
  const std::string both = "fl/a\n1\nfl/b\n2\n";
  EXPECT_RUN(Kvctl({"get", "fl/", "--prefix"}), 0, both, "");
  EXPECT_RUN(Kvctl({"get", "--prefix", "fl/"}), 0, both, "");
  EXPECT_RUN(Raw({"get", "fl/", "--prefix", "--endpoints", server_->endpoint()}), 0, both, "");
  EXPECT_RUN(
      Raw({"--endpoints=http://" + server_->endpoint(), "-w", "simple", "get", "--prefix", "fl/"}),
      0, both, "");
  setenv("ETCDCTL_ENDPOINTS", server_->endpoint().c_str(), 1);
  RunResult from_env = Raw({"get", "fl/a"});
  unsetenv("ETCDCTL_ENDPOINTS");
  EXPECT_RUN(from_env, 0, "fl/a\n1\n", "");
}

TEST_F(KvctlTest, GetOptions) {
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"go/a", "3"}, {"go/b", "1"}, {"go/c", "2"}, {"~fk/a", "x"}, {"~fk/b", "y"}}) {
    ASSERT_EQ(Kvctl({"put", k, v}).exit_code, 0);
  }
  EXPECT_RUN(Kvctl({"get", "go/a", "go/c"}), 0, "go/a\n3\ngo/b\n1\n", "");
  EXPECT_RUN(Kvctl({"get", "go/", "--prefix", "--keys-only"}), 0, "go/a\n\ngo/b\n\ngo/c\n\n", "");
  EXPECT_RUN(Kvctl({"get", "go/", "--prefix", "--limit", "1"}), 0, "go/a\n3\n", "");
  EXPECT_RUN(Kvctl({"get", "go/", "--prefix", "--order=DESCEND"}), 0, "go/c\n2\ngo/b\n1\ngo/a\n3\n",
             "");
  EXPECT_RUN(Kvctl({"get", "go/", "--prefix", "--sort-by=VALUE", "--print-value-only"}), 0,
             "1\n2\n3\n", "");
  // No other test writes keys after "~fk/" ('~' sorts after every key they use).
  EXPECT_RUN(Kvctl({"get", "~fk/a", "--from-key", "--keys-only"}), 0, "~fk/a\n\n~fk/b\n\n", "");
  EXPECT_RUN(Kvctl({"get", "go/", "--prefix", "--consistency=s", "--limit=1"}), 0, "go/a\n3\n", "");
  EXPECT_RUN(Kvctl({"get", "go/", "--prefix", "--count-only"}), 0, "3\n", "");
}

TEST_F(KvctlTest, JsonOutputHasEtcdctlsShape) {
  const int64_t rev = PutRevision("js/k", "v");
  ASSERT_GT(rev, 0);
  RunResult get = Kvctl({"get", "js/k", "-w", "json"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  const std::string header = R"re(\{"header":\{"cluster_id":\d+,"member_id":\d+,"revision":)re";
  const std::string r = absl::StrCat(rev);
  EXPECT_TRUE(std::regex_match(
      get.out,
      std::regex(absl::StrCat(header, r, R"re(,"raft_term":\d+\},"kvs":\[\{"key":")re",
                              absl::Base64Escape("js/k"), R"re(","create_revision":)re", r,
                              R"re(,"mod_revision":)re", r, R"re(,"version":1,"value":")re",
                              absl::Base64Escape("v"), R"re("\}\],"count":1\}\n)re"))))
      << get.out;

  RunResult del = Kvctl({"del", "js/k", "-w", "json"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_TRUE(std::regex_match(
      del.out,
      std::regex(absl::StrCat(header, rev + 1, R"re(,"raft_term":\d+\},"deleted":1\}\n)re"))))
      << del.out;

  RunResult empty = Kvctl({"get", "js/k", "-w", "json"});
  EXPECT_TRUE(std::regex_match(
      empty.out, std::regex(absl::StrCat(header, rev + 1, R"re(,"raft_term":\d+\}\}\n)re"))))
      << empty.out;
}

TEST_F(KvctlTest, Delete) {
  ASSERT_EQ(Kvctl({"put", "dl/a", "1"}).exit_code, 0);
  ASSERT_EQ(Kvctl({"put", "dl/b", "2"}).exit_code, 0);
  ASSERT_EQ(Kvctl({"put", "dl/c", "3"}).exit_code, 0);
  EXPECT_RUN(Kvctl({"del", "dl/a"}), 0, "1\n", "");
  EXPECT_RUN(Kvctl({"del", "dl/a"}), 0, "0\n", "");
  EXPECT_RUN(Kvctl({"del", "dl/", "--prefix", "--prev-kv"}), 0, "2\ndl/b\n2\ndl/c\n3\n", "");
  EXPECT_RUN(Kvctl({"del"}), 128, "",
             "Error: del command needs one argument as key and an optional argument as "
             "range_end\n");
}

TEST_F(KvctlTest, TxnSuccessAndFailure) {
  ASSERT_EQ(Kvctl({"put", "tx/k", "v"}).exit_code, 0);
  const std::string txn =
      "value(\"tx/k\") = \"v\"\n"
      "\n"
      "put tx/k v2\n"
      "get tx/k\n"
      "\n"
      "get tx/none\n"
      "\n";
  EXPECT_RUN(Kvctl({"txn"}, txn), 0, "SUCCESS\n\nOK\n\ntx/k\nv2\n", "");
  // Now the value is v2: the failure branch runs.
  EXPECT_RUN(Kvctl({"txn"}, txn), 0, "FAILURE\n\n", "");
  EXPECT_RUN(Kvctl({"txn"}, "mod(\"tx/k\") > \"0\"\n\ndel tx/k\n\n\n"), 0, "SUCCESS\n\n1\n", "");
  EXPECT_RUN(Kvctl({"txn", "-i"}, "\n\n\n"), 0,
             "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, "
             "del):\nSUCCESS\n",
             "");

  RunResult json = Kvctl({"txn", "-w", "json"}, "\nput tx/j 1\n\n\n");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_TRUE(std::regex_match(
      json.out,
      std::regex(R"re(\{"header":\{[^}]*\},"succeeded":true,"responses":\[)re"
                 R"re(\{"Response":\{"ResponsePut":\{"header":\{"revision":\d+\}\}\}\}\]\}\n)re")))
      << json.out;
}

TEST_F(KvctlTest, TxnInputErrors) {
  EXPECT_RUN(Kvctl({"txn"}, "bogus\n\n\n\n"), 3, "", "Error: malformed comparison: bogus\n");
  EXPECT_RUN(Kvctl({"txn"}, "ver(\"k\") > \"x\"\n\n\n\n"), 3, "",
             "Error: invalid txn compare request: ver(\"k\") > \"x\"\n");
  EXPECT_RUN(Kvctl({"txn"}, "\nfoo bar\n\n\n"), 3, "", "Error: invalid txn request: foo bar\n");
  EXPECT_RUN(Kvctl({"txn"}, "\n\nget k\n"), 3, "", "Error: EOF\n");
  EXPECT_RUN(Kvctl({"txn", "extra"}, "\n\n\n"), 128, "",
             "Error: txn command does not accept argument\n");
}

TEST_F(KvctlTest, CompactionAndCompactedRevisions) {
  const int64_t first = PutRevision("cp/k", "1");
  const int64_t second = PutRevision("cp/k", "2");
  ASSERT_GT(first, 0);
  ASSERT_EQ(second, first + 1);
  EXPECT_RUN(Kvctl({"compaction", absl::StrCat(second)}), 0,
             absl::StrCat("compacted revision ", second, "\n"), "");
  EXPECT_RUN(Kvctl({"get", "cp/k", absl::StrCat("--rev=", first)}), 1, "",
             "Error: etcdserver: mvcc: required revision has been compacted\n");
  EXPECT_RUN(Kvctl({"get", "cp/k", absl::StrCat("--rev=", second)}), 0, "cp/k\n2\n", "");
  EXPECT_RUN(Kvctl({"compact", absl::StrCat(second), "--physical"}), 1, "",
             "Error: etcdserver: mvcc: required revision has been compacted\n");
  EXPECT_RUN(Kvctl({"compaction", "abc"}), 1, "",
             "Error: strconv.ParseInt: parsing \"abc\": invalid syntax\n");
  EXPECT_RUN(Kvctl({"compaction"}), 128, "", "Error: compaction command needs 1 argument\n");
}

TEST_F(KvctlTest, EndpointStatus) {
  const std::string ep = server_->endpoint();
  RunResult simple = Kvctl({"endpoint", "status"});
  EXPECT_EQ(simple.exit_code, 0) << simple.err;
  EXPECT_TRUE(std::regex_match(
      simple.out,
      std::regex(absl::StrCat(ep, R"re(, [0-9a-f]+, [^,]+, \d+(\.\d)? [kMGT]?B, true, false, )re"
                                  R"re(\d+, \d+, \d+, \n)re"))))
      << simple.out;

  RunResult json = Kvctl({"endpoint", "status", "-w", "json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_TRUE(std::regex_match(
      json.out, std::regex(absl::StrCat(
                    R"re(\[\{"Endpoint":")re", ep,
                    R"re(","Status":\{"header":\{"cluster_id":\d+,.*"version":".*)re",
                    R"re("dbSize":\d+,"leader":\d+,"raftIndex":\d+,"raftTerm":\d+.*\}\}\]\n)re"))))
      << json.out;

  RunResult table = Kvctl({"endpoint", "status", "-w", "table"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  const std::vector<std::string> lines = absl::StrSplit(table.out, '\n');
  ASSERT_EQ(lines.size(), 6u) << table.out;  // 5 lines and the empty rest after the last \n
  // Column widths follow the contents (e.g. a member id may have 15 or 16 hex digits).
  EXPECT_TRUE(std::regex_match(
      lines[1],
      std::regex(R"re(\| +ENDPOINT +\| +ID +\| +VERSION +\| +DB SIZE +\| +IS LEADER +)re"
                 R"re(\| +IS LEARNER +\| +RAFT TERM +\| +RAFT INDEX +\| +RAFT APPLIED INDEX +)re"
                 R"re(\| +ERRORS +\|)re")))
      << lines[1];
  EXPECT_TRUE(absl::StartsWith(lines[3], absl::StrCat("| ", ep, " | "))) << lines[3];
  EXPECT_EQ(lines[0], lines[2]);
  EXPECT_EQ(lines[0], lines[4]);

  // One unreachable endpoint: reported on stderr, the others still printed, exit 1.
  const std::string dead = absl::StrCat("127.0.0.1:", testing::FreePort());
  RunResult partial = Raw({"--endpoints=" + dead + "," + ep, "--dial-timeout=300ms",
                           "--command-timeout=1s", "endpoint", "status"});
  EXPECT_EQ(partial.exit_code, 1);
  EXPECT_TRUE(absl::StartsWith(partial.err, "Failed to get the status of endpoint " + dead))
      << partial.err;
  EXPECT_TRUE(absl::StartsWith(partial.out, ep + ", ")) << partial.out;
}

TEST_F(KvctlTest, EndpointCommandsWithClusterUseTheMembersClientUrls) {
  const std::string url = "http://" + server_->endpoint();
  RunResult status = Kvctl({"endpoint", "status", "--cluster"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(absl::StartsWith(status.out, url + ", ")) << status.out;
  RunResult health = Kvctl({"endpoint", "health", "--cluster"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_TRUE(absl::StartsWith(health.err, url + " is healthy")) << health.err;
}

TEST_F(KvctlTest, EndpointHealthAndHashKV) {
  const std::string ep = server_->endpoint();
  RunResult health = Kvctl({"endpoint", "health"});
  EXPECT_EQ(health.exit_code, 0);
  EXPECT_EQ(health.out, "");
  EXPECT_TRUE(std::regex_match(
      health.err, std::regex(absl::StrCat(ep,
                                          " is healthy: successfully committed proposal: took = "
                                          R"re([0-9.]+(ns|µs|ms|s)\n)re"))))
      << health.err;
  RunResult json = Kvctl({"endpoint", "health", "-w", "json"});
  EXPECT_TRUE(std::regex_match(
      json.out, std::regex(absl::StrCat(R"re(\[\{"endpoint":")re", ep,
                                        R"re(","health":true,"took":"[^"]+"\}\]\n)re"))))
      << json.out;

  const std::string dead = absl::StrCat("127.0.0.1:", testing::FreePort());
  RunResult sick = Raw({"--endpoints=" + dead, "--dial-timeout=200ms", "--command-timeout=500ms",
                        "endpoint", "health"});
  EXPECT_EQ(sick.exit_code, 1);
  EXPECT_TRUE(absl::StartsWith(sick.err, dead + " is unhealthy: failed to commit proposal: "))
      << sick.err;
  EXPECT_TRUE(absl::EndsWith(sick.err, "Error: unhealthy cluster\n")) << sick.err;

  RunResult hash = Kvctl({"endpoint", "hashkv"});
  EXPECT_EQ(hash.exit_code, 0) << hash.err;
  EXPECT_TRUE(std::regex_match(hash.out, std::regex(absl::StrCat(ep, R"re(, \d+\n)re"))))
      << hash.out;
}

TEST_F(KvctlTest, WatchReplaysHistoryFromARevision) {
  const int64_t start = PutRevision("wt/a", "1");
  ASSERT_GT(start, 0);
  ASSERT_EQ(Kvctl({"put", "wt/a", "2"}).exit_code, 0);
  ASSERT_EQ(Kvctl({"del", "wt/a"}).exit_code, 0);
  ASSERT_EQ(Kvctl({"put", "wx", "outside"}).exit_code, 0);
  // A watch runs until it is interrupted: give it time to replay, then stop it.
  RunResult r = testing::RunProcess(KVCTL_BINARY,
                                    {"--endpoints=" + server_->endpoint(), "watch", "wt/",
                                     "--prefix", "--prev-kv", absl::StrCat("--rev=", start)},
                                    "", absl::Milliseconds(2500));
  EXPECT_EQ(r.exit_code, -1) << "exited by itself: " << r.err;
  EXPECT_EQ(r.out, "PUT\nwt/a\n1\nPUT\nwt/a\n1\nwt/a\n2\nDELETE\nwt/a\n2\nwt/a\n\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(KvctlTest, WatchOfACompactedRevisionIsCanceledByTheServer) {
  const int64_t first = PutRevision("wc/a", "1");
  const int64_t second = PutRevision("wc/a", "2");
  ASSERT_EQ(Kvctl({"compaction", absl::StrCat(second)}).exit_code, 0);
  EXPECT_RUN(Kvctl({"watch", "wc/a", absl::StrCat("--rev=", first)}), 5, "",
             "watch was canceled (etcdserver: mvcc: required revision has been compacted)\n"
             "Error: watch is canceled by the server\n");
  EXPECT_RUN(Kvctl({"watch"}), 128, "", "Error: bad number of arguments\n");
  EXPECT_RUN(Kvctl({"watch", "a", "b", "--prefix"}), 128, "",
             "Error: `range_end` and `--prefix` are mutually exclusive\n");
}

TEST_F(KvctlTest, Leases) {
  RunResult grant = Kvctl({"lease", "grant", "60"});
  ASSERT_EQ(grant.exit_code, 0) << grant.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(grant.out, m,
                               std::regex(R"re(lease ([0-9a-f]{16}) granted with TTL\(60s\)\n)re")))
      << grant.out;
  const std::string id = m[1].str();
  EXPECT_RUN(Kvctl({"put", "ls/k", "v", "--lease=" + id}), 0, "OK\n", "");

  RunResult ttl = Kvctl({"lease", "timetolive", id, "--keys"});
  EXPECT_EQ(ttl.exit_code, 0) << ttl.err;
  EXPECT_TRUE(std::regex_match(
      ttl.out,
      std::regex(
          "lease " + id +
          R"re( granted with TTL\(60s\), remaining\(\d+s\), attached keys\(\[ls/k\]\)\n)re")))
      << ttl.out;
  RunResult list = Kvctl({"lease", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(list.out, id + "\n")) << list.out;
  EXPECT_RUN(Kvctl({"lease", "keep-alive", "--once", id}), 0,
             "lease " + id + " keepalived with TTL(60)\n", "");

  EXPECT_RUN(Kvctl({"lease", "revoke", id}), 0, "lease " + id + " revoked\n", "");
  EXPECT_RUN(Kvctl({"get", "ls/k"}), 0, "", "");  // the lease took its key with it
  EXPECT_RUN(Kvctl({"lease", "timetolive", id}), 0, "lease " + id + " already expired\n", "");
  EXPECT_RUN(Kvctl({"lease", "revoke", id}), 1, "",
             "Error: failed to revoke lease (etcdserver: requested lease not found)\n");
  EXPECT_RUN(Kvctl({"lease", "keep-alive", "--once", id}), 2, "",
             "Error: etcdserver: requested lease not found\n");
  EXPECT_RUN(Kvctl({"lease", "grant", "abc"}), 128, "",
             "Error: bad TTL (strconv.ParseInt: parsing \"abc\": invalid syntax)\n");
  EXPECT_RUN(Kvctl({"lease", "revoke", "zz"}), 128, "",
             "Error: bad lease ID arg (strconv.ParseInt: parsing \"zz\": invalid syntax), "
             "expecting ID in Hex\n");
}

TEST_F(KvctlTest, MemberList) {
  RunResult r = Kvctl({"member", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(
      r.out, std::regex(absl::StrCat(R"re([0-9a-f]+, started, [^,]+, http://127\.0\.0\.1:\d+, )re",
                                     "http://", server_->endpoint(), ", false\n"))))
      << r.out;
}

TEST_F(KvctlTest, MembershipChangesWithALearner) {
  // A learner does not count for quorum, so adding one that never starts keeps the
  // single-member cluster available.
  const std::string peer = absl::StrCat("http://127.0.0.1:", testing::FreePort());
  RunResult add = Kvctl({"member", "add", "learner1", "--learner", "--peer-urls=" + peer});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      add.out, m, std::regex(R"re(^Member +([0-9a-f]+) added to cluster +[0-9a-f]+\n)re")))
      << add.out;
  const std::string id = m[1].str();
  EXPECT_TRUE(absl::StrContains(add.out, "\nETCD_NAME=\"learner1\"\n")) << add.out;
  EXPECT_TRUE(absl::StrContains(add.out, "learner1=" + peer)) << add.out;
  EXPECT_TRUE(absl::EndsWith(add.out, "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"" + peer +
                                          "\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"))
      << add.out;
  RunResult list = Kvctl({"member", "list"});
  EXPECT_TRUE(absl::StrContains(list.out, id + ", unstarted, , " + peer + ", , true\n"))
      << list.out;

  const std::string peer2 = absl::StrCat("http://127.0.0.1:", testing::FreePort());
  RunResult update = Kvctl({"member", "update", id, "--peer-urls=" + peer2});
  EXPECT_EQ(update.exit_code, 0) << update.err;
  EXPECT_TRUE(std::regex_match(
      update.out, std::regex(R"re(Member +[0-9a-f]+ updated in cluster +[0-9a-f]+\n)re")))
      << update.out;
  RunResult promote = Kvctl({"member", "promote", id});
  EXPECT_EQ(promote.exit_code, 1);
  EXPECT_EQ(promote.err,
            "Error: etcdserver: can only promote a learner member which is in sync with leader\n");
  RunResult remove = Kvctl({"member", "remove", id});
  EXPECT_EQ(remove.exit_code, 0) << remove.err;
  EXPECT_TRUE(std::regex_match(
      remove.out, std::regex(R"re(Member +[0-9a-f]+ removed from cluster +[0-9a-f]+\n)re")))
      << remove.out;
  EXPECT_RUN(Kvctl({"member", "remove", id}), 1, "", "Error: etcdserver: member not found\n");
  EXPECT_RUN(Kvctl({"member", "add", "x"}), 128, "", "Error: member peer urls not provided\n");
  EXPECT_RUN(Kvctl({"member", "remove", "zz"}), 128, "",
             "Error: bad member ID arg (strconv.ParseUint: parsing \"zz\": invalid syntax), "
             "expecting ID in Hex\n");
}

TEST_F(KvctlTest, MaintenanceCommands) {
  RunResult status = Kvctl({"endpoint", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const std::vector<std::string> fields = absl::StrSplit(status.out, ", ");
  ASSERT_GT(fields.size(), 2u);
  const std::string self = fields[1];
  EXPECT_RUN(Kvctl({"move-leader", self}), 0,
             absl::StrCat("Leadership transferred from ", self, " to ", self, "\n"), "");
  EXPECT_RUN(Kvctl({"move-leader", "1234"}), 1, "", "Error: etcdserver: bad leader transferee\n");
  EXPECT_RUN(Kvctl({"alarm", "list"}), 0, "", "");
  EXPECT_RUN(Kvctl({"alarm", "disarm"}), 0, "", "");
  EXPECT_RUN(Kvctl({"defrag"}), 0,
             "Finished defragmenting etcd member[" + server_->endpoint() + "]\n", "");
}

TEST_F(KvctlTest, SnapshotSave) {
  char dir_template[] = "/tmp/kvctl-snapshot-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/snap.db";
  EXPECT_RUN(Kvctl({"snapshot", "save", path}), 0, "Snapshot saved at " + path + "\n", "");
  std::error_code error;
  EXPECT_GT(std::filesystem::file_size(path, error), 0u) << error.message();
  EXPECT_FALSE(std::filesystem::exists(path + ".part"));
  EXPECT_RUN(
      Raw({"--endpoints=" + server_->endpoint() + ",127.0.0.1:1", "snapshot", "save", path + "2"}),
      5, "",
      "Error: snapshot must be requested to one selected node, not multiple [" +
          server_->endpoint() + " 127.0.0.1:1]\n");
  EXPECT_RUN(Kvctl({"snapshot", "save"}), 128, "", "Error: snapshot save expects one argument\n");
  std::filesystem::remove_all(dir_template, error);
}

TEST_F(KvctlTest, UnreachableEndpoints) {
  const std::string dead = absl::StrCat("127.0.0.1:", testing::FreePort());
  const absl::Time start = absl::Now();
  RunResult r =
      Raw({"--endpoints=" + dead, "--dial-timeout=200ms", "--command-timeout=1s", "get", "k"});
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(absl::StartsWith(r.err, "Error: context deadline exceeded")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, dead)) << r.err;

  // With a live endpoint second in the list, the command fails over to it.
  ASSERT_EQ(Kvctl({"put", "ur/k", "v"}).exit_code, 0);
  EXPECT_RUN(Raw({"--endpoints=" + dead + "," + server_->endpoint(), "get", "ur/k"}), 0,
             "ur/k\nv\n", "");
}

TEST_F(KvctlTest, UsageErrorsAndTheirExitCodes) {
  EXPECT_RUN(Kvctl({"get"}), 128, "",
             "Error: get command needs one argument as key and an optional argument as "
             "range_end\n");
  EXPECT_RUN(Kvctl({"get", "k", "-w", "table"}), 4, "",
             "Error: table not supported as output format\n");
  EXPECT_RUN(Kvctl({"get", "k", "--consistency=x"}), 4, "",
             "Error: unknown consistency flag \"x\"\n");
  EXPECT_RUN(Kvctl({"get", "k", "--bogus"}), 1, "", "Error: unknown flag: --bogus\n");
  EXPECT_RUN(Kvctl({"bogus"}), 1, "", "Error: unknown command \"bogus\" for \"kvctl\"\n");
  EXPECT_RUN(Kvctl({"get", "k", "--print-value-only", "-w", "json"}), 128, "",
             "Error: print-value-only is only for `--write-out=simple`\n");
  EXPECT_RUN(Kvctl({"put", "k", "v", "--lease=zz"}), 128, "",
             "Error: bad lease ID (strconv.ParseInt: parsing \"zz\": invalid syntax), "
             "expecting ID in Hex\n");
  EXPECT_RUN(Kvctl({"put", "k", "v", "--lease=123"}), 1, "",
             "Error: etcdserver: requested lease not found\n");
  RunResult help = Raw({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "Usage:")) << help.out;
}

// Auth changes the whole server, so this test has a server of its own.
TEST(KvctlAuthTest, UsersRolesAndAuthenticatedRequests) {
  absl::StatusOr<std::unique_ptr<testing::TestServer>> server = testing::TestServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string endpoints = "--endpoints=" + (*server)->endpoint();
  auto kvctl = [&](std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), endpoints);
    return testing::RunProcess(KVCTL_BINARY, args, input);
  };
  EXPECT_RUN(kvctl({"user", "add", "root:rootpw"}), 0, "User root created\n", "");
  EXPECT_RUN(kvctl({"user", "add", "alice", "--new-user-password=apw"}), 0, "User alice created\n",
             "");
  EXPECT_RUN(kvctl({"user", "add", "bob", "--interactive=false"}, "bobpw\n"), 0,
             "User bob created\n", "");
  EXPECT_RUN(kvctl({"role", "add", "reader"}), 0, "Role reader created\n", "");
  EXPECT_RUN(kvctl({"role", "grant-permission", "reader", "read", "/data/", "--prefix"}), 0,
             "Role reader updated\n", "");
  EXPECT_RUN(kvctl({"role", "grant-permission", "reader", "readwrite", "k1"}), 0,
             "Role reader updated\n", "");
  EXPECT_RUN(kvctl({"role", "grant-permission", "reader", "bogus", "k"}), 128, "",
             "Error: invalid permission type: bogus\n");
  EXPECT_RUN(kvctl({"role", "get", "reader"}), 0,
             "Role reader\nKV Read:\n\t[/data/, /data0) (prefix /data/)\n\tk1\nKV Write:\n\tk1\n",
             "");
  EXPECT_RUN(kvctl({"user", "grant-role", "alice", "reader"}), 0,
             "Role reader is granted to user alice\n", "");
  EXPECT_RUN(kvctl({"user", "get", "alice"}), 0, "User: alice\nRoles: reader\n", "");
  EXPECT_RUN(kvctl({"user", "list"}), 0, "alice\nbob\nroot\n", "");
  EXPECT_RUN(kvctl({"role", "list"}), 0, "reader\n", "");

  // auth enable creates the root role on the way.
  EXPECT_RUN(kvctl({"auth", "enable"}), 0, "Authentication Enabled\n", "");
  EXPECT_RUN(kvctl({"get", "k1"}), 1, "", "Error: etcdserver: user name is empty\n");
  EXPECT_RUN(kvctl({"--user", "alice:apw", "put", "k1", "v"}), 0, "OK\n", "");
  EXPECT_RUN(kvctl({"--user", "alice", "--password", "apw", "get", "k1"}), 0, "k1\nv\n", "");
  EXPECT_RUN(kvctl({"--user", "alice", "get", "k1", "--print-value-only"}, "apw\n"), 0, "v\n",
             "Password: ");
  EXPECT_RUN(kvctl({"--user", "alice:apw", "put", "/data/x", "1"}), 1, "",
             "Error: etcdserver: permission denied\n");
  EXPECT_RUN(kvctl({"--user", "bob:bobpw", "get", "k1"}), 1, "",
             "Error: etcdserver: permission denied\n");
  EXPECT_RUN(kvctl({"--user", "alice:wrong", "get", "k1"}), 1, "",
             "Error: etcdserver: authentication failed, invalid user ID or password\n");
  EXPECT_RUN(kvctl({"--user", "root:rootpw", "auth", "disable"}), 0, "Authentication Disabled\n",
             "");

  EXPECT_RUN(kvctl({"role", "revoke-permission", "reader", "/data/", "--prefix"}), 0,
             "Permission of range [/data/, /data0) is revoked from role reader\n", "");
  EXPECT_RUN(kvctl({"role", "revoke-permission", "reader", "k1"}), 0,
             "Permission of key k1 is revoked from role reader\n", "");
  EXPECT_RUN(kvctl({"user", "revoke-role", "alice", "reader"}), 0,
             "Role reader is revoked from user alice\n", "");
  EXPECT_RUN(kvctl({"user", "passwd", "alice", "--interactive=false"}, "newpw\n"), 0,
             "Password updated\n", "");
  EXPECT_RUN(kvctl({"role", "delete", "reader"}), 0, "Role reader deleted\n", "");
  EXPECT_RUN(kvctl({"user", "delete", "alice"}), 0, "User alice deleted\n", "");
  EXPECT_RUN(kvctl({"user", "get", "alice"}), 1, "", "Error: etcdserver: user name not found\n");
}

}  // namespace
}  // namespace kvd::kvctl
