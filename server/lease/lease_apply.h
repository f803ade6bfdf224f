// Lease requests in the state machine: grant, revoke, expire (batched revoke) and checkpoint,
// applied inside an ApplyBatch (NodeHooks::apply_other) so lease records change atomically
// with the keys they delete and with the applied index.
//
// Lease records live in the lease column family: 'l' ‖ BE64(ID) → internalpb::LeaseRecord.
// (The 'k' ‖ BE64(ID) ‖ key index of attached keys is kept by the MVCC store.)
//
// Deterministic: what is applied depends only on the request and the applied lease table
// (the Lessor's applied state), never on clocks or leadership. The request carries every
// choice (ID, TTL raised to the minimum) made by the member that proposed it.
#ifndef KVD_SERVER_LEASE_LEASE_APPLY_H_
#define KVD_SERVER_LEASE_LEASE_APPLY_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "api/kvdpb/internal.pb.h"
#include "google/protobuf/message.h"
#include "server/lease/lessor.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server::lease {

// 'l' ‖ BE64(id).
std::string LeaseRecordKey(int64_t id);

// Loads every lease record of engine into lessor (Lessor::Restore). Run before serving.
// Errors: DataLoss on a corrupt record.
absl::Status LoadLeases(const storage::Engine& engine, Lessor* lessor);
// The same after the lease family was replaced (raft snapshot installed): the lessor's
// table becomes exactly what engine holds (Lessor::ReplaceAll).
absl::Status ReloadLeases(const storage::Engine& engine, Lessor* lessor);

class LeaseApplier {
 public:
  // REQUIRES: lessor outlives the applier.
  explicit LeaseApplier(Lessor* lessor) : lessor_(lessor) {}

  // Whether req is a lease request this applier handles.
  static bool Handles(const internalpb::Request& req);

  // Applies req in batch (contract of Applier::Apply). Responses: LeaseGrantResponse for
  // lease_grant, LeaseRevokeResponse for lease_revoke, LeaseCheckpointResponse for
  // lease_checkpoint; lease_expire has none (response must be null or is ignored). A
  // lease_expire stops once max_keys keys are deleted (at least one lease is revoked): the
  // leases it did not reach stay, and the leader proposes them again.
  // Errors (nothing changed): errors::LeaseExists() for a grant of an existing ID,
  // errors::LeaseTtlTooLarge() for a TTL above kMaxLeaseTtlSeconds,
  // errors::LeaseNotFound() for a revoke of a missing lease; Unimplemented for other
  // requests.
  absl::Status Apply(storage::mvcc::ApplyBatch& batch, const internalpb::Request& req,
                     google::protobuf::Message* response) const;

 private:
  // Deletes the lease's keys in one revision and its record. Returns {store revision after
  // it, keys deleted}. REQUIRES: the lease exists.
  std::pair<int64_t, int64_t> Revoke(storage::mvcc::ApplyBatch& batch, int64_t id) const;

  Lessor* const lessor_;
};

}  // namespace kvd::server::lease

#endif  // KVD_SERVER_LEASE_LEASE_APPLY_H_
