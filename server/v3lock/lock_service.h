// etcd's Lock service (v3lockpb.Lock), built the way etcd builds it on clientv3's Mutex:
//
//   Lock(name, lease)  key = name + "/" + hex(lease). One txn: if the key does not exist
//                      (create_revision == 0) put it with the lease, else read it; and read
//                      the owner (the key under name + "/" with the smallest
//                      create_revision). The caller owns the lock when that is its own key;
//                      otherwise it waits until every key under the prefix created before
//                      its own is deleted (etcd's waitDeletes), checks that its key still
//                      exists ("mutex: session is expired" if its lease ended meanwhile), and
//                      answers {header, key}. Locking twice with one lease is one
//                      acquisition. If the client goes away while waiting, its key is
//                      deleted (etcd's Unlock on a cancelled Lock).
//                      Lease 0: as etcd, a fresh lease of kSessionTtlSeconds (60 s) is
//                      granted for the call and never kept alive, so the lock is released
//                      60 s later unless unlocked first.
//   Unlock(key)        deletes key.
//
// The lock is released when its key is deleted: by Unlock, or when the lease expires or is
// revoked. A holder that stalls (GC pause, partition) can therefore still believe it holds
// the lock after another client acquired it; no lock service can prevent that (Jepsen's
// etcd analysis, 2020). Use the owner key's revision as a FENCING TOKEN: guard every write
// the lock protects with a txn that compares the owner key's create_revision, e.g.
//
//   resp = Lock(name="jobs", lease=L)              -> key "jobs/694d7a...", header.revision R
//   rev  = create_revision of resp.key             (Range(resp.key); equals R if uncontended)
//   Txn(compare: create_revision(resp.key) == rev,
//       success: put("jobs/state", ...),
//       failure: -)                                 succeeded=false => the lock was lost
//
// The txn is applied atomically in the revision order, so no write succeeds after the key
// was deleted, even from a holder that does not know it lost the lock. External systems
// can instead store the largest token seen and refuse smaller ones (Kleppmann's fencing
// token): create revisions of successive owners only grow.
//
// Requests with metadata hasleader=true fail with "etcdserver: no leader" when the member
// has none.
#ifndef KVD_SERVER_V3LOCK_LOCK_SERVICE_H_
#define KVD_SERVER_V3LOCK_LOCK_SERVICE_H_

#include "api/v3lockpb/v3lock.grpc.pb.h"
#include "server/v3lock/recipes.h"

namespace kvd::server::v3lock {

class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  explicit LockService(Recipes* recipes) : recipes_(recipes) {}

  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* ctx, const v3lockpb::LockRequest* req,
                                 v3lockpb::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* ctx,
                                   const v3lockpb::UnlockRequest* req,
                                   v3lockpb::UnlockResponse* resp) override;

 private:
  Recipes* const recipes_;
};

}  // namespace kvd::server::v3lock

#endif  // KVD_SERVER_V3LOCK_LOCK_SERVICE_H_
