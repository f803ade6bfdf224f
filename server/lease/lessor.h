// The lease table and lease expiry.
//
// Two kinds of state live here:
//
//  * Applied state — which leases exist, their granted TTL and their last checkpointed
//    remaining TTL. It changes only when the apply thread applies a raft entry (OnGrant,
//    OnRevoke, OnCheckpoint; server/lease/lease_apply.h), so it is the same on every member,
//    and it mirrors the lease column family (restored with Restore at start-up).
//
//  * Leader state — when each lease expires. Only the leader keeps deadlines. Keep-alives
//    (Renew) move a deadline; Tick() finds the expired leases and proposes their revocation
//    through raft (one LeaseExpireRequest for up to max_revokes_per_proposal leases), and
//    proposes checkpoints of remaining TTLs (LeaseCheckpointRequest) for leases whose TTL
//    exceeds checkpoint_interval_ms, so a new leader or a restart never shortens a lease and
//    a lease that is never renewed still expires across leader changes.
//
// Promotion is O(1): SetLeader(true) starts a new epoch. A lease whose deadline belongs to an
// older epoch expires at promote_time + max(remaining-or-TTL, min TTL): computed on demand
// (TimeToLive, Renew) and put into the expiry heap by Tick() in chunks of rebuild_chunk
// leases, off the raft and apply threads. Nothing can expire before promote_time + min TTL,
// which is the time the rebuild has to reach every lease.
//
// The expiry heap holds about one entry per lease: Renew only moves the lease's deadline;
// an entry popped before its lease's deadline is pushed back with the new deadline.
//
// Time comes from a Clock, so tests drive it by hand and call Tick() themselves; Start()
// runs Tick() on a thread of the lessor's own.
//
// Thread-safe. Proposals are made and their callbacks are taken without holding the
// lessor's lock.
#ifndef KVD_SERVER_LEASE_LESSOR_H_
#define KVD_SERVER_LEASE_LESSOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/kvdpb/internal.pb.h"

namespace kvd::server::lease {

// etcd's largest TTL (seconds); larger grants get errors::LeaseTtlTooLarge().
inline constexpr int64_t kMaxLeaseTtlSeconds = 9'000'000'000;

// etcd's minimum lease TTL: ceil(1.5 × election timeout) in whole seconds, where the
// election timeout is counted in heartbeat ticks (3 × election_ticks / 2 heartbeats).
int64_t MinLeaseTtlSeconds(int64_t election_timeout_ms, int64_t heartbeat_interval_ms);

// A monotonic clock in milliseconds.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
};

// std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  int64_t NowMs() const override;
};

struct LessorOptions {
  // Every lease lives at least this long (grants are raised to it; a new leader gives at
  // least this much).
  int64_t min_ttl_s = 2;
  // Leases with a TTL above this get their remaining TTL checkpointed this often (etcd's
  // --experimental-lease-checkpoint-interval is 5 minutes).
  int64_t checkpoint_interval_ms = 5 * 60 * 1000;
  // Bounds on the work of one proposal, so an expiry storm shares the log with other
  // requests: one revoke proposal and one checkpoint proposal are in flight at a time.
  int max_revokes_per_proposal = 128;
  // Keys deleted by one revoke proposal (LeaseExpireRequest.max_keys); the leases left over
  // are proposed again at once.
  int64_t max_revoked_keys_per_proposal = 10000;
  int max_checkpoints_per_proposal = 1000;
  // Stale-epoch leases moved into the expiry heap per lock hold.
  int rebuild_chunk = 10000;
  // A failed revoke proposal is retried after this long.
  int64_t retry_delay_ms = 500;
  // The timer thread runs Tick() at least this often.
  int64_t tick_ms = 100;
};

class Lessor {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;
  // Proposes a request through raft; done runs once it is applied (OK) or failed.
  using ProposeFn = std::function<void(internalpb::Request req, Done done)>;

  // REQUIRES: clock outlives the lessor.
  Lessor(LessorOptions options, const Clock* clock, ProposeFn propose);
  ~Lessor();
  Lessor(const Lessor&) = delete;
  Lessor& operator=(const Lessor&) = delete;

  // Starts the timer thread that runs Tick(). Stop() (or the destructor) ends it.
  void Start();
  void Stop();

  const LessorOptions& options() const { return options_; }

  // ---- Applied state (apply thread; Restore before serving) -----------------------------
  void Restore(const internalpb::LeaseRecord& record);
  // Replaces the whole table (after installing a raft snapshot). The leader state starts a
  // new epoch, as after a promotion.
  void ReplaceAll(const std::vector<internalpb::LeaseRecord>& records);
  // REQUIRES: !Exists(id).
  void OnGrant(int64_t id, int64_t ttl_s);
  // Returns false if the lease did not exist.
  bool OnRevoke(int64_t id);
  // Returns the record to persist, or nullopt if the lease does not exist.
  std::optional<internalpb::LeaseRecord> OnCheckpoint(int64_t id, int64_t remaining_ttl_s);

  bool Exists(int64_t id) const;
  // The applied record of a lease.
  std::optional<internalpb::LeaseRecord> Get(int64_t id) const;
  // Every lease, by ID.
  std::vector<int64_t> Leases() const;
  size_t size() const;

  // ---- Leader state ----------------------------------------------------------------------
  // This member became (true) or stopped being (false) the leader. O(1).
  void SetLeader(bool leader);
  bool is_leader() const;

  // A keep-alive: the lease expires TTL seconds from now. Returns the granted TTL, or 0 if
  // the lease does not exist or has expired (etcd answers TTL 0, not an error).
  // Errors: errors::NotLeader() on a follower (the caller forwards to the leader).
  absl::StatusOr<int64_t> Renew(int64_t id);

  struct TimeToLive {
    // Seconds left (truncated, as etcd reports them), and the granted TTL.
    int64_t ttl_s = 0;
    int64_t granted_ttl_s = 0;
  };
  // nullopt if the lease does not exist. On a follower, the last checkpointed remaining TTL
  // (or the granted TTL) — the follower does not know the leader's deadlines.
  std::optional<TimeToLive> GetTimeToLive(int64_t id) const;

  // One round of leader work: moves up to rebuild_chunk stale leases into the expiry heap,
  // proposes the revocation of expired leases and due checkpoints (one proposal of each
  // kind in flight). Returns true if more work is ready right away.
  bool Tick();

  // For tests and metrics: proposals in flight.
  bool revoke_in_flight() const;
  bool checkpoint_in_flight() const;
  bool rebuild_pending() const;

 private:
  struct Lease {
    int64_t ttl_s = 0;
    int64_t remaining_s = 0;  // last checkpoint (applied state); 0 = none
    // Leader state, valid when epoch == epoch_.
    uint64_t epoch = 0;
    int64_t deadline_ms = 0;
    int64_t queued_ms = 0;          // deadline of the lease's live expiry-heap entry
    uint64_t revoke_epoch = 0;      // == epoch_: a revocation is proposed in this epoch
    uint64_t reset_epoch = 0;       // == epoch_: a checkpoint of 0 (renewed) is queued
  };
  struct HeapEntry {
    int64_t at_ms;
    int64_t id;
    bool operator>(const HeapEntry& o) const { return at_ms > o.at_ms; }
  };

  // The deadline of a lease on the leader, in the current epoch or computed for a stale one.
  int64_t DeadlineLocked(const Lease& lease) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives a lease from an older epoch its deadline in this one and queues it.
  void AdoptLocked(int64_t id, Lease& lease, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushExpiryLocked(int64_t id, Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushCheckpointLocked(int64_t id, const Lease& lease, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebuildChunkLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<int64_t> CollectExpiredLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<etcdserverpb::LeaseCheckpoint> CollectCheckpointsLocked(int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool MoreWorkLocked(int64_t now_ms) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnRevokesDone(uint64_t epoch, std::vector<int64_t> ids, absl::Status s);
  void OnCheckpointsDone(uint64_t epoch, std::vector<etcdserverpb::LeaseCheckpoint> cps,
                         absl::Status s);
  void TimerLoop();

  const LessorOptions options_;
  const Clock* const clock_;
  const ProposeFn propose_;

  mutable absl::Mutex mu_;
  absl::btree_map<int64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped by every SetLeader; leader state of older epochs is void.
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t promote_ms_ ABSL_GUARDED_BY(mu_) = 0;
  // Rebuild of the heaps after promotion: leases with ID >= cursor are not yet visited.
  bool rebuild_pending_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rebuild_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  // Min-heaps (std::greater) of expiry deadlines and checkpoint due times.
  std::vector<HeapEntry> expiry_heap_ ABSL_GUARDED_BY(mu_);
  std::vector<HeapEntry> checkpoint_heap_ ABSL_GUARDED_BY(mu_);
  // Renewed leases whose persisted remaining TTL must be reset to 0.
  std::vector<int64_t> pending_resets_ ABSL_GUARDED_BY(mu_);
  bool revoke_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool checkpoint_in_flight_ ABSL_GUARDED_BY(mu_) = false;

  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

}  // namespace kvd::server::lease

#endif  // KVD_SERVER_LEASE_LESSOR_H_
