#include "storage/engine.h"

#include <sys/statvfs.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"

namespace kvd::storage {
namespace {

constexpr std::array<const char*, kCfCount> kCfNames = {
    "raft_log", "raft_state", "kv", "rev_index", "lease", "auth", "meta"};

// Written once when a store is created; a store without it, or with another value, is
// not one this binary can serve.
constexpr char kFormatKey[] = "format";
constexpr char kFormatValue[] = "kvd-1";

absl::Status CheckDirectoryIsOurs(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::OkStatus();
  if (!std::filesystem::is_directory(path, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", path.string(), " is not a directory"));
  }
  if (std::filesystem::is_empty(path, ec)) return absl::OkStatus();
  if (!std::filesystem::exists(path / "CURRENT", ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path.string(),
                     " is not empty and does not hold a kvd store (no RocksDB CURRENT file); "
                     "refusing to use it"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = s.ToString();
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(msg);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(msg);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(msg);
    case rocksdb::Status::kIOError:
      return absl::UnavailableError(msg);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
      return absl::AbortedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

void PutBigEndian64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  dst->append(buf, 8);
}

uint64_t GetBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  std::filesystem::path path(options.path);
  if (absl::Status s = CheckDirectoryIsOurs(path); !s.ok()) return s;
  bool fresh = !std::filesystem::exists(path / "CURRENT");
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data directory ", path.string(), ": ", ec.message()));
  }

  rocksdb::Options db_options;
  db_options.create_if_missing = fresh;
  db_options.create_missing_column_families = fresh;
  db_options.paranoid_checks = true;
  // A raft member must never forget a vote or an entry it acknowledged. A crash can leave
  // an incomplete record at the end of the WAL (a write cut short, never synced): that is
  // dropped. Any other damage (a complete record failing its checksum: synced data gone
  // bad) refuses to open, naming it. kPointInTimeRecovery would instead silently drop
  // that record and everything after it, acknowledged entries and votes included.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 4;
  db_options.max_manifest_file_size = 64 << 20;
  db_options.bytes_per_sync = 1 << 20;
  // Start-up replays the WAL. Column families written rarely (raft_state, meta) would
  // otherwise pin every WAL file until RocksDB's default bound (4x all write buffers,
  // ~1 GiB here), so start-up time would grow with the data written; past this total the
  // families holding the oldest WAL are flushed instead.
  db_options.max_total_wal_size = 64 << 20;
  // The applied state skips the WAL (WriteUnlogged): every flush must then cut all column
  // families at one point, so that a crash leaves the state, its applied index and the
  // lease and revision indexes consistent with each other.
  db_options.atomic_flush = true;

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.checksum = rocksdb::kXXH3;

  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.write_buffer_size = 16 << 20;
  cf_options.level_compaction_dynamic_level_bytes = true;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (const char* name : kCfNames) descriptors.emplace_back(name, cf_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) {
    return absl::Status(
        FromRocks(s).code(),
        absl::StrCat("cannot open kvd store at ", options.path, ": ", s.ToString(),
                     s.IsCorruption() ? " (the store is damaged beyond a write cut short by a "
                                        "crash, and may have lost what this member "
                                        "acknowledged: remove the member, wipe its data "
                                        "directory and add it back)"
                                      : ""));
  }
  std::unique_ptr<Engine> engine(new Engine());
  engine->path_ = options.path;
  engine->reserve_bytes_ = options.reserve_bytes;
  engine->db_.reset(raw);
  engine->default_cf_ = handles[0];
  for (int i = 0; i < kCfCount; ++i) engine->handles_[i] = handles[i + 1];

  absl::StatusOr<std::string> format = engine->Get(Cf::kMeta, kFormatKey);
  if (fresh && absl::IsNotFound(format.status())) {
    rocksdb::WriteBatch batch;
    batch.Put(engine->cf(Cf::kMeta), kFormatKey, kFormatValue);
    if (absl::Status w = engine->Write(&batch, /*sync=*/true); !w.ok()) return w;
  } else if (!format.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.path, " holds a RocksDB database that is not a kvd store (",
                     format.status().message(), ")"));
  } else if (*format != kFormatValue) {
    return absl::FailedPreconditionError(absl::StrCat(options.path, " holds kvd store format '",
                                                      *format, "'; this binary reads '",
                                                      kFormatValue, "'"));
  }
  return engine;
}

Engine::~Engine() {
  if (!db_) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    if (h != nullptr) db_->DestroyColumnFamilyHandle(h);
  }
  if (default_cf_ != nullptr) db_->DestroyColumnFamilyHandle(default_cf_);
  db_->Close();
}

absl::Status Engine::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return WriteWith(wo, batch);
}

absl::Status Engine::WriteUnlogged(rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  return WriteWith(wo, batch);
}

absl::Status Engine::StartFlush() {
  rocksdb::FlushOptions options;
  options.wait = false;
  options.allow_write_stall = true;
  std::vector<rocksdb::ColumnFamilyHandle*> all(handles_.begin(), handles_.end());
  return FromRocks(db_->Flush(options, all));
}

bool Engine::FlushDone() const {
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    uint64_t pending = 0;
    if (!db_->GetIntProperty(h, rocksdb::DB::Properties::kNumImmutableMemTable, &pending) ||
        pending != 0) {
      return false;
    }
  }
  return true;
}

absl::Status Engine::WriteWith(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch) {
  struct statvfs fs;
  if (reserve_bytes_ > 0 && statvfs(path_.c_str(), &fs) == 0 &&
      static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize) < reserve_bytes_) {
    std::fprintf(stderr,
                 "kvd: fatal: no space left on device: less than %lld bytes free under %s; "
                 "stopping before the store could be damaged\n",
                 static_cast<long long>(reserve_bytes_), path_.c_str());
    std::fflush(stderr);
    std::_Exit(1);
  }
  rocksdb::Status s = db_->Write(wo, batch);
  if (!s.ok() && !s.IsBusy() && !s.IsTryAgain()) {
    // A write that did not reach the disk (full disk, I/O error) leaves RocksDB in an
    // error state in which other threads' writes misbehave. Nothing may be acknowledged
    // after it, and going on risks wrong state: stop now, saying why. The synced raft log
    // and the applied index make the restart resume exactly where the disk stopped.
    std::fprintf(stderr, "kvd: fatal: storage write failed, stopping: %s\n", s.ToString().c_str());
    std::fflush(stderr);
    std::_Exit(1);
  }
  return FromRocks(s);
}

absl::StatusOr<std::string> Engine::Get(Cf which, const rocksdb::Slice& key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(which), key, &value);
  if (!s.ok()) return FromRocks(s);
  return value;
}

int64_t Engine::SizeBytes() const {
  uint64_t total = 0;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &v)) total += v;
  }
  uint64_t wal = 0;
  if (db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &wal)) total += wal;
  return static_cast<int64_t>(total);
}

int64_t Engine::LiveDataBytes() const {
  uint64_t total = 0;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kEstimateLiveDataSize, &v)) total += v;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kCurSizeActiveMemTable, &v)) total += v;
  }
  return static_cast<int64_t>(total);
}

absl::Status Engine::CompactAll() {
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    if (absl::Status s = FromRocks(db_->CompactRange(options, h, nullptr, nullptr)); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace kvd::storage
