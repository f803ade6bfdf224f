#include "server/lease/lessor.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <utility>

#include "api/errors.h"
#include "storage/check.h"

namespace kvd::server::lease {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

}  // namespace

int64_t MinLeaseTtlSeconds(int64_t election_timeout_ms, int64_t heartbeat_interval_ms) {
  if (heartbeat_interval_ms <= 0) heartbeat_interval_ms = 100;
  int64_t election_ticks = election_timeout_ms / heartbeat_interval_ms;
  int64_t min_ttl_ms = (3 * election_ticks / 2) * heartbeat_interval_ms;
  int64_t min_ttl_s = (min_ttl_ms + 999) / 1000;
  return std::max<int64_t>(min_ttl_s, 1);
}

int64_t SteadyClock::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Lessor::Lessor(LessorOptions options, const Clock* clock, ProposeFn propose)
    : options_(options), clock_(clock), propose_(std::move(propose)) {
  KVD_CHECK(options_.min_ttl_s > 0);
  KVD_CHECK(options_.max_revokes_per_proposal > 0);
  KVD_CHECK(options_.max_checkpoints_per_proposal > 0);
  KVD_CHECK(options_.rebuild_chunk > 0);
  KVD_CHECK(options_.tick_ms > 0);
}

Lessor::~Lessor() { Stop(); }

void Lessor::Start() {
  KVD_CHECK(!timer_.joinable());
  timer_ = std::thread([this] { TimerLoop(); });
}

void Lessor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (timer_.joinable()) timer_.join();
}

void Lessor::TimerLoop() {
  for (;;) {
    bool more = Tick();
    absl::MutexLock lock(&mu_);
    if (!more && !stopping_ && !wake_) {
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](Lessor* l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu_) {
                                 return l->stopping_ || l->wake_;
                               },
                               this),
                           absl::Milliseconds(options_.tick_ms));
    }
    wake_ = false;
    if (stopping_) return;
  }
}

// ---- Applied state ---------------------------------------------------------------------

void Lessor::Restore(const internalpb::LeaseRecord& record) {
  absl::MutexLock lock(&mu_);
  Lease& lease = leases_[record.id()];
  lease = Lease{};
  lease.ttl_s = record.ttl();
  lease.remaining_s = record.remaining_ttl();
}

void Lessor::ReplaceAll(const std::vector<internalpb::LeaseRecord>& records) {
  absl::btree_map<int64_t, Lease> table;
  for (const internalpb::LeaseRecord& record : records) {
    Lease& lease = table[record.id()];
    lease.ttl_s = record.ttl();
    lease.remaining_s = record.remaining_ttl();
  }
  absl::MutexLock lock(&mu_);
  leases_.swap(table);
  ++epoch_;
  promote_ms_ = clock_->NowMs();
  expiry_heap_.clear();
  checkpoint_heap_.clear();
  pending_resets_.clear();
  rebuild_pending_ = leader_;
  rebuild_cursor_ = std::numeric_limits<int64_t>::min();
  wake_ = true;
}

void Lessor::OnGrant(int64_t id, int64_t ttl_s) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = leases_.try_emplace(id);
  KVD_CHECK(inserted);
  Lease& lease = it->second;
  lease.ttl_s = ttl_s;
  if (leader_) {
    int64_t now = clock_->NowMs();
    lease.epoch = epoch_;
    lease.deadline_ms = now + ttl_s * 1000;
    lease.queued_ms = kNever;
    PushExpiryLocked(id, lease);
    PushCheckpointLocked(id, lease, now);
  }
}

bool Lessor::OnRevoke(int64_t id) {
  absl::MutexLock lock(&mu_);
  // Heap entries of the lease go stale: they are dropped when popped.
  return leases_.erase(id) > 0;
}

std::optional<internalpb::LeaseRecord> Lessor::OnCheckpoint(int64_t id, int64_t remaining_ttl_s) {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  it->second.remaining_s = std::max<int64_t>(remaining_ttl_s, 0);
  internalpb::LeaseRecord record;
  record.set_id(id);
  record.set_ttl(it->second.ttl_s);
  record.set_remaining_ttl(it->second.remaining_s);
  return record;
}

bool Lessor::Exists(int64_t id) const {
  absl::ReaderMutexLock lock(&mu_);
  return leases_.contains(id);
}

std::optional<internalpb::LeaseRecord> Lessor::Get(int64_t id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  internalpb::LeaseRecord record;
  record.set_id(id);
  record.set_ttl(it->second.ttl_s);
  record.set_remaining_ttl(it->second.remaining_s);
  return record;
}

std::vector<int64_t> Lessor::Leases() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<int64_t> ids;
  ids.reserve(leases_.size());
  for (const auto& [id, lease] : leases_) ids.push_back(id);
  return ids;
}

size_t Lessor::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return leases_.size();
}

// ---- Leader state ----------------------------------------------------------------------

void Lessor::SetLeader(bool leader) {
  absl::MutexLock lock(&mu_);
  leader_ = leader;
  ++epoch_;
  promote_ms_ = clock_->NowMs();
  // Entries are trivially destructible: clearing is O(1). Leases keep their state of the
  // old epoch, which the new epoch ignores.
  expiry_heap_.clear();
  checkpoint_heap_.clear();
  pending_resets_.clear();
  rebuild_pending_ = leader;
  rebuild_cursor_ = std::numeric_limits<int64_t>::min();
  wake_ = true;
}

bool Lessor::is_leader() const {
  absl::ReaderMutexLock lock(&mu_);
  return leader_;
}

int64_t Lessor::DeadlineLocked(const Lease& lease) const {
  if (lease.epoch == epoch_) return lease.deadline_ms;
  int64_t ttl_s = lease.remaining_s > 0 ? lease.remaining_s : lease.ttl_s;
  return promote_ms_ + std::max(ttl_s, options_.min_ttl_s) * 1000;
}

void Lessor::AdoptLocked(int64_t id, Lease& lease, int64_t now_ms) {
  lease.deadline_ms = DeadlineLocked(lease);
  lease.epoch = epoch_;
  lease.queued_ms = kNever;
  PushExpiryLocked(id, lease);
  PushCheckpointLocked(id, lease, now_ms);
}

void Lessor::PushExpiryLocked(int64_t id, Lease& lease) {
  lease.queued_ms = lease.deadline_ms;
  expiry_heap_.push_back(HeapEntry{lease.deadline_ms, id});
  std::push_heap(expiry_heap_.begin(), expiry_heap_.end(), std::greater<>());
}

void Lessor::PushCheckpointLocked(int64_t id, const Lease& lease, int64_t now_ms) {
  if (lease.ttl_s * 1000 <= options_.checkpoint_interval_ms) return;
  checkpoint_heap_.push_back(HeapEntry{now_ms + options_.checkpoint_interval_ms, id});
  std::push_heap(checkpoint_heap_.begin(), checkpoint_heap_.end(), std::greater<>());
}

absl::StatusOr<int64_t> Lessor::Renew(int64_t id) {
  absl::MutexLock lock(&mu_);
  if (!leader_) return errors::NotLeader();
  auto it = leases_.find(id);
  if (it == leases_.end()) return 0;
  Lease& lease = it->second;
  int64_t now = clock_->NowMs();
  if (lease.revoke_epoch == epoch_ || DeadlineLocked(lease) <= now) return 0;
  if (lease.epoch != epoch_) AdoptLocked(id, lease, now);
  lease.deadline_ms = now + lease.ttl_s * 1000;
  // The live heap entry fires no later than the deadline; when it fires early it is
  // pushed again with the deadline then current.
  if (lease.deadline_ms < lease.queued_ms) PushExpiryLocked(id, lease);
  // A checkpointed remaining TTL (applied, or about to be) would shorten the renewed
  // lease under a new leader: reset it.
  bool checkpointed = lease.remaining_s > 0 ||
                      (checkpoint_in_flight_ &&
                       lease.ttl_s * 1000 > options_.checkpoint_interval_ms);
  if (checkpointed && lease.reset_epoch != epoch_) {
    lease.reset_epoch = epoch_;
    pending_resets_.push_back(id);
  }
  return lease.ttl_s;
}

std::optional<Lessor::TimeToLive> Lessor::GetTimeToLive(int64_t id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  const Lease& lease = it->second;
  TimeToLive out;
  out.granted_ttl_s = lease.ttl_s;
  if (leader_) {
    out.ttl_s = std::max<int64_t>(DeadlineLocked(lease) - clock_->NowMs(), 0) / 1000;
  } else {
    out.ttl_s = lease.remaining_s > 0 ? lease.remaining_s : lease.ttl_s;
  }
  return out;
}

void Lessor::RebuildChunkLocked(int64_t now_ms) {
  auto it = leases_.lower_bound(rebuild_cursor_);
  for (int n = 0; it != leases_.end() && n < options_.rebuild_chunk; ++it, ++n) {
    if (it->second.epoch != epoch_) AdoptLocked(it->first, it->second, now_ms);
  }
  if (it == leases_.end()) {
    rebuild_pending_ = false;
  } else {
    rebuild_cursor_ = it->first;
  }
}

std::vector<int64_t> Lessor::CollectExpiredLocked(int64_t now_ms) {
  std::vector<int64_t> ids;
  while (!expiry_heap_.empty() && expiry_heap_.front().at_ms <= now_ms &&
         static_cast<int>(ids.size()) < options_.max_revokes_per_proposal) {
    std::pop_heap(expiry_heap_.begin(), expiry_heap_.end(), std::greater<>());
    HeapEntry entry = expiry_heap_.back();
    expiry_heap_.pop_back();
    auto it = leases_.find(entry.id);
    if (it == leases_.end()) continue;  // revoked
    Lease& lease = it->second;
    if (lease.epoch != epoch_ || lease.queued_ms != entry.at_ms) continue;  // stale entry
    if (lease.revoke_epoch == epoch_) continue;
    if (lease.deadline_ms > now_ms) {  // renewed since the entry was pushed
      PushExpiryLocked(entry.id, lease);
      continue;
    }
    lease.revoke_epoch = epoch_;
    lease.queued_ms = kNever;
    ids.push_back(entry.id);
  }
  return ids;
}

std::vector<etcdserverpb::LeaseCheckpoint> Lessor::CollectCheckpointsLocked(int64_t now_ms) {
  std::vector<etcdserverpb::LeaseCheckpoint> cps;
  const size_t max = static_cast<size_t>(options_.max_checkpoints_per_proposal);
  size_t taken = 0;
  for (; taken < pending_resets_.size() && cps.size() < max; ++taken) {
    int64_t id = pending_resets_[taken];
    auto it = leases_.find(id);
    if (it == leases_.end() || it->second.reset_epoch != epoch_) continue;
    etcdserverpb::LeaseCheckpoint& cp = cps.emplace_back();
    cp.set_id(id);
    cp.set_remaining_ttl(0);
  }
  pending_resets_.erase(pending_resets_.begin(), pending_resets_.begin() + taken);
  while (!checkpoint_heap_.empty() && checkpoint_heap_.front().at_ms <= now_ms &&
         cps.size() < max) {
    std::pop_heap(checkpoint_heap_.begin(), checkpoint_heap_.end(), std::greater<>());
    HeapEntry entry = checkpoint_heap_.back();
    checkpoint_heap_.pop_back();
    auto it = leases_.find(entry.id);
    if (it == leases_.end()) continue;
    Lease& lease = it->second;
    if (lease.epoch != epoch_ || lease.revoke_epoch == epoch_) continue;
    int64_t remaining_ms = lease.deadline_ms - now_ms;
    if (remaining_ms <= 0) continue;  // expiring: the revocation follows
    etcdserverpb::LeaseCheckpoint& cp = cps.emplace_back();
    cp.set_id(entry.id);
    // Rounded up: a checkpoint never shortens a lease.
    cp.set_remaining_ttl((remaining_ms + 999) / 1000);
    PushCheckpointLocked(entry.id, lease, now_ms);
  }
  return cps;
}

bool Lessor::MoreWorkLocked(int64_t now_ms) const {
  if (!leader_ || stopping_) return false;
  if (rebuild_pending_) return true;
  if (!revoke_in_flight_ && !expiry_heap_.empty() && expiry_heap_.front().at_ms <= now_ms) {
    return true;
  }
  if (!checkpoint_in_flight_ &&
      (!pending_resets_.empty() ||
       (!checkpoint_heap_.empty() && checkpoint_heap_.front().at_ms <= now_ms))) {
    return true;
  }
  return false;
}

bool Lessor::Tick() {
  std::vector<int64_t> expired;
  std::vector<etcdserverpb::LeaseCheckpoint> cps;
  uint64_t epoch;
  int64_t now;
  {
    absl::MutexLock lock(&mu_);
    if (!leader_ || stopping_) return false;
    now = clock_->NowMs();
    if (rebuild_pending_) RebuildChunkLocked(now);
    if (!revoke_in_flight_) {
      expired = CollectExpiredLocked(now);
      revoke_in_flight_ = !expired.empty();
    }
    if (!checkpoint_in_flight_) {
      cps = CollectCheckpointsLocked(now);
      checkpoint_in_flight_ = !cps.empty();
    }
    epoch = epoch_;
  }
  if (!expired.empty()) {
    internalpb::Request req;
    req.mutable_lease_expire()->mutable_ids()->Add(expired.begin(), expired.end());
    req.mutable_lease_expire()->set_max_keys(options_.max_revoked_keys_per_proposal);
    propose_(std::move(req), [this, epoch, ids = std::move(expired)](absl::Status s) mutable {
      OnRevokesDone(epoch, std::move(ids), std::move(s));
    });
  }
  if (!cps.empty()) {
    internalpb::Request req;
    for (const etcdserverpb::LeaseCheckpoint& cp : cps) {
      *req.mutable_lease_checkpoint()->add_checkpoints() = cp;
    }
    propose_(std::move(req), [this, epoch, cps = std::move(cps)](absl::Status s) mutable {
      OnCheckpointsDone(epoch, std::move(cps), std::move(s));
    });
  }
  absl::MutexLock lock(&mu_);
  return MoreWorkLocked(now);
}

void Lessor::OnRevokesDone(uint64_t epoch, std::vector<int64_t> ids, absl::Status s) {
  absl::MutexLock lock(&mu_);
  revoke_in_flight_ = false;
  wake_ = true;
  if (epoch != epoch_) return;
  // Applied: the leases are gone, but those the request's key bound did not reach; they
  // go again at once. Not applied (e.g. leadership lost mid-way): try again later. Either
  // way the leases stay expired.
  int64_t retry_ms = clock_->NowMs() + (s.ok() ? 0 : options_.retry_delay_ms);
  for (int64_t id : ids) {
    auto it = leases_.find(id);
    if (it == leases_.end() || it->second.revoke_epoch != epoch_) continue;
    Lease& lease = it->second;
    lease.revoke_epoch = 0;
    lease.queued_ms = retry_ms;
    expiry_heap_.push_back(HeapEntry{retry_ms, id});
    std::push_heap(expiry_heap_.begin(), expiry_heap_.end(), std::greater<>());
  }
}

void Lessor::OnCheckpointsDone(uint64_t epoch, std::vector<etcdserverpb::LeaseCheckpoint> cps,
                               absl::Status s) {
  absl::MutexLock lock(&mu_);
  checkpoint_in_flight_ = false;
  wake_ = true;
  if (epoch != epoch_) return;
  for (const etcdserverpb::LeaseCheckpoint& cp : cps) {
    if (cp.remaining_ttl() != 0) continue;
    auto it = leases_.find(cp.id());
    if (it == leases_.end()) continue;
    if (s.ok()) {
      it->second.reset_epoch = 0;
    } else {
      pending_resets_.push_back(cp.id());  // reset_epoch stays: still queued
    }
  }
}

bool Lessor::revoke_in_flight() const {
  absl::ReaderMutexLock lock(&mu_);
  return revoke_in_flight_;
}

bool Lessor::checkpoint_in_flight() const {
  absl::ReaderMutexLock lock(&mu_);
  return checkpoint_in_flight_;
}

bool Lessor::rebuild_pending() const {
  absl::ReaderMutexLock lock(&mu_);
  return rebuild_pending_;
}

}  // namespace kvd::server::lease
