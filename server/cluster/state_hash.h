// Hashes of a member's state for consistency checks (Maintenance.HashKV and .Hash).
//
// HashKV must give the same value on every member for the same revision, however far
// physical compaction (mvcc::KvStore::CompactStep) has progressed on each. So it hashes only
// what compaction leaves readable: the key space as of the compact revision (one Range of
// every key at compact_rev, when compact_rev > 0) followed by every change after it up to
// the revision (ReadTxn::Events). Both depend only on the replicated history and the
// compact revision, never on which old versions happen to be still on disk.
//
// Encoding fed to CRC32C (storage::Crc32c), all integers fixed 8-byte big-endian:
//   kv at compact_rev:  'K' ‖ len(key) ‖ key ‖ len(value) ‖ value ‖ create ‖ mod ‖ version ‖ lease
//   event:              'P' or 'D' ‖ the kv as above (a DELETE's kv has key and mod only)
// The values differ from etcd's (its hash covers its bbolt key layout); only equality
// between members and across calls matters to clients (etcd's corruption checker,
// `etcdctl endpoint hashkv`).
#ifndef KVD_SERVER_CLUSTER_STATE_HASH_H_
#define KVD_SERVER_CLUSTER_STATE_HASH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {

struct KvHash {
  uint32_t hash = 0;
  // The compact revision the hash starts from (the store's: -1 when never compacted).
  int64_t compact_rev = -1;
  // The revision the hash covers.
  int64_t hash_rev = 0;
};

// The key space hash up to revision (0 or negative: the view's current revision), read
// from view. Errors, as etcd's HashKV: errors::FutureRevision() if revision > the current
// revision; errors::Compacted() if 0 < revision <= the compact revision.
absl::StatusOr<KvHash> HashKeySpace(const storage::mvcc::ReadTxn& view, int64_t revision);

// CRC32C of every key and value of the replicated column families (storage::kReplicatedCfs)
// at one RocksDB snapshot, leaving out the meta keys that differ between members by design
// (their identity, their physical compaction progress).
absl::StatusOr<uint32_t> HashReplicatedState(const storage::Engine& engine);

}  // namespace kvd::server

#endif  // KVD_SERVER_CLUSTER_STATE_HASH_H_
