// Expected strings below were captured from etcdctl 3.4.23 talking to etcd 3.4.23.
#include "client/kvctl/output.h"

#include <random>
#include <sstream>

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

class PrinterTest : public ::testing::Test {
 protected:
  Printer Make(Format format, bool hex = false) { return Printer(format, hex, out_, err_); }
  std::ostringstream out_, err_;
};

TEST_F(PrinterTest, SimpleGetPrintsKeyThenValue) {
  pb::RangeResponse r;
  *r.add_kvs() = Kv("a1", "v1", 1, 1, 1);
  *r.add_kvs() = Kv("a2", "", 2, 2, 1);  // e.g. --keys-only: an empty value line
  ASSERT_TRUE(Make(Format::kSimple).Get(r, false).ok());
  EXPECT_EQ(out_.str(), "a1\nv1\na2\n\n");
  out_.str("");
  ASSERT_TRUE(Make(Format::kSimple).Get(r, /*value_only=*/true).ok());
  EXPECT_EQ(out_.str(), "v1\n\n");
}

TEST_F(PrinterTest, HexEscapesKeysAndValues) {
  pb::RangeResponse r;
  *r.add_kvs() = Kv("sk", "from stdin", 1, 1, 1);
  ASSERT_TRUE(Make(Format::kSimple, /*hex=*/true).Get(r, false).ok());
  EXPECT_EQ(out_.str(), "\\x73\\x6b\n\\x66\\x72\\x6f\\x6d\\x20\\x73\\x74\\x64\\x69\\x6e\n");
}

TEST_F(PrinterTest, SimplePutAndDel) {
  pb::PutResponse put;
  ASSERT_TRUE(Make(Format::kSimple).Put(put).ok());
  *put.mutable_prev_kv() = Kv("k", "old", 1, 1, 1);
  ASSERT_TRUE(Make(Format::kSimple).Put(put).ok());
  pb::DeleteRangeResponse del;
  del.set_deleted(2);
  *del.add_prev_kvs() = Kv("k", "old", 1, 1, 1);
  ASSERT_TRUE(Make(Format::kSimple).Del(del).ok());
  EXPECT_EQ(out_.str(), "OK\nOK\nk\nold\n2\nk\nold\n");
}

TEST_F(PrinterTest, SimpleTxnSeparatesResponsesWithEmptyLines) {
  pb::TxnResponse t;
  t.set_succeeded(true);
  t.add_responses()->mutable_response_put();
  *t.add_responses()->mutable_response_range()->add_kvs() = Kv("foo2", "x", 4, 4, 1);
  t.add_responses()->mutable_response_delete_range();
  ASSERT_TRUE(Make(Format::kSimple).Txn(t).ok());
  EXPECT_EQ(out_.str(), "SUCCESS\n\nOK\n\nfoo2\nx\n\n0\n");
  out_.str("");
  t.set_succeeded(false);
  t.clear_responses();
  ASSERT_TRUE(Make(Format::kSimple).Txn(t).ok());
  EXPECT_EQ(out_.str(), "FAILURE\n");
}

TEST_F(PrinterTest, TableIsOnlyForEndpointCommands) {
  absl::Status status = Make(Format::kTable).Get(pb::RangeResponse(), false);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "table not supported as output format");
  EXPECT_EQ(ExitCodeOf(status), kExitBadFeature);
  EXPECT_FALSE(Make(Format::kTable).Put(pb::PutResponse()).ok());
  EXPECT_FALSE(Make(Format::kTable).Del(pb::DeleteRangeResponse()).ok());
  EXPECT_FALSE(Make(Format::kTable).Txn(pb::TxnResponse()).ok());
  EXPECT_EQ(out_.str(), "");
}

TEST_F(PrinterTest, EndpointStatusSimpleAndJson) {
  EndpointStatus s{"127.0.0.1:41199", {}};
  SetHeader(s.status.mutable_header(), 5);
  s.status.set_version("3.4.23");
  s.status.set_dbsize(24576);
  s.status.set_leader(7667288354922499381ULL);
  s.status.set_raftindex(9);
  s.status.set_raftterm(2);
  s.status.set_raftappliedindex(9);
  Make(Format::kSimple).EndpointStatuses({s});
  EXPECT_EQ(out_.str(),
            "127.0.0.1:41199, 6a67ae22c1a50d35, 3.4.23, 25 kB, true, false, 2, 9, 9, \n");
  out_.str("");
  Make(Format::kJson).EndpointStatuses({s});
  EXPECT_EQ(out_.str(),
            R"([{"Endpoint":"127.0.0.1:41199","Status":{"header":{"cluster_id":)"
            R"(11355051438336107298,"member_id":7667288354922499381,"revision":5,)"
            R"("raft_term":2},"version":"3.4.23","dbSize":24576,"leader":7667288354922499381,)"
            R"("raftIndex":9,"raftTerm":2,"raftAppliedIndex":9}}])"
            "\n");
}

TEST_F(PrinterTest, EndpointHealthSimpleGoesToStderr) {
  Make(Format::kSimple)
      .EndpointHealths({{"a:1", true, absl::Nanoseconds(2130454), ""},
                        {"b:2", false, absl::Seconds(5), "context deadline exceeded"}});
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "a:1 is healthy: successfully committed proposal: took = 2.130454ms\n"
            "b:2 is unhealthy: failed to commit proposal: context deadline exceeded\n");
  Make(Format::kJson)
      .EndpointHealths({{"a:1", true, absl::Nanoseconds(1574030), ""},
                        {"b:2", false, absl::Seconds(5), "boom"}});
  EXPECT_EQ(out_.str(), R"([{"endpoint":"a:1","health":true,"took":"1.57403ms"},)"
                        R"({"endpoint":"b:2","health":false,"took":"5s","error":"boom"}])"
                        "\n");
}

TEST_F(PrinterTest, FieldsFormat) {
  pb::RangeResponse r;
  SetHeader(r.mutable_header(), 30);
  *r.add_kvs() = Kv("fk", "v", 30, 31, 2);
  r.set_count(1);
  ASSERT_TRUE(Make(Format::kFields).Get(r, false).ok());
  EXPECT_EQ(out_.str(),
            "\"ClusterID\" : 11355051438336107298\n\"MemberID\" : 7667288354922499381\n"
            "\"Revision\" : 30\n\"RaftTerm\" : 2\n"
            "\"Key\" : \"fk\"\n\"CreateRevision\" : 30\n\"ModRevision\" : 31\n"
            "\"Version\" : 2\n\"Value\" : \"v\"\n\"Lease\" : 0\n"
            "\"More\" : false\n\"Count\" : 1\n");
  out_.str("");
  // In a txn each response prints its own (mostly empty) header.
  pb::TxnResponse t;
  SetHeader(t.mutable_header(), 37);
  t.set_succeeded(true);
  pb::DeleteRangeResponse* del = t.add_responses()->mutable_response_delete_range();
  del->mutable_header()->set_revision(37);
  ASSERT_TRUE(Make(Format::kFields).Txn(t).ok());
  EXPECT_EQ(out_.str(),
            "\"ClusterID\" : 11355051438336107298\n\"MemberID\" : 7667288354922499381\n"
            "\"Revision\" : 37\n\"RaftTerm\" : 2\n\"Succeeded\" : true\n"
            "\"ClusterID\" : 0\n\"MemberID\" : 0\n\"Revision\" : 37\n\"RaftTerm\" : 0\n"
            "\"Deleted\" : 0\n");
  out_.str("");
  EndpointStatus s{"127.0.0.1:41199", {}};
  SetHeader(s.status.mutable_header(), 31);
  s.status.set_version("3.4.23");
  s.status.set_dbsize(24576);
  s.status.set_leader(7667288354922499381ULL);
  s.status.set_raftindex(52);
  s.status.set_raftterm(2);
  s.status.set_raftappliedindex(52);
  Make(Format::kFields).EndpointStatuses({s});
  EXPECT_EQ(out_.str(),
            "\"ClusterID\" : 11355051438336107298\n\"MemberID\" : 7667288354922499381\n"
            "\"Revision\" : 31\n\"RaftTerm\" : 2\n\"Version\" : \"3.4.23\"\n"
            "\"DBSize\" : 24576\n\"Leader\" : 7667288354922499381\n\"IsLearner\" : false\n"
            "\"RaftIndex\" : 52\n\"RaftTerm\" : 2\n\"RaftAppliedIndex\" : 52\n"
            "\"Errors\" : []\n\"Endpoint\" : \"127.0.0.1:41199\"\n\n");
}

TEST_F(PrinterTest, WatchResponses) {
  pb::WatchResponse r;
  SetHeader(r.mutable_header(), 46);
  mvccpb::Event* put = r.add_events();
  *put->mutable_kv() = Kv("wj/a", "2", 44, 45, 2);
  *put->mutable_prev_kv() = Kv("wj/a", "1", 44, 44, 1);
  mvccpb::Event* del = r.add_events();
  del->set_type(mvccpb::Event::DELETE);
  del->mutable_kv()->set_key("wj/a");
  del->mutable_kv()->set_mod_revision(46);
  ASSERT_TRUE(Make(Format::kSimple).Watch(r).ok());
  EXPECT_EQ(out_.str(), "PUT\nwj/a\n1\nwj/a\n2\nDELETE\nwj/a\n\n");
  out_.str("");
  r.mutable_events()->DeleteSubrange(0, 1);
  ASSERT_TRUE(Make(Format::kJson).Watch(r).ok());
  EXPECT_EQ(out_.str(),
            R"({"Header":{"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":46,"raft_term":2},"Events":[{"type":1,"kv":{"key":"d2ovYQ==",)"
            R"("mod_revision":46}}],"CompactRevision":0,"Canceled":false,"Created":false})"
            "\n");
  out_.str("");
  pb::WatchResponse canceled;
  canceled.set_canceled(true);
  canceled.set_compact_revision(5);
  ASSERT_TRUE(Make(Format::kJson).Watch(canceled).ok());
  EXPECT_EQ(out_.str(),
            R"({"Header":{},"Events":[],"CompactRevision":5,"Canceled":true,"Created":false})"
            "\n");
  EXPECT_FALSE(Make(Format::kTable).Watch(r).ok());
}

TEST_F(PrinterTest, LeaseOutputsInEveryFormat) {
  pb::LeaseGrantResponse grant;
  SetHeader(grant.mutable_header(), 37);
  grant.set_id(951845097548085646);
  grant.set_ttl(100);
  ASSERT_TRUE(Make(Format::kSimple).LeaseGrant(grant).ok());
  ASSERT_TRUE(Make(Format::kJson).LeaseGrant(grant).ok());
  EXPECT_EQ(out_.str(),
            "lease 0d35a212b88cf98e granted with TTL(100s)\n"
            R"({"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":37,"raft_term":2,"ID":951845097548085646,"TTL":100,"Error":""})"
            "\n");
  EXPECT_FALSE(Make(Format::kTable).LeaseGrant(grant).ok());
  out_.str("");

  pb::LeaseTimeToLiveResponse ttl;
  SetHeader(ttl.mutable_header(), 38);
  ttl.set_id(951845097548085648);
  ttl.set_ttl(49);
  ttl.set_grantedttl(50);
  ttl.add_keys("lk");
  ASSERT_TRUE(Make(Format::kSimple).LeaseTimeToLive(ttl, /*keys=*/true).ok());
  ASSERT_TRUE(Make(Format::kJson).LeaseTimeToLive(ttl, true).ok());
  EXPECT_EQ(out_.str(),
            "lease 0d35a212b88cf990 granted with TTL(50s), remaining(49s), attached keys([lk])\n"
            R"({"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":38,"raft_term":2,"id":951845097548085648,"ttl":49,"granted-ttl":50,)"
            R"("keys":["bGs="]})"
            "\n");
  out_.str("");
  pb::LeaseTimeToLiveResponse expired;
  SetHeader(expired.mutable_header(), 39);
  expired.set_id(0x1234);
  expired.set_ttl(-1);
  ASSERT_TRUE(Make(Format::kSimple).LeaseTimeToLive(expired, false).ok());
  ASSERT_TRUE(Make(Format::kJson).LeaseTimeToLive(expired, false).ok());
  EXPECT_EQ(out_.str(),
            "lease 0000000000001234 already expired\n"
            R"({"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":39,"raft_term":2,"id":4660,"ttl":-1,"granted-ttl":0,"keys":null})"
            "\n");
  out_.str("");

  pb::LeaseLeasesResponse leases;
  SetHeader(leases.mutable_header(), 37);
  leases.add_leases()->set_id(951845097548085644);
  leases.add_leases()->set_id(951845097548085646);
  ASSERT_TRUE(Make(Format::kSimple).LeaseLeases(leases).ok());
  ASSERT_TRUE(Make(Format::kJson).LeaseLeases(leases).ok());
  ASSERT_TRUE(Make(Format::kJson).LeaseLeases(pb::LeaseLeasesResponse()).ok());
  EXPECT_EQ(out_.str(),
            "found 2 leases\n0d35a212b88cf98c\n0d35a212b88cf98e\n"
            R"({"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":37,"raft_term":2,"leases":[{"id":951845097548085644},)"
            R"({"id":951845097548085646}]})"
            "\n"
            R"({"leases":[]})"
            "\n");
  out_.str("");

  pb::LeaseKeepAliveResponse ka;
  SetHeader(ka.mutable_header(), 38);
  ka.set_id(951845097548085648);
  ka.set_ttl(50);
  ASSERT_TRUE(Make(Format::kSimple).LeaseKeepAlive(ka).ok());
  ASSERT_TRUE(Make(Format::kJson).LeaseKeepAlive(ka).ok());
  ASSERT_TRUE(
      Make(Format::kSimple).LeaseRevoke(951845097548085648, pb::LeaseRevokeResponse()).ok());
  EXPECT_EQ(out_.str(),
            "lease 0d35a212b88cf990 keepalived with TTL(50)\n"
            R"({"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("revision":38,"raft_term":2,"ID":951845097548085648,"TTL":50})"
            "\n"
            "lease 0d35a212b88cf990 revoked\n");
}

TEST_F(PrinterTest, MemberListInEveryFormat) {
  pb::MemberListResponse r;
  SetHeader(r.mutable_header(), 0);
  pb::Member* m = r.add_members();
  m->set_id(7667288354922499381ULL);
  m->set_name("default");
  m->add_peerurls("http://127.0.0.1:36757");
  m->add_clienturls("http://127.0.0.1:41199");
  pb::Member* unstarted = r.add_members();
  unstarted->set_id(0x1234);
  unstarted->add_peerurls("http://127.0.0.1:1");
  unstarted->set_islearner(true);
  Make(Format::kSimple).MemberList(r);
  EXPECT_EQ(out_.str(),
            "6a67ae22c1a50d35, started, default, http://127.0.0.1:36757, http://127.0.0.1:41199, "
            "false\n"
            "1234, unstarted, , http://127.0.0.1:1, , true\n");
  out_.str("");
  r.mutable_members()->RemoveLast();
  Make(Format::kJson).MemberList(r);
  Make(Format::kTable).MemberList(r);
  EXPECT_EQ(out_.str(),
            R"({"header":{"cluster_id":11355051438336107298,"member_id":7667288354922499381,)"
            R"("raft_term":2},"members":[{"ID":7667288354922499381,"name":"default",)"
            R"("peerURLs":["http://127.0.0.1:36757"],"clientURLs":["http://127.0.0.1:41199"]}]})"
            "\n"
            "+------------------+---------+---------+------------------------+---------------------"
            "---+------------+\n"
            "|        ID        | STATUS  |  NAME   |       PEER ADDRS       |      CLIENT ADDRS   "
            "   | IS LEARNER |\n"
            "+------------------+---------+---------+------------------------+---------------------"
            "---+------------+\n"
            "| 6a67ae22c1a50d35 | started | default | http://127.0.0.1:36757 | "
            "http://127.0.0.1:41199 |      false |\n"
            "+------------------+---------+---------+------------------------+---------------------"
            "---+------------+\n");
}

TEST_F(PrinterTest, MemberChangesMoveLeaderAndAlarms) {
  pb::MemberRemoveResponse removed;
  SetHeader(removed.mutable_header(), 0);
  removed.mutable_header()->set_cluster_id(0x9d953f1f1c4fe322ULL);
  ASSERT_TRUE(Make(Format::kSimple)
                  .MemberChange("removed from", 0x6fecff55318fcb1ULL, removed.header(), removed)
                  .ok());
  EXPECT_EQ(out_.str(), "Member  6fecff55318fcb1 removed from cluster 9d953f1f1c4fe322\n");
  EXPECT_FALSE(
      Make(Format::kTable).MemberChange("removed from", 1, removed.header(), removed).ok());
  out_.str("");
  ASSERT_TRUE(
      Make(Format::kSimple)
          .MoveLeader(0x6a67ae22c1a50d35ULL, 0x6a67ae22c1a50d35ULL, pb::MoveLeaderResponse())
          .ok());
  EXPECT_EQ(out_.str(), "Leadership transferred from 6a67ae22c1a50d35 to 6a67ae22c1a50d35\n");
  out_.str("");
  pb::AlarmResponse alarms;
  pb::AlarmMember* a = alarms.add_alarms();
  a->set_memberid(7667288354922499381ULL);
  a->set_alarm(pb::NOSPACE);
  ASSERT_TRUE(Make(Format::kSimple).Alarm(alarms).ok());
  ASSERT_TRUE(Make(Format::kJson).Alarm(alarms).ok());
  ASSERT_TRUE(Make(Format::kJson).Alarm(pb::AlarmResponse()).ok());
  EXPECT_EQ(out_.str(),
            "memberID:7667288354922499381 alarm:NOSPACE \n"
            R"({"alarms":[{"memberID":7667288354922499381,"alarm":1}]})"
            "\n{}\n");
}

TEST(ParseFormatTest, KnownAndUnknownFormats) {
  Format f;
  EXPECT_TRUE(ParseFormat("simple", &f).ok());
  EXPECT_EQ(f, Format::kSimple);
  EXPECT_TRUE(ParseFormat("json", &f).ok());
  EXPECT_EQ(f, Format::kJson);
  EXPECT_TRUE(ParseFormat("table", &f).ok());
  EXPECT_EQ(f, Format::kTable);
  EXPECT_TRUE(ParseFormat("fields", &f).ok());
  EXPECT_EQ(f, Format::kFields);
  absl::Status s = ParseFormat("xml", &f);
  EXPECT_EQ(s.message(), "unsupported output format");
  EXPECT_EQ(ExitCodeOf(s), kExitBadFeature);
}

}  // namespace
}  // namespace kvd::kvctl
