#include "server/apply/alarm_apply.h"

#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "gtest/gtest.h"
#include "server/apply/applier.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {
namespace {

using etcdserverpb::AlarmRequest;
using etcdserverpb::AlarmResponse;

class AlarmApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/alarm_apply_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    storage::EngineOptions options;
    options.path = dir_;
    auto engine = storage::Engine::Open(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    auto kv = storage::mvcc::KvStore::Open(engine_.get());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
  }
  void TearDown() override {
    kv_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Applies one request in its own batch, through the state machine's dispatch.
  absl::Status Apply(const internalpb::Request& req, google::protobuf::Message* resp = nullptr) {
    auto batch = kv_->NewApplyBatch();
    absl::Status s = applier_.Apply(*batch, req, resp);
    EXPECT_TRUE(batch->Commit(false).ok());
    return s;
  }
  AlarmResponse Alarm(AlarmRequest::AlarmAction action, uint64_t member,
                      etcdserverpb::AlarmType type) {
    internalpb::Request req;
    req.mutable_alarm()->set_action(action);
    req.mutable_alarm()->set_memberid(member);
    req.mutable_alarm()->set_alarm(type);
    AlarmResponse resp;
    EXPECT_TRUE(Apply(req, &resp).ok());
    return resp;
  }
  static internalpb::Request Put(const std::string& key) {
    internalpb::Request req;
    req.mutable_put()->set_key(key);
    req.mutable_put()->set_value("v");
    return req;
  }
  static std::string Alarms(const AlarmResponse& resp) {
    std::string out;
    for (const auto& a : resp.alarms()) absl::StrAppend(&out, AlarmStatusText(a), ";");
    return out;
  }

  std::string dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::mvcc::KvStore> kv_;
  Applier applier_{[](int64_t) { return false; }};
};

TEST_F(AlarmApplyTest, ActivateGetDeactivateAsEtcd) {
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::GET, 0, etcdserverpb::NONE)), "");
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::ACTIVATE, 7, etcdserverpb::NOSPACE)),
            "memberID:7 alarm:NOSPACE ;");
  // Again: still answered, still one alarm.
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::ACTIVATE, 7, etcdserverpb::NOSPACE)),
            "memberID:7 alarm:NOSPACE ;");
  Alarm(AlarmRequest::ACTIVATE, 3, etcdserverpb::CORRUPT);
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::GET, 99, etcdserverpb::NONE)),
            "memberID:3 alarm:CORRUPT ;memberID:7 alarm:NOSPACE ;");
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::GET, 0, etcdserverpb::NOSPACE)),
            "memberID:7 alarm:NOSPACE ;");
  auto stored = LoadAlarms(*engine_);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 2u);
  // Deactivating what is not active answers nothing.
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::DEACTIVATE, 3, etcdserverpb::NOSPACE)), "");
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::DEACTIVATE, 3, etcdserverpb::CORRUPT)),
            "memberID:3 alarm:CORRUPT ;");
  EXPECT_EQ(Alarms(Alarm(AlarmRequest::DEACTIVATE, 7, etcdserverpb::NOSPACE)),
            "memberID:7 alarm:NOSPACE ;");
  stored = LoadAlarms(*engine_);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->empty());
  EXPECT_FALSE(engine_->Get(storage::Cf::kMeta, kMetaAlarmsKey).ok());  // key removed
}

TEST_F(AlarmApplyTest, NoSpaceRefusesWhatNeedsSpaceOnly) {
  ASSERT_TRUE(Apply(Put("a")).ok());
  Alarm(AlarmRequest::ACTIVATE, 1, etcdserverpb::NOSPACE);
  int64_t rev = kv_->current_rev();
  EXPECT_EQ(Apply(Put("b")), errors::NoSpace());
  internalpb::Request txn;
  auto* op = txn.mutable_txn()->add_failure()->mutable_request_txn()->add_success();
  op->mutable_request_put()->set_key("c");
  EXPECT_EQ(Apply(txn), errors::NoSpace());  // a put anywhere, even nested
  internalpb::Request grant;
  grant.mutable_lease_grant()->set_ttl(10);
  EXPECT_EQ(CheckAlarms(*LoadAlarms(*engine_), grant), errors::NoSpace());
  EXPECT_EQ(kv_->current_rev(), rev);  // refused requests take no revision

  internalpb::Request del;
  del.mutable_delete_range()->set_key("a");
  EXPECT_TRUE(Apply(del).ok());
  internalpb::Request txn_del;
  txn_del.mutable_txn()->add_success()->mutable_request_delete_range()->set_key("b");
  EXPECT_TRUE(Apply(txn_del).ok());
  internalpb::Request compact;
  compact.mutable_compaction()->set_revision(kv_->current_rev());
  EXPECT_TRUE(Apply(compact).ok());
  internalpb::Request revoke;
  revoke.mutable_lease_revoke()->set_id(5);
  EXPECT_TRUE(CheckAlarms(*LoadAlarms(*engine_), revoke).ok());

  Alarm(AlarmRequest::DEACTIVATE, 1, etcdserverpb::NOSPACE);
  EXPECT_TRUE(Apply(Put("b")).ok());
}

TEST_F(AlarmApplyTest, CorruptRefusesEveryWrite) {
  Alarm(AlarmRequest::ACTIVATE, 1, etcdserverpb::NOSPACE);
  Alarm(AlarmRequest::ACTIVATE, 2, etcdserverpb::CORRUPT);
  EXPECT_EQ(Apply(Put("a")), errors::Corrupt());  // corrupt is reported first
  internalpb::Request del;
  del.mutable_delete_range()->set_key("a");
  EXPECT_EQ(Apply(del), errors::Corrupt());
  internalpb::Request read_txn;
  read_txn.mutable_txn()->add_success()->mutable_request_range()->set_key("a");
  EXPECT_TRUE(CheckAlarms(*LoadAlarms(*engine_), read_txn).ok());
}

TEST_F(AlarmApplyTest, AlarmChangesInOneBatchApplyInOrder) {
  auto batch = kv_->NewApplyBatch();
  internalpb::Request on;
  on.mutable_alarm()->set_action(AlarmRequest::ACTIVATE);
  on.mutable_alarm()->set_memberid(1);
  on.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  EXPECT_TRUE(applier_.Apply(*batch, Put("a"), nullptr).ok());
  EXPECT_TRUE(applier_.Apply(*batch, on, nullptr).ok());
  EXPECT_EQ(applier_.Apply(*batch, Put("b"), nullptr), errors::NoSpace());
  ASSERT_TRUE(batch->Commit(false).ok());
}

TEST_F(AlarmApplyTest, UnknownActionIsRefused) {
  internalpb::Request req;
  req.mutable_alarm()->set_action(static_cast<AlarmRequest::AlarmAction>(7));
  EXPECT_EQ(Apply(req).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvd::server
