// etcd's Maintenance service: Status, Alarm, HashKV, Hash, Defragment, MoveLeader,
// Snapshot. (Downgrade answers UNIMPLEMENTED.)
//
// Status      the answering member's view: leader, raft commit index (raftIndex), applied
//             index, term, learner flag, backend size, and active alarms in `errors`
//             ("memberID:<id> alarm:<NAME> ", etcd's text).
// Alarm       alarms are replicated state (server/apply/alarm_apply.h): ACTIVATE and
//             DEACTIVATE are raft entries; GET reads the local state after a ReadIndex.
// Quota       etcd's --quota-backend-bytes (0: 2 GiB). The backend size is the size of the
//             replicated state (the kv, rev_index, lease, auth and meta families: SST files
//             plus memtables), the counterpart of etcd's bbolt file; the raft log is
//             etcd's WAL and, as there, does not count. A member whose backend exceeds the
//             quota proposes ACTIVATE NOSPACE for itself: from a background check every
//             quota_check_interval, and at once when a write arrives (AdmitWrite) — that
//             alarm entry then precedes the write in the log, so the write is refused by
//             the state machine like every later one until `etcdctl alarm disarm`.
// HashKV      server/cluster/state_hash.h: equal on all members for one revision, whatever
//             their physical compaction progress. compact_revision is the store's (-1 when
//             never compacted, as etcd reports it); hash_revision is the revision hashed.
// Hash        CRC32C of the replicated column families at one snapshot.
// Defragment  Engine::CompactAll(): a full RocksDB compaction of every column family,
//             which drops deleted and compacted-away versions and reclaims their space.
//             Unlike etcd's defrag (which rewrites the bbolt file and blocks every read and
//             write of the member meanwhile), it runs online: reads and writes continue,
//             the member only does more I/O.
// MoveLeader  only on the leader (else errors::NotLeader()); the target must be a voting
//             member (else "etcdserver: bad leader transferee"); moving to itself succeeds
//             at once.
// Snapshot    a consistent copy of the replicated state (storage::WriteStateSnapshot, into a
//             scratch directory under <data-dir>/member/snapshot-stream/), streamed as one
//             container. The first message's header is filled (revision: the member's
//             revision just before the copy was taken; the copy may be newer). remaining_bytes
//             counts the container bytes still to come after each message, excluding the
//             trailer, as etcd's does; the trailer is sent alone, last, with
//             remaining_bytes 0.
//
// Snapshot container format (for `kvctl snapshot save|restore`), integers big-endian:
//
//   "KVDSNAP1"              8 bytes, magic
//   u32 format version      1
//   u32 file count N
//   N times:
//     u32 name length, name  a plain file name (no '/')
//     u64 size, contents
//   zero bytes              up to the next multiple of 512 bytes (etcdctl snapshot save
//                           refuses a stream whose length before the trailer is not one)
//   sha256                  32 bytes: SHA-256 of every byte above (etcd also ends its
//                           snapshot stream with a sha256 of the bytes before it)
//
// The first file is always "snapshot.manifest" (storage/snapshot.h format: applied index,
// and each replicated family's SST file with its size, CRC32C and entry count); the others
// are the SST files it names, in manifest order. To restore: check the trailer, write the
// files into an empty directory, storage::VerifyStateSnapshot() it, then install it into a
// fresh store (storage::InstallStateSnapshot) — membership must then be rewritten for the
// new cluster, as etcdctl snapshot restore does.
//
// Threads: handlers never block a gRPC thread. Defragment, Hash, HashKV and the snapshot
// copy run on the service's worker thread (one at a time); the quota check runs there too.
#ifndef KVD_SERVER_MAINTENANCE_SERVICE_H_
#define KVD_SERVER_MAINTENANCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "api/kvdpb/internal.pb.h"
#include "server/node.h"

namespace kvd::server {

// The etcd API level kvd speaks, reported in Status.version: clients gate features on it.
inline constexpr char kEtcdApiVersion[] = "3.5.0";

// etcd's default --quota-backend-bytes (used when the flag is 0).
inline constexpr int64_t kDefaultQuotaBackendBytes = int64_t{2} << 30;

struct MaintenanceOptions {
  // etcd's --quota-backend-bytes; 0 or less means kDefaultQuotaBackendBytes.
  int64_t quota_backend_bytes = 0;
  // How often the worker compares the backend size with the quota.
  absl::Duration quota_check_interval = absl::Milliseconds(500);
  // Bytes of container per Snapshot message.
  size_t snapshot_chunk_bytes = 256 * 1024;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  MaintenanceService(Node* node, MaintenanceOptions options = {});
  // Stops the worker if Stop() was not called. REQUIRES: the node is still alive.
  ~MaintenanceService() override;
  MaintenanceService(const MaintenanceService&) = delete;
  MaintenanceService& operator=(const MaintenanceService&) = delete;

  // Starts the worker (quota checks, defragment, hashes, snapshot copies). Call after the
  // node started. Without it those requests wait until the worker runs.
  void Start();
  // Stops the worker; queued work is answered errors::Stopped(). Call before the node is
  // destroyed. Idempotent.
  void Stop();

  // The gRPC layer's fast answer for a request about to be proposed: errors::Corrupt() or
  // errors::NoSpace() when an active alarm refuses it. A write that needs space on a member
  // over its quota first raises NOSPACE for the member (proposed before the caller proposes
  // req, so the state machine refuses req). Any thread.
  absl::Status AdmitWrite(const internalpb::Request& req);

  // Bytes of the replicated state (see Quota above).
  int64_t BackendSizeBytes() const;
  int64_t quota_bytes() const { return quota_bytes_; }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::StatusRequest* req,
                                   etcdserverpb::StatusResponse* resp) override;
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::HashKVRequest* req,
                                   etcdserverpb::HashKVResponse* resp) override;
  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* ctx,
                                 const etcdserverpb::HashRequest* req,
                                 etcdserverpb::HashResponse* resp) override;
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::DefragmentRequest* req,
                                       etcdserverpb::DefragmentResponse* resp) override;
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse* resp) override;
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* ctx, const etcdserverpb::SnapshotRequest* req) override;

 private:
  // Work for the worker thread; runs with ok=false when the service stops first.
  using Task = std::function<void(bool ok)>;

  void Enqueue(Task task);
  void WorkerLoop();
  // Proposes ACTIVATE NOSPACE for this member unless it is active or being proposed.
  void RaiseNoSpace();
  // Whether this member's backend exceeds the quota (cached for a short while).
  bool OverQuota(int64_t extra_bytes);
  void FillHeader(etcdserverpb::ResponseHeader* header) const;
  // Worker thread: Engine::CompactAll, then answers the Defragment call.
  void DefragmentNow(grpc::ServerUnaryReactor* reactor, etcdserverpb::DefragmentResponse* resp,
                     bool ok);

  Node* const node_;
  const MaintenanceOptions options_;
  const int64_t quota_bytes_;
  std::atomic<bool> nospace_proposal_in_flight_{false};
  std::atomic<int64_t> cached_size_bytes_{0};
  std::atomic<int64_t> cached_size_at_ns_{0};
  std::atomic<uint64_t> next_snapshot_id_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::thread worker_;
};

}  // namespace kvd::server

#endif  // KVD_SERVER_MAINTENANCE_SERVICE_H_
