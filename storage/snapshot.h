// State snapshots: the replicated column families (kv, rev_index, lease, auth, meta) as
// files, for sending a member the state it is too far behind to catch up on from the log.
//
// Files of a snapshot directory (all plain names, no subdirectories):
//
//   <cf>.sst           one RocksDB SST file per non-empty replicated column family
//                      (rocksdb::SstFileWriter), holding its live keys at one point in time
//   snapshot.manifest  text; which family each file holds, with the file's size, CRC32C and
//                      entry count, and the applied index of the copy; its last line is the
//                      CRC32C of every line before it:
//                        kvd-state-snapshot 1
//                        applied_index <n>
//                        cf <name> <file name | -> <size> <crc32c> <entries>   (x5)
//                        crc32c <crc32c>
//                      (numbers in decimal)
//
// Member-local keys of the meta family (kLocalMetaKeys: the format marker, the member id)
// are neither copied nor replaced: a member keeps its own identity across an install.
//
// Installing (InstallStateSnapshot) replaces the replicated families wholesale and is
// crash-safe through a marker in the raft_state family:
//   1. verify the manifest and every file (size, CRC32C, SST block checksums, entry count);
//      nothing has changed yet, so a bad snapshot is refused with the store untouched;
//   2. write raft_state["pending_snapshot"] = dir, synced;
//   3. in one synced batch, delete each replicated family's whole key range (keeping the
//      local meta keys), then ingest the files atomically (copied, not moved, so the step
//      can be redone from dir);
//   4. delete the marker, synced; 5. remove dir.
// A crash after 2 and before 4 leaves the marker: ResumeSnapshotInstall (at start-up, before
// anything reads the state) redoes 3-5 from dir. A crash after 4 may leave dir behind, as
// garbage in the caller's scratch directory. raft_log and raft_state are never touched
// except for the marker.
//
// Threads: these functions do I/O and may take seconds for a large state; call them off the
// raft thread. The caller keeps writers (apply, compaction) off the replicated families
// during an install and reloads what it caches (mvcc::KvStore::Reload) afterwards.
#ifndef KVD_STORAGE_SNAPSHOT_H_
#define KVD_STORAGE_SNAPSHOT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/engine.h"

namespace kvd::storage {

// The families a snapshot carries, in manifest order.
inline constexpr std::array<Cf, 5> kReplicatedCfs = {Cf::kKv, Cf::kRevIndex, Cf::kLease,
                                                     Cf::kAuth, Cf::kMeta};
// Keys of the meta family that belong to one member and never travel in a snapshot.
inline constexpr std::array<const char*, 2> kLocalMetaKeys = {"format", "member_id"};
// The raft_state key naming an install in progress.
inline constexpr char kPendingSnapshotKey[] = "pending_snapshot";
inline constexpr char kSnapshotManifestName[] = "snapshot.manifest";

// CRC32C (Castagnoli), as used by the snapshot files and the peer transport. Extends crc
// (0 for a fresh checksum) with n bytes of data. Uses SSE4.2 when the CPU has it.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);

struct SnapshotFileInfo {
  Cf cf;
  std::string file_name;  // empty when the family was empty
  uint64_t size = 0;
  uint32_t crc32c = 0;
  uint64_t entries = 0;
};

struct SnapshotManifest {
  uint64_t applied_index = 0;
  std::vector<SnapshotFileInfo> files;  // one per kReplicatedCfs, same order
};

// Writes the replicated state, as of one RocksDB snapshot, into dir (which must exist and
// should be empty): one SST per non-empty family and the manifest, all fsynced, and the
// directory too. Returns the manifest. The applied index is the meta family's
// "applied_index" in that same snapshot (0 when absent).
// Errors: whatever RocksDB or the file system report; dir may then hold partial files.
absl::StatusOr<SnapshotManifest> WriteStateSnapshot(Engine& engine, const std::string& dir);

// Reads and checks dir's manifest (its own CRC and syntax; not the files). DataLoss when it is
// corrupt, NotFound when missing.
absl::StatusOr<SnapshotManifest> ReadSnapshotManifest(const std::string& dir);

// Verifies every file of dir against its manifest: size, CRC32C, SST checksums and entry
// count. DataLoss, with the file's name, on any mismatch.
absl::StatusOr<SnapshotManifest> VerifyStateSnapshot(const std::string& dir);

// Replaces the replicated state with the snapshot in dir (steps above), then removes dir.
// On a verification error nothing has changed and dir is left in place (the caller removes
// it). On a later error the marker stays and the store must not be served until
// ResumeSnapshotInstall succeeds (a restart does that).
absl::Status InstallStateSnapshot(Engine& engine, const std::string& dir);

// At start-up: finishes an install that a crash interrupted (no-op without a marker).
// Idempotent. DataLoss if the marker names a directory that is gone or corrupt: the
// replicated state is then half-replaced and the member cannot serve.
absl::Status ResumeSnapshotInstall(Engine& engine);

namespace snapshot_internal {
// For crash tests: runs InstallStateSnapshot up to and including a step, then returns
// as if the process had died there.
enum class StopAfter { kMarker, kDelete, kIngest, kNever };
absl::Status InstallStateSnapshotUntil(Engine& engine, const std::string& dir, StopAfter stop);
}  // namespace snapshot_internal

}  // namespace kvd::storage

#endif  // KVD_STORAGE_SNAPSHOT_H_
