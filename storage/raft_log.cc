#include "storage/raft_log.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "raft/errors.h"
#include "storage/check.h"
#include "storage/snapshot.h"

namespace kvd::storage {
namespace {

constexpr char kHardStateKey[] = "hard_state";
constexpr char kLogStartKey[] = "log_start";
constexpr char kMemberIdKey[] = "member_id";
// In the meta family: the membership as of the applied index (written by the applier).
constexpr char kMetaConfStateKey[] = "conf_state";
constexpr char kMetaAppliedIndexKey[] = "applied_index";

// Entries kept in memory for replication and apply.
constexpr size_t kCacheEntriesMax = 8192;
constexpr uint64_t kCacheBytesMax = 64 << 20;

std::string IndexKey(uint64_t index) {
  std::string key;
  PutBigEndian64(&key, index);
  return key;
}

absl::Status Corrupt(const std::string& what) {
  return absl::DataLossError(absl::StrCat("raft log is corrupt: ", what,
                                          "; refusing to start (restore this member from a "
                                          "snapshot or remove and re-add it)"));
}

template <typename Proto>
absl::StatusOr<std::optional<Proto>> ReadProto(Engine* engine, Cf cf, const char* key) {
  absl::StatusOr<std::string> bytes = engine->Get(cf, key);
  if (absl::IsNotFound(bytes.status())) return std::optional<Proto>();
  if (!bytes.ok()) return bytes.status();
  Proto proto;
  if (!proto.ParseFromString(*bytes))
    return Corrupt(absl::StrCat("record '", key, "' does not parse"));
  return std::optional<Proto>(std::move(proto));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RaftLog>> RaftLog::Open(Engine* engine) {
  std::unique_ptr<RaftLog> log(new RaftLog(engine));
  if (absl::Status s = log->Load(); !s.ok()) return s;
  return log;
}

absl::Status RaftLog::Load() {
  absl::MutexLock lock(&mu_);
  auto hard_state = ReadProto<raftpb::HardState>(engine_, Cf::kRaftState, kHardStateKey);
  if (!hard_state.ok()) return hard_state.status();
  auto log_start = ReadProto<raftpb::SnapshotMetadata>(engine_, Cf::kRaftState, kLogStartKey);
  if (!log_start.ok()) return log_start.status();
  if (*hard_state) hard_state_ = **hard_state;
  if (*log_start) log_start_ = **log_start;

  // Walk the whole log once: it is bounded by compaction, and a broken log must be found
  // now rather than when a follower asks for the broken entry.
  last_ = log_start_.index();
  uint64_t prev_term = log_start_.term();
  std::unique_ptr<rocksdb::Iterator> it(
      engine_->db()->NewIterator(rocksdb::ReadOptions(), engine_->cf(Cf::kRaftLog)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) return Corrupt("malformed key");
    uint64_t index = GetBigEndian64(it->key().data());
    if (index <= log_start_.index()) {
      return Corrupt(absl::StrCat("entry ", index, " precedes the log start ", log_start_.index()));
    }
    if (index != last_ + 1) {
      return Corrupt(absl::StrCat("entry ", last_ + 1, " is missing (next is ", index, ")"));
    }
    raftpb::Entry entry;
    if (!entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) ||
        entry.index() != index) {
      return Corrupt(absl::StrCat("entry ", index, " does not parse"));
    }
    if (entry.term() < prev_term) {
      return Corrupt(absl::StrCat("entry ", index, " has term ", entry.term(),
                                  " below its predecessor's ", prev_term));
    }
    prev_term = entry.term();
    last_ = index;
    CacheAppend(entry);
  }
  if (absl::Status s = FromRocks(it->status()); !s.ok()) {
    return Corrupt(std::string(s.message()));
  }
  if (hard_state_.commit() > last_) {
    return Corrupt(absl::StrCat("commit index ", hard_state_.commit(), " is past the last entry ",
                                last_, " (acknowledged entries are missing)"));
  }
  return absl::OkStatus();
}

void RaftLog::CacheAppend(const raftpb::Entry& e) {
  cache_.push_back(e);
  cache_bytes_ += e.ByteSizeLong();
  while (cache_.size() > kCacheEntriesMax || cache_bytes_ > kCacheBytesMax) {
    cache_bytes_ -= cache_.front().ByteSizeLong();
    cache_.pop_front();
  }
}

void RaftLog::CacheTruncateFrom(uint64_t index) {
  while (!cache_.empty() && cache_.back().index() >= index) {
    cache_bytes_ -= cache_.back().ByteSizeLong();
    cache_.pop_back();
  }
}

absl::StatusOr<raft::PersistedState> RaftLog::InitialState() const {
  raft::PersistedState state;
  {
    absl::MutexLock lock(&mu_);
    state.hard_state = hard_state_;
    state.conf_state = log_start_.conf_state();
  }
  auto applied = ReadProto<raftpb::ConfState>(engine_, Cf::kMeta, kMetaConfStateKey);
  if (!applied.ok()) return applied.status();
  if (*applied) state.conf_state = **applied;
  return state;
}

absl::StatusOr<raftpb::Entry> RaftLog::ReadEntry(uint64_t index) const {
  absl::StatusOr<std::string> bytes = engine_->Get(Cf::kRaftLog, IndexKey(index));
  if (!bytes.ok()) return Corrupt(absl::StrCat("entry ", index, ": ", bytes.status().message()));
  raftpb::Entry entry;
  if (!entry.ParseFromString(*bytes))
    return Corrupt(absl::StrCat("entry ", index, " does not parse"));
  return entry;
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLog::Entries(uint64_t lo, uint64_t hi,
                                                            uint64_t max_bytes) const {
  std::vector<raftpb::Entry> out;
  uint64_t bytes = 0;
  absl::MutexLock lock(&mu_);
  if (lo <= log_start_.index()) return raft::ErrCompacted();
  if (hi > last_ + 1) return raft::ErrUnavailable();
  uint64_t cache_first = cache_.empty() ? last_ + 1 : cache_.front().index();
  for (uint64_t i = lo; i < hi; ++i) {
    raftpb::Entry entry;
    if (i >= cache_first) {
      entry = cache_[i - cache_first];
    } else {
      absl::StatusOr<raftpb::Entry> read = ReadEntry(i);
      if (!read.ok()) return read.status();
      entry = std::move(*read);
    }
    bytes += entry.ByteSizeLong();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(std::move(entry));
  }
  return out;
}

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  absl::MutexLock lock(&mu_);
  if (i == log_start_.index()) return log_start_.term();
  if (i < log_start_.index()) return raft::ErrCompacted();
  if (i > last_) return raft::ErrUnavailable();
  if (!cache_.empty() && i >= cache_.front().index()) {
    return cache_[i - cache_.front().index()].term();
  }
  absl::StatusOr<raftpb::Entry> entry = ReadEntry(i);
  if (!entry.ok()) return entry.status();
  return entry->term();
}

absl::StatusOr<uint64_t> RaftLog::FirstIndex() const { return first_index(); }
absl::StatusOr<uint64_t> RaftLog::LastIndex() const { return last_index(); }

uint64_t RaftLog::first_index() const {
  absl::MutexLock lock(&mu_);
  return log_start_.index() + 1;
}

uint64_t RaftLog::last_index() const {
  absl::MutexLock lock(&mu_);
  return last_;
}

raftpb::SnapshotMetadata RaftLog::log_start() const {
  absl::MutexLock lock(&mu_);
  return log_start_;
}

absl::StatusOr<raftpb::Snapshot> RaftLog::Snapshot() const {
  // The state is sent as files made when the snapshot is sent (server/transport), so the
  // snapshot can describe the state as of its applied index, with the membership of that
  // moment: a member added since the log start is named in it.
  const rocksdb::Snapshot* db_snapshot = engine_->db()->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = db_snapshot;
  std::string applied_bytes, conf_bytes;
  rocksdb::Status a =
      engine_->db()->Get(ro, engine_->cf(Cf::kMeta), kMetaAppliedIndexKey, &applied_bytes);
  rocksdb::Status c =
      engine_->db()->Get(ro, engine_->cf(Cf::kMeta), kMetaConfStateKey, &conf_bytes);
  engine_->db()->ReleaseSnapshot(db_snapshot);

  raftpb::Snapshot snapshot;
  *snapshot.mutable_metadata() = log_start();
  raftpb::ConfState conf_state;
  if (!a.ok() || !c.ok() || applied_bytes.size() != 8 || !conf_state.ParseFromString(conf_bytes)) {
    return snapshot;  // nothing applied beyond the log start yet
  }
  uint64_t applied = GetBigEndian64(applied_bytes.data());
  if (applied <= snapshot.metadata().index()) return snapshot;
  absl::StatusOr<uint64_t> term = Term(applied);
  if (!term.ok()) return raft::ErrSnapshotTemporarilyUnavailable();
  snapshot.mutable_metadata()->set_index(applied);
  snapshot.mutable_metadata()->set_term(*term);
  *snapshot.mutable_metadata()->mutable_conf_state() = std::move(conf_state);
  return snapshot;
}

absl::Status RaftLog::Persist(const raft::Ready& rd, const std::string& snapshot_dir) {
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* log_cf = engine_->cf(Cf::kRaftLog);
  rocksdb::ColumnFamilyHandle* state_cf = engine_->cf(Cf::kRaftState);
  absl::MutexLock lock(&mu_);
  raftpb::SnapshotMetadata new_start = log_start_;
  uint64_t new_last = last_;
  if (rd.snapshot && !raft::IsEmptySnapshot(*rd.snapshot)) {
    // A snapshot replaces the whole log.
    new_start = rd.snapshot->metadata();
    batch.DeleteRange(log_cf, IndexKey(0), IndexKey(last_ + 1));
    batch.Put(state_cf, kLogStartKey, new_start.SerializeAsString());
    if (!snapshot_dir.empty()) batch.Put(state_cf, kPendingSnapshotKey, snapshot_dir);
    new_last = new_start.index();
  }
  if (!rd.entries.empty()) {
    uint64_t first_new = rd.entries.front().index();
    KVD_CHECK(first_new > new_start.index() && first_new <= new_last + 1);
    if (first_new <= new_last) {
      batch.DeleteRange(log_cf, IndexKey(first_new), IndexKey(new_last + 1));
    }
    std::string bytes;
    for (const raftpb::Entry& e : rd.entries) {
      e.SerializeToString(&bytes);
      batch.Put(log_cf, IndexKey(e.index()), bytes);
    }
    new_last = rd.entries.back().index();
  }
  // A hard state in a Ready with nothing to sync changed only its commit index, which raft
  // recovers from the quorum: it is written with the next write that syncs anyway, not on
  // its own (that was one more WAL write per commit advance on every member).
  bool write_hard_state = rd.hard_state && (rd.must_sync || batch.Count() > 0);
  if (write_hard_state) {
    batch.Put(state_cf, kHardStateKey, rd.hard_state->SerializeAsString());
  }
  if (batch.Count() == 0) {
    if (rd.hard_state) hard_state_ = *rd.hard_state;
    return absl::OkStatus();
  }
  bool sync = (rd.must_sync || rd.snapshot.has_value()) && !plant_no_fsync_;
  if (absl::Status s = engine_->Write(&batch, sync); !s.ok()) return s;

  if (new_start.index() != log_start_.index()) {
    cache_.clear();
    cache_bytes_ = 0;
  }
  log_start_ = new_start;
  if (!rd.entries.empty()) {
    CacheTruncateFrom(rd.entries.front().index());
    for (const raftpb::Entry& e : rd.entries) CacheAppend(e);
  }
  last_ = new_last;
  if (rd.hard_state) hard_state_ = *rd.hard_state;
  return absl::OkStatus();
}

absl::Status RaftLog::Bootstrap(uint64_t index, uint64_t term,
                                const raftpb::ConfState& conf_state) {
  absl::MutexLock lock(&mu_);
  KVD_CHECK(last_ == 0 && log_start_.index() == 0);
  raftpb::SnapshotMetadata start;
  start.set_index(index);
  start.set_term(term);
  *start.mutable_conf_state() = conf_state;
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_commit(index);
  rocksdb::WriteBatch batch;
  batch.Put(engine_->cf(Cf::kRaftState), kLogStartKey, start.SerializeAsString());
  batch.Put(engine_->cf(Cf::kRaftState), kHardStateKey, hs.SerializeAsString());
  if (absl::Status s = engine_->Write(&batch, /*sync=*/true); !s.ok()) return s;
  log_start_ = start;
  hard_state_ = hs;
  last_ = index;
  return absl::OkStatus();
}

absl::Status RaftLog::Compact(uint64_t index, const raftpb::ConfState& conf_state) {
  absl::MutexLock lock(&mu_);
  if (index <= log_start_.index()) return absl::OkStatus();
  KVD_CHECK(index <= last_);
  uint64_t term = 0;
  if (!cache_.empty() && index >= cache_.front().index()) {
    term = cache_[index - cache_.front().index()].term();
  } else {
    absl::StatusOr<raftpb::Entry> entry = ReadEntry(index);
    if (!entry.ok()) return entry.status();
    term = entry->term();
  }
  raftpb::SnapshotMetadata start;
  start.set_index(index);
  start.set_term(term);
  *start.mutable_conf_state() = conf_state;
  rocksdb::WriteBatch batch;
  batch.DeleteRange(engine_->cf(Cf::kRaftLog), IndexKey(0), IndexKey(index + 1));
  batch.Put(engine_->cf(Cf::kRaftState), kLogStartKey, start.SerializeAsString());
  // No sync: losing a compaction only keeps entries longer.
  if (absl::Status s = engine_->Write(&batch, /*sync=*/false); !s.ok()) return s;
  log_start_ = start;
  while (!cache_.empty() && cache_.front().index() <= index) {
    cache_bytes_ -= cache_.front().ByteSizeLong();
    cache_.pop_front();
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RaftLog::MemberId() const {
  absl::StatusOr<std::string> bytes = engine_->Get(Cf::kRaftState, kMemberIdKey);
  if (absl::IsNotFound(bytes.status())) return 0;
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() != 8) return Corrupt("member id record");
  return GetBigEndian64(bytes->data());
}

absl::Status RaftLog::SetMemberId(uint64_t id) {
  rocksdb::WriteBatch batch;
  std::string value;
  PutBigEndian64(&value, id);
  batch.Put(engine_->cf(Cf::kRaftState), kMemberIdKey, value);
  return engine_->Write(&batch, /*sync=*/true);
}

}  // namespace kvd::storage
