#include "storage/snapshot.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::storage {
namespace {

using mvcc::KeyRange;
using mvcc::KvStore;

// Every key/value of the replicated families except the member-local meta keys.
using Dump = std::map<int, std::vector<std::pair<std::string, std::string>>>;

Dump DumpState(Engine& engine) {
  Dump dump;
  for (Cf cf : kReplicatedCfs) {
    std::vector<std::pair<std::string, std::string>>& out = dump[static_cast<int>(cf)];
    std::unique_ptr<rocksdb::Iterator> it(
        engine.db()->NewIterator(rocksdb::ReadOptions(), engine.cf(cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string key = it->key().ToString();
      if (cf == Cf::kMeta && (key == "format" || key == "member_id")) continue;
      out.emplace_back(key, it->value().ToString());
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  }
  return dump;
}

size_t CountKeys(const Dump& dump) {
  size_t n = 0;
  for (const auto& [cf, kvs] : dump) n += kvs.size();
  return n;
}

std::string Be64(uint64_t v) {
  std::string out;
  PutBigEndian64(&out, v);
  return out;
}

uint32_t Crc32cBitwise(const std::string& s) {
  uint32_t c = ~0u;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0);
  }
  return ~c;
}

// One member's store: engine + MVCC store in its own directory.
struct Member {
  std::string path;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<KvStore> kv;

  void Open() {
    EngineOptions options;
    options.path = path;
    auto e = Engine::Open(options);
    ASSERT_TRUE(e.ok()) << e.status();
    engine = std::move(*e);
    OpenKv();
  }
  void OpenKv() {
    auto k = KvStore::Open(engine.get());
    ASSERT_TRUE(k.ok()) << k.status();
    kv = std::move(*k);
  }
  void Close() {
    kv.reset();
    engine.reset();
  }
  void PutRaw(Cf cf, const std::string& key, const std::string& value) {
    rocksdb::WriteBatch batch;
    batch.Put(engine->cf(cf), key, value);
    ASSERT_TRUE(engine->Write(&batch, true).ok());
  }
  std::optional<std::string> GetRaw(Cf cf, const std::string& key) {
    auto v = engine->Get(cf, key);
    if (!v.ok()) return std::nullopt;
    return *v;
  }
  // n keys under prefix with a few versions each, some deleted, some on a lease, an auth
  // record, a compaction, then applied index.
  void Fill(const std::string& prefix, int n, uint64_t applied_index) {
    for (int round = 0; round < 3; ++round) {
      auto batch = kv->NewApplyBatch();
      for (int i = 0; i < n; ++i) {
        batch->BeginTxn();
        batch->Put(absl::StrCat(prefix, i), absl::StrCat("v", round, "-", std::string(i % 50, 'x')),
                   i % 7 == 0 ? 5 : 0);
        batch->EndTxn();
      }
      batch->PutAux(Cf::kAuth, absl::StrCat(prefix, "user"), absl::StrCat("round", round));
      batch->PutAux(Cf::kLease, std::string("l") + Be64(5), "lease record");
      batch->SetAppliedIndex(applied_index - 2 + round);
      ASSERT_TRUE(batch->Commit(false).ok());
    }
    auto batch = kv->NewApplyBatch();
    batch->BeginTxn();
    batch->DeleteRange(KeyRange::FromRequest(absl::StrCat(prefix, 1), absl::StrCat(prefix, 2)));
    batch->EndTxn();
    ASSERT_TRUE(batch->Compact(kv->current_rev() - 1).ok());
    batch->SetAppliedIndex(applied_index);
    ASSERT_TRUE(batch->Commit(false).ok());
  }
};

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(::testing::TempDir(), "/snapshot_test_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    src_.path = root_ + "/src";
    dst_.path = root_ + "/dst";
    src_.Open();
    dst_.Open();
    snap_dir_ = root_ + "/snap";
    std::filesystem::create_directories(snap_dir_);
  }
  void TearDown() override {
    src_.Close();
    dst_.Close();
    std::filesystem::remove_all(root_);
  }

  // src: 300 keys at applied 100; dst: other data at applied 7, its own member id, and raft
  // state that an install must not touch.
  void FillBoth() {
    src_.Fill("src/", 300, 100);
    src_.PutRaw(Cf::kMeta, "member_id", Be64(1111));
    dst_.Fill("dst/", 40, 7);
    dst_.PutRaw(Cf::kMeta, "member_id", Be64(2222));
    dst_.PutRaw(Cf::kRaftLog, Be64(3), "entry 3");
    dst_.PutRaw(Cf::kRaftState, "hard_state", "hs");
  }

  void WriteSnapshot() {
    absl::StatusOr<SnapshotManifest> written = WriteStateSnapshot(*src_.engine, snap_dir_);
    ASSERT_TRUE(written.ok()) << written.status();
    const SnapshotManifest& m = *written;
    EXPECT_EQ(m.applied_index, 100u);
    auto read = ReadSnapshotManifest(snap_dir_);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->applied_index, 100u);
    ASSERT_EQ(read->files.size(), kReplicatedCfs.size());
    for (size_t i = 0; i < read->files.size(); ++i) {
      EXPECT_EQ(read->files[i].file_name, m.files[i].file_name);
      EXPECT_EQ(read->files[i].crc32c, m.files[i].crc32c);
      EXPECT_EQ(read->files[i].entries, m.files[i].entries);
      EXPECT_FALSE(m.files[i].file_name.empty()) << "every family has data in this test";
    }
  }

  // dst now holds exactly src's replicated state, keeps its own identity and raft state,
  // and its MVCC store (after Reload) reads src's data.
  void ExpectDstEqualsSrc() {
    Dump want = DumpState(*src_.engine);
    Dump got = DumpState(*dst_.engine);
    EXPECT_GT(CountKeys(want), 600u);
    EXPECT_TRUE(want == got) << "replicated state differs after install";
    EXPECT_EQ(dst_.GetRaw(Cf::kMeta, "member_id"), Be64(2222));
    EXPECT_EQ(dst_.GetRaw(Cf::kMeta, "format"), src_.GetRaw(Cf::kMeta, "format"));
    EXPECT_EQ(dst_.GetRaw(Cf::kRaftLog, Be64(3)), "entry 3");
    EXPECT_EQ(dst_.GetRaw(Cf::kRaftState, "hard_state"), "hs");
    EXPECT_FALSE(dst_.GetRaw(Cf::kRaftState, kPendingSnapshotKey).has_value());
    EXPECT_FALSE(std::filesystem::exists(snap_dir_));

    ASSERT_TRUE(dst_.kv->Reload().ok());
    EXPECT_EQ(dst_.kv->applied_index(), 100u);
    EXPECT_EQ(dst_.kv->current_rev(), src_.kv->current_rev());
    EXPECT_EQ(dst_.kv->compact_rev(), src_.kv->compact_rev());
    auto view = dst_.kv->Read();
    auto all = view->Range(KeyRange::FromRequest("", std::string(1, '\0')), {});
    ASSERT_TRUE(all.ok()) << all.status();
    auto src_all = src_.kv->Read()->Range(KeyRange::FromRequest("", std::string(1, '\0')), {});
    ASSERT_TRUE(src_all.ok());
    ASSERT_EQ(all->count, src_all->count);
    for (const auto& kv : all->kvs) EXPECT_EQ(kv.key().rfind("src/", 0), 0u) << kv.key();
    auto leased = view->KeysOfLease(5);
    ASSERT_TRUE(leased.ok());
    EXPECT_FALSE(leased->empty());
  }

  void FlipByte(const std::string& path, uint64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << path;
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
  }

  std::string root_;
  std::string snap_dir_;
  Member src_;
  Member dst_;
};

TEST(Crc32cTest, KnownValuesAndExtension) {
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, "", 0), 0u);
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 131 + 7));
  for (size_t n : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 999u, 1000u}) {
    std::string part = data.substr(0, n);
    EXPECT_EQ(Crc32c(0, part.data(), n), Crc32cBitwise(part)) << n;
    for (size_t split : {size_t{0}, n / 3, n - 1}) {
      uint32_t c = Crc32c(0, part.data(), split);
      c = Crc32c(c, part.data() + split, n - split);
      EXPECT_EQ(c, Crc32cBitwise(part)) << n << " split at " << split;
    }
  }
}

TEST_F(SnapshotTest, InstallReplacesReplicatedStateExactly) {
  FillBoth();
  WriteSnapshot();
  // A write after the snapshot is not in it.
  src_.PutRaw(Cf::kAuth, "after", "x");
  ASSERT_TRUE(InstallStateSnapshot(*dst_.engine, snap_dir_).ok());
  EXPECT_FALSE(dst_.GetRaw(Cf::kAuth, "after").has_value());
  rocksdb::WriteBatch undo;
  undo.Delete(src_.engine->cf(Cf::kAuth), "after");
  ASSERT_TRUE(src_.engine->Write(&undo, true).ok());
  ExpectDstEqualsSrc();

  // Survives a restart.
  dst_.Close();
  dst_.Open();
  ASSERT_TRUE(ResumeSnapshotInstall(*dst_.engine).ok());
  EXPECT_TRUE(DumpState(*src_.engine) == DumpState(*dst_.engine));
  EXPECT_EQ(dst_.kv->applied_index(), 100u);
}

TEST_F(SnapshotTest, EmptySnapshotEmptiesTheState) {
  dst_.Fill("dst/", 40, 7);
  dst_.PutRaw(Cf::kMeta, "member_id", Be64(2222));
  absl::StatusOr<SnapshotManifest> m = WriteStateSnapshot(*src_.engine, snap_dir_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->applied_index, 0u);
  for (const SnapshotFileInfo& f : m->files) EXPECT_TRUE(f.file_name.empty());
  ASSERT_TRUE(InstallStateSnapshot(*dst_.engine, snap_dir_).ok());
  EXPECT_EQ(CountKeys(DumpState(*dst_.engine)), 0u);
  EXPECT_EQ(dst_.GetRaw(Cf::kMeta, "member_id"), Be64(2222));
  ASSERT_TRUE(dst_.kv->Reload().ok());
  EXPECT_EQ(dst_.kv->current_rev(), 1);
  EXPECT_EQ(dst_.kv->applied_index(), 0u);
}

class SnapshotCrashTest : public SnapshotTest,
                          public ::testing::WithParamInterface<snapshot_internal::StopAfter> {};

TEST_P(SnapshotCrashTest, InterruptedInstallIsRedoneAtStartUp) {
  FillBoth();
  WriteSnapshot();
  dst_.kv.reset();
  ASSERT_TRUE(
      snapshot_internal::InstallStateSnapshotUntil(*dst_.engine, snap_dir_, GetParam()).ok());
  // "Crash": close without finishing, reopen the engine.
  dst_.Close();
  EngineOptions options;
  options.path = dst_.path;
  auto engine = Engine::Open(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  dst_.engine = std::move(*engine);
  EXPECT_EQ(dst_.GetRaw(Cf::kRaftState, kPendingSnapshotKey), snap_dir_);
  ASSERT_TRUE(ResumeSnapshotInstall(*dst_.engine).ok());
  ASSERT_TRUE(ResumeSnapshotInstall(*dst_.engine).ok());  // nothing left to do
  dst_.OpenKv();
  ExpectDstEqualsSrc();
}

INSTANTIATE_TEST_SUITE_P(Steps, SnapshotCrashTest,
                         ::testing::Values(snapshot_internal::StopAfter::kMarker,
                                           snapshot_internal::StopAfter::kDelete,
                                           snapshot_internal::StopAfter::kIngest));

TEST_F(SnapshotTest, RedoAfterACompletedIngestIsIdempotent) {
  FillBoth();
  WriteSnapshot();
  ASSERT_TRUE(snapshot_internal::InstallStateSnapshotUntil(
                  *dst_.engine, snap_dir_, snapshot_internal::StopAfter::kIngest)
                  .ok());
  // Writes a newer member would make are not at stake here; the redo replaces everything
  // again, including anything written after the ingest.
  dst_.PutRaw(Cf::kKv, "stray", "x");
  ASSERT_TRUE(ResumeSnapshotInstall(*dst_.engine).ok());
  ExpectDstEqualsSrc();
}

TEST_F(SnapshotTest, CorruptFileIsRefusedAndNothingChanges) {
  FillBoth();
  WriteSnapshot();
  Dump before = DumpState(*dst_.engine);
  std::string sst = snap_dir_ + "/kv.sst";
  FlipByte(sst, std::filesystem::file_size(sst) / 2);
  absl::Status s = InstallStateSnapshot(*dst_.engine, snap_dir_);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("kv.sst"), absl::string_view::npos) << s;
  EXPECT_TRUE(before == DumpState(*dst_.engine));
  EXPECT_FALSE(dst_.GetRaw(Cf::kRaftState, kPendingSnapshotKey).has_value());
  EXPECT_TRUE(std::filesystem::exists(snap_dir_));  // the caller removes it
}

TEST_F(SnapshotTest, TruncatedFileIsRefused) {
  FillBoth();
  WriteSnapshot();
  std::string sst = snap_dir_ + "/rev_index.sst";
  std::filesystem::resize_file(sst, std::filesystem::file_size(sst) - 10);
  absl::Status s = InstallStateSnapshot(*dst_.engine, snap_dir_);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_FALSE(dst_.GetRaw(Cf::kRaftState, kPendingSnapshotKey).has_value());
}

TEST_F(SnapshotTest, CorruptOrMissingManifestIsRefused) {
  FillBoth();
  WriteSnapshot();
  std::string manifest = snap_dir_ + "/" + kSnapshotManifestName;
  FlipByte(manifest, 30);
  absl::Status s = InstallStateSnapshot(*dst_.engine, snap_dir_);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  std::filesystem::remove(manifest);
  s = InstallStateSnapshot(*dst_.engine, snap_dir_);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_FALSE(dst_.GetRaw(Cf::kRaftState, kPendingSnapshotKey).has_value());
}

TEST_F(SnapshotTest, ResumeWithTheDirectoryGoneIsDataLoss) {
  FillBoth();
  WriteSnapshot();
  ASSERT_TRUE(snapshot_internal::InstallStateSnapshotUntil(
                  *dst_.engine, snap_dir_, snapshot_internal::StopAfter::kDelete)
                  .ok());
  std::filesystem::remove_all(snap_dir_);
  absl::Status s = ResumeSnapshotInstall(*dst_.engine);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("interrupted snapshot install"), absl::string_view::npos) << s;
}

}  // namespace
}  // namespace kvd::storage
