#include "storage/mvcc/kv_store.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "gtest/gtest.h"
#include "storage/engine.h"

namespace kvd::storage::mvcc {
namespace {

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/kv_store_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    EngineOptions options;
    options.path = dir_;
    auto engine = Engine::Open(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    auto kv = KvStore::Open(engine_.get());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
  }
  void Close() {
    kv_.reset();
    engine_.reset();
  }

  int64_t Put(const std::string& key, const std::string& value, bool sync = false) {
    auto batch = kv_->NewApplyBatch();
    batch->BeginTxn();
    batch->Put(key, value, 0);
    int64_t rev = batch->EndTxn();
    EXPECT_TRUE(batch->Commit(sync).ok());
    return rev;
  }
  int64_t Delete(const std::string& key) {
    auto batch = kv_->NewApplyBatch();
    batch->BeginTxn();
    batch->DeleteRange(KeyRange::Single(key));
    int64_t rev = batch->EndTxn();
    EXPECT_TRUE(batch->Commit(false).ok());
    return rev;
  }
  std::optional<mvccpb::KeyValue> Get(const std::string& key, int64_t rev = 0) {
    auto view = kv_->Read();
    RangeOptions options;
    options.rev = rev;
    auto r = view->Range(KeyRange::Single(key), options);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->kvs.empty()) return std::nullopt;
    return r->kvs[0];
  }
  // Rows in a column family, to see what compaction really removed.
  int Rows(Cf cf) {
    std::unique_ptr<rocksdb::Iterator> it(
        engine_->db()->NewIterator(rocksdb::ReadOptions(), engine_->cf(cf)));
    int n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }
  void CompactFully(int64_t rev) {
    auto batch = kv_->NewApplyBatch();
    ASSERT_TRUE(batch->Compact(rev).ok());
    ASSERT_TRUE(batch->Commit(false).ok());
    while (true) {
      auto done = kv_->CompactStep(2);
      ASSERT_TRUE(done.ok());
      if (*done) break;
    }
  }

  std::string dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<KvStore> kv_;
};

TEST_F(KvStoreTest, VersionsAndTombstonesFollowEtcdsModel) {
  EXPECT_EQ(kv_->current_rev(), 1);  // an empty store is at revision 1, as etcd's
  EXPECT_EQ(Put("k", "v1"), 2);
  EXPECT_EQ(Put("k", "v2"), 3);
  auto kv = Get("k");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->value(), "v2");
  EXPECT_EQ(kv->create_revision(), 2);
  EXPECT_EQ(kv->mod_revision(), 3);
  EXPECT_EQ(kv->version(), 2);
  EXPECT_EQ(Delete("k"), 4);
  EXPECT_FALSE(Get("k"));
  EXPECT_EQ(Delete("k"), 4);  // deleting nothing takes no revision
  EXPECT_EQ(Put("k", "v3"), 5);
  kv = Get("k");
  EXPECT_EQ(kv->create_revision(), 5);  // a new incarnation
  EXPECT_EQ(kv->version(), 1);
  EXPECT_EQ(Get("k", 3)->value(), "v2");
  EXPECT_FALSE(Get("k", 4));
}

// A single-key read stops at the key's first version at or below the read revision; it
// must never return a neighbouring key (one that extends it, or sorts right after it).
TEST_F(KvStoreTest, SingleKeyReadsSeeOnlyTheirKey) {
  int64_t neighbours = Put("ab", "x");
  Put(std::string("a\0", 2), "y");
  Put("b", "z");
  EXPECT_FALSE(Get("a"));
  int64_t created = Put("a", "v1");
  EXPECT_EQ(Get("a")->value(), "v1");
  EXPECT_FALSE(Get("a", neighbours));  // before "a" existed
  int64_t deleted = Delete("a");
  EXPECT_FALSE(Get("a"));
  EXPECT_EQ(Get("a", deleted - 1)->value(), "v1");
  EXPECT_EQ(Get("a", created)->mod_revision(), created);
  EXPECT_EQ(Get("ab")->value(), "x");
  // Inside a batch: its own writes and the committed ones, same rule.
  auto batch = kv_->NewApplyBatch();
  batch->BeginTxn();
  batch->Put("a", "v2", 0);
  batch->EndTxn();
  batch->BeginTxn();
  auto r = batch->Range(KeyRange::Single("a"), RangeOptions{});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].value(), "v2");
  batch->DeleteRange(KeyRange::Single("a"));
  batch->EndTxn();
  batch->BeginTxn();
  r = batch->Range(KeyRange::Single("a"), RangeOptions{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 0);
  EXPECT_EQ(batch->Range(KeyRange::Single("ab"), RangeOptions{})->count, 1);
  batch->EndTxn();
}

TEST_F(KvStoreTest, AFreshStoreCanBeCompactedAtZeroOnce) {
  EXPECT_EQ(kv_->compact_rev(), -1);  // never compacted, as etcd reports it
  {
    auto batch = kv_->NewApplyBatch();
    EXPECT_TRUE(batch->Compact(0).ok());
    ASSERT_TRUE(batch->Commit(false).ok());
  }
  Close();
  Open();
  EXPECT_EQ(kv_->compact_rev(), 0);
  auto batch = kv_->NewApplyBatch();
  EXPECT_EQ(batch->Compact(0), errors::Compacted());
}

TEST_F(KvStoreTest, SnapshotsDoNotSeeLaterWrites) {
  Put("k", "old");
  auto view = kv_->Read();
  Put("k", "new");
  Put("other", "x");
  auto r = view->Range(KeyRange::FromRequest("\0", std::string("\0", 1)), RangeOptions{});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].value(), "old");
  EXPECT_EQ(r->rev, 2);
}

TEST_F(KvStoreTest, RevisionBoundsGiveEtcdsErrors) {
  Put("a", "1");
  Put("a", "2");
  Put("a", "3");
  auto view = kv_->Read();
  RangeOptions future;
  future.rev = 5;
  EXPECT_EQ(view->Range(KeyRange::Single("a"), future).status(), errors::FutureRevision());

  CompactFully(3);
  view = kv_->Read();
  RangeOptions old;
  old.rev = 2;
  EXPECT_EQ(view->Range(KeyRange::Single("a"), old).status(), errors::Compacted());
  RangeOptions at_compact;
  at_compact.rev = 3;
  auto r = view->Range(KeyRange::Single("a"), at_compact);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.at(0).value(), "2");

  auto batch = kv_->NewApplyBatch();
  EXPECT_EQ(batch->Compact(3), errors::Compacted());
  EXPECT_EQ(batch->Compact(2), errors::Compacted());
  EXPECT_EQ(batch->Compact(5), errors::FutureRevision());
}

TEST_F(KvStoreTest, CompactionRemovesHiddenVersionsAndDeadKeys) {
  for (int i = 0; i < 5; ++i) Put("kept", absl::StrCat("v", i));  // revs 2..6
  Put("dead", "x");                                                 // 7
  Delete("dead");                                                   // 8
  Put("late", "y");                                                 // 9
  EXPECT_EQ(Rows(Cf::kKv), 8);
  EXPECT_EQ(Rows(Cf::kRevIndex), 8);

  CompactFully(8);
  // kept: only its newest version at or below 8; dead: gone with its tombstone; late: untouched.
  EXPECT_EQ(Rows(Cf::kKv), 2);
  EXPECT_EQ(Rows(Cf::kRevIndex), 2);
  EXPECT_EQ(Get("kept")->value(), "v4");
  EXPECT_EQ(Get("kept", 8)->value(), "v4");
  EXPECT_FALSE(Get("dead", 8));
  EXPECT_EQ(kv_->compacted_rev(), 8);
}

TEST_F(KvStoreTest, StateSurvivesRestart) {
  Put("a", "1");
  Put("b", "2", /*sync=*/true);
  {
    auto batch = kv_->NewApplyBatch();
    ASSERT_TRUE(batch->Compact(2).ok());
    batch->SetAppliedIndex(42);
    ASSERT_TRUE(batch->Commit(true).ok());
  }
  Close();
  Open();
  EXPECT_EQ(kv_->current_rev(), 3);
  EXPECT_EQ(kv_->compact_rev(), 2);
  EXPECT_EQ(kv_->applied_index(), 42u);
  EXPECT_EQ(Get("a")->value(), "1");
  EXPECT_EQ(Get("b")->value(), "2");
  // Compaction interrupted by the restart picks up where it was.
  auto done = kv_->CompactStep(100);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(*done);
  EXPECT_EQ(kv_->compacted_rev(), 2);
}

TEST_F(KvStoreTest, HistoryIsReadInRevisionOrderWithoutSplittingRevisions) {
  Put("a", "1");  // 2
  {
    auto batch = kv_->NewApplyBatch();  // 3: a txn that writes b and deletes a
    batch->BeginTxn();
    batch->Put("b", "2", 0);
    batch->DeleteRange(KeyRange::Single("a"));
    batch->EndTxn();
    ASSERT_TRUE(batch->Commit(false).ok());
  }
  Put("c", "3");  // 4
  auto view = kv_->Read();
  auto events = view->Events(2, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 4u);
  EXPECT_EQ((*events)[0].kv().key(), "a");
  EXPECT_EQ((*events)[1].kv().key(), "b");
  EXPECT_EQ((*events)[1].kv().mod_revision(), 3);
  EXPECT_EQ((*events)[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ((*events)[2].kv().mod_revision(), 3);
  EXPECT_EQ((*events)[3].kv().value(), "3");
  // A limit of 2 still returns all of revision 3.
  events = view->Events(3, 1);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 2u);
  CompactFully(3);
  EXPECT_EQ(kv_->Read()->Events(2, 10).status(), errors::Compacted());
}

TEST_F(KvStoreTest, LeaseAttachmentsFollowPutsAndDeletes) {
  auto put = [&](const std::string& key, int64_t lease) {
    auto batch = kv_->NewApplyBatch();
    batch->BeginTxn();
    batch->Put(key, "v", lease);
    batch->EndTxn();
    ASSERT_TRUE(batch->Commit(false).ok());
  };
  put("a", 7);
  put("b", 7);
  put("c", 8);
  put("b", 8);  // moves b from lease 7 to 8
  Delete("c");
  auto keys = kv_->Read()->KeysOfLease(7);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{"a"});
  keys = kv_->Read()->KeysOfLease(8);
  EXPECT_EQ(*keys, std::vector<std::string>{"b"});
}

TEST_F(KvStoreTest, ForeignOrCorruptDirectoriesAreRefused) {
  Close();
  std::string foreign = dir_ + "_foreign";
  std::filesystem::create_directories(foreign);
  std::ofstream(foreign + "/somefile") << "not a database";
  EngineOptions options;
  options.path = foreign;
  auto engine = Engine::Open(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(engine.status().message().find("does not hold a kvd store"), std::string::npos);
  std::filesystem::remove_all(foreign);

  // Every SST and the manifest overwritten with garbage: refused, not served.
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("MANIFEST", 0) == 0 || entry.path().extension() == ".sst") {
      std::ofstream(entry.path(), std::ios::trunc) << "garbage garbage garbage";
    }
  }
  options.path = dir_;
  engine = Engine::Open(options);
  EXPECT_FALSE(engine.ok());
}

}  // namespace
}  // namespace kvd::storage::mvcc
