// Expected strings below were captured from etcdctl 3.4.23 talking to etcd 3.4.23.
#include "client/kvctl/go_format.h"

#include <random>
#include <sstream>

#include "api/etcdserverpb/rpc.pb.h"
#include "client/kvctl/exit.h"
#include "gtest/gtest.h"

namespace kvd::kvctl {
namespace {

namespace pb = ::etcdserverpb;

void SetHeader(pb::ResponseHeader* h, int64_t revision) {
  h->set_cluster_id(11355051438336107298ULL);
  h->set_member_id(7667288354922499381ULL);
  h->set_revision(revision);
  h->set_raft_term(2);
}

mvccpb::KeyValue Kv(const std::string& key, const std::string& value, int64_t create, int64_t mod,
                    int64_t version) {
  mvccpb::KeyValue kv;
  kv.set_key(key);
  kv.set_value(value);
  kv.set_create_revision(create);
  kv.set_mod_revision(mod);
  kv.set_version(version);
  return kv;
}

TEST(EtcdJsonTest, RangeResponseAsEtcdctlPrintsIt) {
  pb::RangeResponse r;
  SetHeader(r.mutable_header(), 3);
  *r.add_kvs() = Kv("foo", "bar2", 2, 3, 2);
  r.set_count(1);
  EXPECT_EQ(EtcdJson(r),
            R"({"header":{"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":3,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,)"
            R"("mod_revision":3,"version":2,"value":"YmFyMg=="}],"count":1})");
}

TEST(EtcdJsonTest, ZeroValuesAreLeftOut) {
  pb::RangeResponse empty;
  EXPECT_EQ(EtcdJson(empty), "{}");
  pb::DeleteRangeResponse del;
  SetHeader(del.mutable_header(), 5);
  del.set_deleted(1);
  EXPECT_EQ(EtcdJson(del),
            R"({"header":{"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":5,"raft_term":2},"deleted":1})");
  // A present but empty message is printed, an absent one is not.
  pb::PutResponse put;
  put.mutable_prev_kv();
  EXPECT_EQ(EtcdJson(put), R"({"prev_kv":{}})");
}

TEST(EtcdJsonTest, TxnResponseOneofsUseGoFieldNames) {
  pb::TxnResponse t;
  SetHeader(t.mutable_header(), 7);
  t.set_succeeded(true);
  t.add_responses()->mutable_response_put()->mutable_header()->set_revision(7);
  pb::RangeResponse* range = t.add_responses()->mutable_response_range();
  range->mutable_header()->set_revision(7);
  *range->add_kvs() = Kv("foo2", "x", 4, 4, 1);
  range->set_count(1);
  t.add_responses()->mutable_response_delete_range()->mutable_header()->set_revision(7);
  t.add_responses();  // no member set: Go prints a nil interface as null
  EXPECT_EQ(EtcdJson(t),
            R"({"header":{"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":7,"raft_term":2},"succeeded":true,"responses":[)"
            R"({"Response":{"ResponsePut":{"header":{"revision":7}}}},)"
            R"({"Response":{"ResponseRange":{"header":{"revision":7},"kvs":[{"key":"Zm9vMg==",)"
            R"("create_revision":4,"mod_revision":4,"version":1,"value":"eA=="}],"count":1}}},)"
            R"({"Response":{"ResponseDeleteRange":{"header":{"revision":7}}}},)"
            R"({"Response":null}]})");
}

TEST(EtcdJsonTest, StatusResponseKeepsCamelCaseProtoNames) {
  pb::StatusResponse s;
  SetHeader(s.mutable_header(), 5);
  s.set_version("3.4.23");
  s.set_dbsize(24576);
  s.set_leader(7667288354922499381ULL);
  s.set_raftindex(9);
  s.set_raftterm(2);
  s.set_raftappliedindex(9);
  s.set_dbsizeinuse(16384);
  EXPECT_EQ(EtcdJson(s),
            R"({"header":{"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":5,"raft_term":2},"version":"3.4.23","dbSize":24576,)"
            R"("leader":7667288354922499381,"raftIndex":9,"raftTerm":2,"raftAppliedIndex":9,)"
            R"("dbSizeInUse":16384})");
}

TEST(GoJsonStringTest, EscapesLikeGo) {
  EXPECT_EQ(GoJsonString("plain"), R"("plain")");
  EXPECT_EQ(GoJsonString("q\"b\\n\nt\tr\r"), R"("q\"b\\n\nt\tr\r")");
  EXPECT_EQ(GoJsonString(std::string("\x01<>&", 4)), R"("\u0001\u003c\u003e\u0026")");
  EXPECT_EQ(GoJsonString("\xc3\xa9"), "\"\xc3\xa9\"");  // valid UTF-8 kept
  EXPECT_EQ(GoJsonString("a\xff"
                         "b"),
            R"("a\ufffdb")");  // invalid byte replaced
  EXPECT_EQ(GoJsonString("\xe2\x80\xa8"), R"("\u2028")");
}

TEST(GoQuoteTest, EscapesLikeStrconvQuote) {
  EXPECT_EQ(GoQuote("fk"), R"("fk")");
  EXPECT_EQ(GoQuote("a\tb\x01\xc3\xa9"), "\"a\\tb\\x01\xc3\xa9\"");  // captured from etcdctl
  EXPECT_EQ(GoQuote("\xff\x7f\xc2\xa0\xe2\x80\xa8x"), R"("\xff\x7f\u00a0\u2028x")");
  EXPECT_EQ(GoQuote("q\"b\\"), R"("q\"b\\")");
  EXPECT_EQ(GoQuote("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");  // printable emoji kept
}

TEST(QuotingRobustnessTest, RandomBytesGiveWellFormedLiterals) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 24, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 256);
    for (const std::string& quoted : {GoQuote(bytes), GoJsonString(bytes)}) {
      ASSERT_GE(quoted.size(), 2u);
      EXPECT_EQ(quoted.front(), '"');
      EXPECT_EQ(quoted.back(), '"');
      // No raw control characters survive.
      for (char c : quoted) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20);
    }
  }
}

TEST(GoCamelCaseTest, ProtocGenGoRules) {
  EXPECT_EQ(GoCamelCase("response_put"), "ResponsePut");
  EXPECT_EQ(GoCamelCase("request_delete_range"), "RequestDeleteRange");
  EXPECT_EQ(GoCamelCase("target_union"), "TargetUnion");
  EXPECT_EQ(GoCamelCase("remaining_TTL"), "Remaining_TTL");
  EXPECT_EQ(GoCamelCase("_x"), "XX");  // a leading underscore becomes X
  EXPECT_EQ(GoCamelCase("a1b"), "A1B");
}

TEST(HumanizeBytesTest, SiUnitsLikeGoHumanize) {
  EXPECT_EQ(HumanizeBytes(0), "0 B");
  EXPECT_EQ(HumanizeBytes(9), "9 B");
  EXPECT_EQ(HumanizeBytes(10), "10 B");
  EXPECT_EQ(HumanizeBytes(999), "999 B");
  EXPECT_EQ(HumanizeBytes(1000), "1.0 kB");
  EXPECT_EQ(HumanizeBytes(1500), "1.5 kB");
  EXPECT_EQ(HumanizeBytes(16384), "16 kB");
  EXPECT_EQ(HumanizeBytes(24576), "25 kB");
  EXPECT_EQ(HumanizeBytes(2100000), "2.1 MB");
  EXPECT_EQ(HumanizeBytes(3000000000ULL), "3.0 GB");
}

TEST(GoDurationTest, FormatsLikeTimeDurationString) {
  EXPECT_EQ(GoDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(GoDuration(absl::Nanoseconds(999)), "999ns");
  EXPECT_EQ(GoDuration(absl::Microseconds(512)), "512µs");
  EXPECT_EQ(GoDuration(absl::Nanoseconds(1500)), "1.5µs");
  EXPECT_EQ(GoDuration(absl::Nanoseconds(1574030)), "1.57403ms");
  EXPECT_EQ(GoDuration(absl::Milliseconds(2500)), "2.5s");
  EXPECT_EQ(GoDuration(absl::Seconds(60)), "1m0s");
  EXPECT_EQ(GoDuration(absl::Hours(1)), "1h0m0s");
  EXPECT_EQ(GoDuration(absl::Seconds(3723) + absl::Milliseconds(5)), "1h2m3.005s");
  EXPECT_EQ(GoDuration(-absl::Seconds(2)), "-2s");
}

TEST(RenderTableTest, MatchesEtcdctlEndpointStatusTable) {
  EXPECT_EQ(RenderTable({"endpoint", "ID", "version", "db size", "is leader", "is learner",
                         "raft term", "raft index", "raft applied index", "errors"},
                        {{"127.0.0.1:41199", "6a67ae22c1a50d35", "3.4.23", "25 kB", "true", "false",
                          "2", "9", "9", ""}}),
            "+-----------------+------------------+---------+---------+-----------+------------+"
            "-----------+------------+--------------------+--------+\n"
            "|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER |"
            " RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |\n"
            "+-----------------+------------------+---------+---------+-----------+------------+"
            "-----------+------------+--------------------+--------+\n"
            "| 127.0.0.1:41199 | 6a67ae22c1a50d35 |  3.4.23 |   25 kB |      true |      false |"
            "         2 |          9 |                  9 |        |\n"
            "+-----------------+------------------+---------+---------+-----------+------------+"
            "-----------+------------+--------------------+--------+\n");
}

TEST(RenderTableTest, HealthTable) {
  EXPECT_EQ(RenderTable({"endpoint", "health", "took", "error"},
                        {{"127.0.0.1:41199", "true", "1.251771ms", ""}}),
            "+-----------------+--------+------------+-------+\n"
            "|    ENDPOINT     | HEALTH |    TOOK    | ERROR |\n"
            "+-----------------+--------+------------+-------+\n"
            "| 127.0.0.1:41199 |   true | 1.251771ms |       |\n"
            "+-----------------+--------+------------+-------+\n");
}

}  // namespace
}  // namespace kvd::kvctl
