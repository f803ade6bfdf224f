#include "server/cluster/state_hash.h"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/errors.h"
#include "storage/snapshot.h"

namespace kvd::server {
namespace {

// Keys per Range page and events per Events page: bounds the memory a hash holds. (A
// Range page still counts every key after it: paging costs O(keys² / kKeysPerPage)
// key visits; a visitor on mvcc::ReadTxn that does not count would make it linear.)
constexpr int64_t kKeysPerPage = 10000;
constexpr size_t kEventsPerPage = 4096;

// Meta keys that are not the same on every member at one applied index.
constexpr std::string_view kMemberLocalMetaKeys[] = {"format", "member_id", "compacted_rev"};

class Hasher {
 public:
  void Byte(char c) { crc_ = storage::Crc32c(crc_, &c, 1); }
  void Int(int64_t v) {
    std::string buf;
    storage::PutBigEndian64(&buf, static_cast<uint64_t>(v));
    crc_ = storage::Crc32c(crc_, buf.data(), buf.size());
  }
  void Bytes(std::string_view s) {
    Int(static_cast<int64_t>(s.size()));
    crc_ = storage::Crc32c(crc_, s.data(), s.size());
  }
  void Kv(const mvccpb::KeyValue& kv) {
    Bytes(kv.key());
    Bytes(kv.value());
    Int(kv.create_revision());
    Int(kv.mod_revision());
    Int(kv.version());
    Int(kv.lease());
  }
  uint32_t value() const { return crc_; }

 private:
  uint32_t crc_ = 0;
};

}  // namespace

absl::StatusOr<KvHash> HashKeySpace(const storage::mvcc::ReadTxn& view, int64_t revision) {
  KvHash out;
  out.compact_rev = view.view_compact_rev();
  int64_t rev = revision > 0 ? revision : view.view_rev();
  if (rev > view.view_rev()) return errors::FutureRevision();
  if (revision > 0 && revision <= out.compact_rev) return errors::Compacted();
  out.hash_rev = rev;

  Hasher h;
  if (out.compact_rev > 0) {
    // Every key as of the compact revision, a page at a time.
    std::string from(1, '\0');
    for (;;) {
      storage::mvcc::RangeOptions options;
      options.rev = out.compact_rev;
      options.limit = kKeysPerPage;
      absl::StatusOr<storage::mvcc::RangeResult> page =
          view.Range(storage::mvcc::KeyRange::FromRequest(from, std::string_view("\0", 1)),
                     options);
      if (!page.ok()) return page.status();
      for (const mvccpb::KeyValue& kv : page->kvs) {
        h.Byte('K');
        h.Kv(kv);
      }
      if (static_cast<int64_t>(page->kvs.size()) < kKeysPerPage) break;
      from = page->kvs.back().key() + std::string(1, '\0');
    }
  }
  // Then the history after it.
  int64_t next = std::max<int64_t>(out.compact_rev + 1, 1);
  while (next <= rev) {
    absl::StatusOr<std::vector<mvccpb::Event>> events = view.Events(next, kEventsPerPage);
    if (!events.ok()) return events.status();
    if (events->empty()) break;
    for (const mvccpb::Event& e : *events) {
      if (e.kv().mod_revision() > rev) {
        next = rev + 1;
        break;
      }
      h.Byte(e.type() == mvccpb::Event::DELETE ? 'D' : 'P');
      h.Kv(e.kv());
      next = e.kv().mod_revision() + 1;
    }
  }
  out.hash = h.value();
  return out;
}

absl::StatusOr<uint32_t> HashReplicatedState(const storage::Engine& engine) {
  rocksdb::DB* db = engine.db();
  const rocksdb::Snapshot* snapshot = db->GetSnapshot();
  rocksdb::ReadOptions options;
  options.snapshot = snapshot;
  Hasher h;
  absl::Status status;
  for (storage::Cf cf : storage::kReplicatedCfs) {
    h.Int(static_cast<int>(cf));
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(options, engine.cf(cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key(it->key().data(), it->key().size());
      if (cf == storage::Cf::kMeta &&
          std::find(std::begin(kMemberLocalMetaKeys), std::end(kMemberLocalMetaKeys), key) !=
              std::end(kMemberLocalMetaKeys)) {
        continue;
      }
      h.Bytes(key);
      h.Bytes(std::string_view(it->value().data(), it->value().size()));
    }
    if (!it->status().ok()) {
      status = storage::FromRocks(it->status());
      break;
    }
  }
  db->ReleaseSnapshot(snapshot);
  if (!status.ok()) return status;
  return h.value();
}

}  // namespace kvd::server
