#include "server/cluster/state_hash.h"

#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "gtest/gtest.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {
namespace {

using storage::mvcc::KeyRange;

// One member's store in a temp dir.
struct Store {
  explicit Store(const std::string& name) {
    dir = absl::StrCat(::testing::TempDir(), "/state_hash_test_", getpid(), "_",
                       ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                       name);
    std::filesystem::remove_all(dir);
    Open();
  }
  void Open() {
    storage::EngineOptions options;
    options.path = dir;
    auto e = storage::Engine::Open(options);
    ASSERT_TRUE(e.ok()) << e.status();
    engine = std::move(*e);
    auto k = storage::mvcc::KvStore::Open(engine.get());
    ASSERT_TRUE(k.ok()) << k.status();
    kv = std::move(*k);
  }
  ~Store() {
    kv.reset();
    engine.reset();
    std::filesystem::remove_all(dir);
  }
  void Put(const std::string& key, const std::string& value, int64_t lease = 0) {
    auto batch = kv->NewApplyBatch();
    batch->BeginTxn();
    batch->Put(key, value, lease);
    batch->EndTxn();
    ASSERT_TRUE(batch->Commit(false).ok());
  }
  void Delete(const std::string& key) {
    auto batch = kv->NewApplyBatch();
    batch->BeginTxn();
    batch->DeleteRange(KeyRange::Single(key));
    batch->EndTxn();
    ASSERT_TRUE(batch->Commit(false).ok());
  }
  void Compact(int64_t rev) {
    auto batch = kv->NewApplyBatch();
    ASSERT_TRUE(batch->Compact(rev).ok());
    ASSERT_TRUE(batch->Commit(false).ok());
  }
  // Physical compaction, max_revisions at a time, steps times (or until done when < 0).
  void CompactSteps(int64_t max_revisions, int steps) {
    for (int i = 0; steps < 0 || i < steps; ++i) {
      auto done = kv->CompactStep(max_revisions);
      ASSERT_TRUE(done.ok()) << done.status();
      if (*done) return;
    }
  }
  KvHash Hash(int64_t rev) {
    auto view = kv->Read();
    auto h = HashKeySpace(*view, rev);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *h : KvHash{};
  }
  absl::Status HashError(int64_t rev) { return HashKeySpace(*kv->Read(), rev).status(); }

  std::string dir;
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<storage::mvcc::KvStore> kv;
};

// The same history on every store: overwrites, deletes, re-creations, leases, and keys
// with embedded NULs.
void History(Store& s, int from, int to) {
  for (int i = from; i < to; ++i) {
    std::string key = absl::StrCat("k", i % 7);
    if (i % 5 == 3) {
      s.Delete(key);
    } else {
      s.Put(key, absl::StrCat("v", i), i % 4 == 0 ? 42 : 0);
    }
    if (i % 11 == 0) s.Put(std::string("nul\0key", 7), absl::StrCat(i));
  }
}

TEST(StateHashTest, SameHistoryHashesTheSameWhateverThePhysicalCompaction) {
  Store a("a"), b("b"), c("c");
  for (Store* s : {&a, &b, &c}) History(*s, 0, 60);
  int64_t head = a.kv->current_rev();
  ASSERT_EQ(head, b.kv->current_rev());
  KvHash before = a.Hash(0);
  EXPECT_EQ(before.compact_rev, -1);  // never compacted
  EXPECT_EQ(before.hash_rev, head);
  EXPECT_EQ(b.Hash(0).hash, before.hash);

  int64_t compact = head - 25;
  for (Store* s : {&a, &b, &c}) s->Compact(compact);
  // a: no physical compaction; b: part of it; c: all of it.
  b.CompactSteps(5, 2);
  c.CompactSteps(1000, -1);
  ASSERT_LT(b.kv->compacted_rev(), compact);
  ASSERT_EQ(c.kv->compacted_rev(), compact);
  for (int64_t rev : {head, head - 10, compact + 1}) {
    KvHash ha = a.Hash(rev), hb = b.Hash(rev), hc = c.Hash(rev);
    EXPECT_EQ(ha.hash, hb.hash) << rev;
    EXPECT_EQ(ha.hash, hc.hash) << rev;
    EXPECT_EQ(ha.compact_rev, compact);
    EXPECT_EQ(hc.hash_rev, rev);
  }
  // Different revisions, different hashes; later writes change nothing before them.
  EXPECT_NE(a.Hash(head).hash, a.Hash(head - 1).hash);
  KvHash at_head = c.Hash(head);
  History(c, 60, 70);
  EXPECT_EQ(c.Hash(head).hash, at_head.hash);
  EXPECT_NE(c.Hash(0).hash, at_head.hash);
}

TEST(StateHashTest, DifferentStateHashesDifferently) {
  Store a("a"), b("b");
  History(a, 0, 30);
  History(b, 0, 30);
  a.Put("x", "1");
  b.Put("x", "2");
  EXPECT_NE(a.Hash(0).hash, b.Hash(0).hash);
  EXPECT_EQ(a.Hash(a.kv->current_rev() - 1).hash, b.Hash(b.kv->current_rev() - 1).hash);
}

TEST(StateHashTest, RevisionErrorsAreEtcds) {
  Store a("a");
  History(a, 0, 20);
  int64_t head = a.kv->current_rev();
  EXPECT_EQ(a.HashError(head + 1), errors::FutureRevision());
  a.Compact(10);
  EXPECT_EQ(a.HashError(10), errors::Compacted());  // etcd: revision <= compact revision
  EXPECT_EQ(a.HashError(9), errors::Compacted());
  EXPECT_TRUE(a.HashError(11).ok());
  EXPECT_TRUE(a.HashError(-1).ok());  // negative: current, as etcd
}

TEST(StateHashTest, ReplicatedStateHashIgnoresMemberLocalKeys) {
  Store a("a"), b("b");
  History(a, 0, 20);
  History(b, 0, 20);
  auto ha = HashReplicatedState(*a.engine);
  auto hb = HashReplicatedState(*b.engine);
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(*ha, *hb);
  b.Put("y", "1");
  auto hb2 = HashReplicatedState(*b.engine);
  ASSERT_TRUE(hb2.ok());
  EXPECT_NE(*ha, *hb2);
}

}  // namespace
}  // namespace kvd::server
