// Tests of server/lease/lessor.cc and server/lease/lease_apply.cc: the lease table, expiry,
// keep-alives, checkpoints, restarts and leader changes, on a real store with a fake clock.
//
// The lessor's proposals are not applied by a node here: they queue in the harness, and the
// test applies them (ApplyProposed) the way the node's apply loop does — in one batch, then
// the callbacks. Nothing runs on a timer: the test advances the clock and calls Tick().
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "gtest/gtest.h"
#include "server/apply/applier.h"
#include "server/lease/lease_apply.h"
#include "server/lease/lessor.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server::lease {
namespace {

class FakeClock final : public Clock {
 public:
  int64_t NowMs() const override { return now_ms_; }
  void Advance(int64_t ms) { now_ms_ += ms; }

 private:
  int64_t now_ms_ = 1'000'000;
};

constexpr int64_t kSecond = 1000;

// A member with a store, a lessor and the appliers; it is always leader unless told not to be.
class Member {
 public:
  explicit Member(LessorOptions options = {})
      : options_(options),
        dir_(absl::StrCat(::testing::TempDir(), "/lessor_test_", getpid(), "_", counter_++)) {
    std::filesystem::remove_all(dir_);
    Open();
  }
  ~Member() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Closes and reopens everything from disk, as a restart does; becomes leader again.
  void Restart() {
    Close();
    Open();
  }

  FakeClock& clock() { return clock_; }
  Lessor& lessor() { return *lessor_; }
  storage::mvcc::KvStore& kv() { return *kv_; }
  storage::Engine& engine() { return *engine_; }
  std::deque<internalpb::Request>& proposed() { return proposed_; }

  // Applies one request in its own batch, as a client's proposal would be.
  absl::Status Apply(const internalpb::Request& req, google::protobuf::Message* resp = nullptr) {
    std::unique_ptr<storage::mvcc::ApplyBatch> batch = kv_->NewApplyBatch();
    absl::Status s = ApplyIn(*batch, req, resp);
    batch->SetAppliedIndex(kv_->applied_index() + 1);
    EXPECT_TRUE(batch->Commit(/*sync=*/false).ok());
    return s;
  }

  // Applies every request the lessor proposed, in one batch, then answers them with OK.
  // Returns how many there were.
  int ApplyProposed() {
    std::deque<Pending> pending;
    pending.swap(pending_);
    proposed_.clear();
    if (pending.empty()) return 0;
    std::unique_ptr<storage::mvcc::ApplyBatch> batch = kv_->NewApplyBatch();
    for (Pending& p : pending) EXPECT_TRUE(ApplyIn(*batch, p.req, nullptr).ok());
    batch->SetAppliedIndex(kv_->applied_index() + pending.size());
    EXPECT_TRUE(batch->Commit(/*sync=*/false).ok());
    for (Pending& p : pending) std::move(p.done)(absl::OkStatus());
    return static_cast<int>(pending.size());
  }

  // Answers every proposal with error (not applied), as a node that lost leadership does.
  void FailProposed(const absl::Status& error) {
    std::deque<Pending> pending;
    pending.swap(pending_);
    proposed_.clear();
    for (Pending& p : pending) std::move(p.done)(error);
  }

  int64_t Grant(int64_t id, int64_t ttl_s) {
    internalpb::Request req;
    req.mutable_lease_grant()->set_id(id);
    req.mutable_lease_grant()->set_ttl(ttl_s);
    etcdserverpb::LeaseGrantResponse resp;
    EXPECT_TRUE(Apply(req, &resp).ok());
    return resp.ttl();
  }

  absl::Status Put(const std::string& key, int64_t lease) {
    internalpb::Request req;
    req.mutable_put()->set_key(key);
    req.mutable_put()->set_value("v");
    req.mutable_put()->set_lease(lease);
    return Apply(req);
  }

  bool HasKey(const std::string& key) {
    absl::StatusOr<storage::mvcc::RangeResult> r =
        kv_->Read()->Range(storage::mvcc::KeyRange::Single(key), {});
    EXPECT_TRUE(r.ok());
    return r.ok() && r->count == 1;
  }

  // Ticks until the lessor reports no more immediate work (bounded).
  void TickAll() {
    for (int i = 0; i < 10000 && lessor_->Tick(); ++i) {
    }
  }

  // The IDs the lessor proposed to revoke (all pending LeaseExpire requests).
  std::vector<int64_t> ProposedExpiries() const {
    std::vector<int64_t> ids;
    for (const internalpb::Request& r : proposed_) {
      if (r.has_lease_expire()) ids.insert(ids.end(), r.lease_expire().ids().begin(),
                                           r.lease_expire().ids().end());
    }
    return ids;
  }
  // The checkpoints the lessor proposed, as (id, remaining) pairs.
  std::vector<std::pair<int64_t, int64_t>> ProposedCheckpoints() const {
    std::vector<std::pair<int64_t, int64_t>> cps;
    for (const internalpb::Request& r : proposed_) {
      if (!r.has_lease_checkpoint()) continue;
      for (const auto& cp : r.lease_checkpoint().checkpoints()) {
        cps.emplace_back(cp.id(), cp.remaining_ttl());
      }
    }
    return cps;
  }

  // Ticks at every whole second until a revocation of id is proposed; returns the clock
  // time then (or -1 after max_s seconds). Applies proposals as they come.
  int64_t TimeOfExpiry(int64_t id, int64_t max_s) {
    for (int64_t i = 0; i <= max_s; ++i) {
      TickAll();
      for (int64_t e : ProposedExpiries()) {
        if (e == id) return clock_.NowMs();
      }
      ApplyProposed();
      clock_.Advance(kSecond);
    }
    return -1;
  }

 private:
  struct Pending {
    internalpb::Request req;
    Lessor::Done done;
  };

  absl::Status ApplyIn(storage::mvcc::ApplyBatch& batch, const internalpb::Request& req,
                       google::protobuf::Message* resp) {
    if (LeaseApplier::Handles(req)) return lease_applier_->Apply(batch, req, resp);
    return applier_->Apply(batch, req, resp);
  }

  void Open() {
    storage::EngineOptions eo;
    eo.path = dir_;
    auto engine = storage::Engine::Open(eo);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    auto kv = storage::mvcc::KvStore::Open(engine_.get());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
    lessor_ = std::make_unique<Lessor>(
        options_, &clock_, [this](internalpb::Request req, Lessor::Done done) {
          proposed_.push_back(req);
          pending_.push_back(Pending{std::move(req), std::move(done)});
        });
    ASSERT_TRUE(LoadLeases(*engine_, lessor_.get()).ok());
    lease_applier_ = std::make_unique<LeaseApplier>(lessor_.get());
    applier_ = std::make_unique<Applier>([this](int64_t id) { return lessor_->Exists(id); });
    lessor_->SetLeader(true);
  }

  void Close() {
    pending_.clear();
    proposed_.clear();
    applier_.reset();
    lease_applier_.reset();
    lessor_.reset();
    kv_.reset();
    engine_.reset();
  }

  static inline int counter_ = 0;
  LessorOptions options_;
  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::mvcc::KvStore> kv_;
  std::unique_ptr<Lessor> lessor_;
  std::unique_ptr<LeaseApplier> lease_applier_;
  std::unique_ptr<Applier> applier_;
  std::deque<internalpb::Request> proposed_;
  std::deque<Pending> pending_;
};

internalpb::Request Revoke(int64_t id) {
  internalpb::Request req;
  req.mutable_lease_revoke()->set_id(id);
  return req;
}

internalpb::Request Checkpoint(int64_t id, int64_t remaining_s) {
  internalpb::Request req;
  etcdserverpb::LeaseCheckpoint* cp = req.mutable_lease_checkpoint()->add_checkpoints();
  cp->set_id(id);
  cp->set_remaining_ttl(remaining_s);
  return req;
}

// ---- etcd's TTL rules ----------------------------------------------------------------------

TEST(MinLeaseTtl, IsCeilOfOneAndAHalfElectionTimeouts) {
  EXPECT_EQ(MinLeaseTtlSeconds(1000, 100), 2);  // etcd's defaults: 1.5 s -> 2 s
  EXPECT_EQ(MinLeaseTtlSeconds(5000, 100), 8);  // 7.5 s
  EXPECT_EQ(MinLeaseTtlSeconds(2000, 100), 3);  // exactly 3 s
  EXPECT_EQ(MinLeaseTtlSeconds(1000, 300), 2);  // 3 ticks -> 4 ticks of 300 ms = 1.2 s
  EXPECT_EQ(MinLeaseTtlSeconds(100, 100), 1);   // never below 1 s
}

// ---- Applied state -------------------------------------------------------------------------

TEST(LeaseApply, GrantRevokeAndErrors) {
  Member m;
  EXPECT_EQ(m.Grant(7, 60), 60);
  EXPECT_TRUE(m.lessor().Exists(7));

  internalpb::Request again;
  again.mutable_lease_grant()->set_id(7);
  again.mutable_lease_grant()->set_ttl(60);
  EXPECT_EQ(m.Apply(again), errors::LeaseExists());
  internalpb::Request huge;
  huge.mutable_lease_grant()->set_id(8);
  huge.mutable_lease_grant()->set_ttl(kMaxLeaseTtlSeconds + 1);
  EXPECT_EQ(m.Apply(huge), errors::LeaseTtlTooLarge());
  EXPECT_FALSE(m.lessor().Exists(8));

  EXPECT_EQ(m.Put("unknown-lease", 12345), errors::LeaseNotFound());
  ASSERT_TRUE(m.Put("a", 7).ok());
  ASSERT_TRUE(m.Put("b", 7).ok());
  ASSERT_TRUE(m.Put("plain", 0).ok());
  int64_t before = m.kv().current_rev();

  etcdserverpb::LeaseRevokeResponse resp;
  ASSERT_TRUE(m.Apply(Revoke(7), &resp).ok());
  // Both keys go in one revision.
  EXPECT_EQ(resp.header().revision(), before + 1);
  EXPECT_EQ(m.kv().current_rev(), before + 1);
  EXPECT_FALSE(m.HasKey("a"));
  EXPECT_FALSE(m.HasKey("b"));
  EXPECT_TRUE(m.HasKey("plain"));
  EXPECT_FALSE(m.lessor().Exists(7));
  EXPECT_EQ(m.Apply(Revoke(7)), errors::LeaseNotFound());
  EXPECT_EQ(m.Put("c", 7), errors::LeaseNotFound());
}

TEST(LeaseApply, RevokeWithoutKeysTakesNoRevision) {
  Member m;
  m.Grant(9, 10);
  int64_t before = m.kv().current_rev();
  etcdserverpb::LeaseRevokeResponse resp;
  ASSERT_TRUE(m.Apply(Revoke(9), &resp).ok());
  EXPECT_EQ(resp.header().revision(), before);
  EXPECT_EQ(m.kv().current_rev(), before);
}

TEST(LeaseApply, ReloadAfterSnapshotReplacesTheTable) {
  Member m;
  m.Grant(1, 10);
  m.Grant(2, 10);
  m.clock().Advance(5 * kSecond);
  // A snapshot's lease family: lease 2 gone, lease 3 (checkpointed at 4 s left) new.
  rocksdb::WriteBatch wb;
  wb.Delete(m.engine().cf(storage::Cf::kLease), LeaseRecordKey(2));
  internalpb::LeaseRecord three;
  three.set_id(3);
  three.set_ttl(30);
  three.set_remaining_ttl(4);
  wb.Put(m.engine().cf(storage::Cf::kLease), LeaseRecordKey(3), three.SerializeAsString());
  ASSERT_TRUE(m.engine().Write(&wb, /*sync=*/false).ok());
  ASSERT_TRUE(ReloadLeases(m.engine(), &m.lessor()).ok());
  EXPECT_EQ(m.lessor().Leases(), (std::vector<int64_t>{1, 3}));
  // Deadlines restart as after a promotion: never shorter than before.
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->ttl_s, 10);
  EXPECT_EQ(m.lessor().GetTimeToLive(3)->ttl_s, 4);
  int64_t reloaded_at = m.clock().NowMs();
  EXPECT_EQ(m.TimeOfExpiry(3, 10), reloaded_at + 4 * kSecond);
}

TEST(LeaseApply, CorruptRecordIsReported) {
  Member m;
  rocksdb::WriteBatch wb;
  wb.Put(m.engine().cf(storage::Cf::kLease), LeaseRecordKey(5), "\xff\xff garbage");
  ASSERT_TRUE(m.engine().Write(&wb, /*sync=*/false).ok());
  EXPECT_EQ(ReloadLeases(m.engine(), &m.lessor()).code(), absl::StatusCode::kDataLoss);
}

TEST(LeaseApply, LeasesSurviveRestart) {
  Member m;
  m.Grant(5, 100);
  m.Grant(-3, 30);  // etcd accepts negative IDs chosen by the client
  ASSERT_TRUE(m.Put("k", 5).ok());
  m.Restart();
  EXPECT_EQ(m.lessor().Leases(), (std::vector<int64_t>{-3, 5}));
  ASSERT_TRUE(m.lessor().Get(5).has_value());
  EXPECT_EQ(m.lessor().Get(5)->ttl(), 100);
  ASSERT_TRUE(m.Apply(Revoke(5)).ok());
  EXPECT_FALSE(m.HasKey("k"));
  m.Restart();
  EXPECT_EQ(m.lessor().Leases(), (std::vector<int64_t>{-3}));
}

// ---- Expiry --------------------------------------------------------------------------------

TEST(Expiry, ExpiredLeaseIsRevokedThroughAProposal) {
  Member m;
  m.Grant(1, 10);
  ASSERT_TRUE(m.Put("k", 1).ok());
  m.clock().Advance(10 * kSecond - 1);
  m.TickAll();
  EXPECT_TRUE(m.proposed().empty());
  m.clock().Advance(1);
  m.TickAll();
  EXPECT_EQ(m.ProposedExpiries(), std::vector<int64_t>{1});
  // Expired but not yet revoked: keep-alives answer TTL 0, Put still finds the lease (as
  // etcd, whose lease exists until its revocation is applied).
  EXPECT_EQ(*m.lessor().Renew(1), 0);
  EXPECT_TRUE(m.lessor().Exists(1));
  EXPECT_EQ(m.ApplyProposed(), 1);
  EXPECT_FALSE(m.lessor().Exists(1));
  EXPECT_FALSE(m.HasKey("k"));
  m.TickAll();
  EXPECT_TRUE(m.proposed().empty());
}

TEST(Expiry, KeepAliveExtends) {
  Member m;
  m.Grant(1, 10);
  m.clock().Advance(8 * kSecond);
  EXPECT_EQ(*m.lessor().Renew(1), 10);
  int64_t renewed_at = m.clock().NowMs();
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->ttl_s, 10);
  // The old deadline (2 s from now) passes without an expiry; the new one brings it.
  EXPECT_EQ(m.TimeOfExpiry(1, 30), renewed_at + 10 * kSecond);
}

TEST(Expiry, RenewOfUnknownLeaseAnswersZeroAndFollowerRefuses) {
  Member m;
  EXPECT_EQ(*m.lessor().Renew(42), 0);
  m.Grant(1, 10);
  m.lessor().SetLeader(false);
  EXPECT_EQ(m.lessor().Renew(1).status(), errors::NotLeader());
  // A follower proposes nothing, however much time passes.
  m.clock().Advance(100 * kSecond);
  m.TickAll();
  EXPECT_TRUE(m.proposed().empty());
  EXPECT_TRUE(m.lessor().Exists(1));
}

TEST(Expiry, TimeToLiveTruncatesLikeEtcd) {
  Member m;
  m.Grant(1, 600);
  m.clock().Advance(1);
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->ttl_s, 599);
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->granted_ttl_s, 600);
  EXPECT_FALSE(m.lessor().GetTimeToLive(2).has_value());
}

TEST(Expiry, StormIsRevokedInBoundedBatchesOneInFlight) {
  LessorOptions options;
  options.max_revokes_per_proposal = 128;
  Member m(options);
  constexpr int kLeases = 1000;
  for (int i = 1; i <= kLeases; ++i) m.Grant(i, 5);
  for (int i = 1; i <= kLeases; ++i) ASSERT_TRUE(m.Put(absl::StrCat("k", i), i).ok());
  int64_t before = m.kv().current_rev();
  m.clock().Advance(5 * kSecond);
  int proposals = 0;
  for (int round = 0; round < 20 && m.lessor().size() > 0; ++round) {
    m.TickAll();
    m.TickAll();  // a second tick proposes nothing while one is in flight
    ASSERT_EQ(m.proposed().size(), 1u);
    EXPECT_LE(m.ProposedExpiries().size(), 128u);
    EXPECT_TRUE(m.lessor().revoke_in_flight());
    m.ApplyProposed();
    ++proposals;
  }
  EXPECT_EQ(proposals, (kLeases + 127) / 128);
  EXPECT_EQ(m.lessor().size(), 0u);
  // One revision per lease with keys.
  EXPECT_EQ(m.kv().current_rev(), before + kLeases);
}

TEST(Expiry, RevocationsAreBoundedByKeysPerProposal) {
  LessorOptions options;
  options.max_revoked_keys_per_proposal = 6;
  Member m(options);
  for (int id = 1; id <= 3; ++id) {
    m.Grant(id, 5);
    for (int k = 0; k < 5; ++k) ASSERT_TRUE(m.Put(absl::StrCat("l", id, "/", k), id).ok());
  }
  int64_t before = m.kv().current_rev();
  m.clock().Advance(5 * kSecond);
  m.TickAll();
  ASSERT_EQ(m.ProposedExpiries(), (std::vector<int64_t>{1, 2, 3}));
  ASSERT_EQ(m.proposed().front().lease_expire().max_keys(), 6);
  m.ApplyProposed();
  // 5 keys, then 10 >= 6: the third lease is left for the next proposal.
  EXPECT_EQ(m.lessor().Leases(), std::vector<int64_t>{3});
  EXPECT_EQ(m.kv().current_rev(), before + 2);
  EXPECT_EQ(*m.lessor().Renew(3), 0);  // still expired
  m.TickAll();
  EXPECT_EQ(m.ProposedExpiries(), std::vector<int64_t>{3});
  m.ApplyProposed();
  EXPECT_EQ(m.lessor().size(), 0u);
  EXPECT_EQ(m.kv().current_rev(), before + 3);
}

TEST(Expiry, FailedRevocationIsRetried) {
  LessorOptions options;
  options.retry_delay_ms = 500;
  Member m(options);
  m.Grant(1, 3);
  m.clock().Advance(3 * kSecond);
  m.TickAll();
  ASSERT_EQ(m.ProposedExpiries(), std::vector<int64_t>{1});
  m.FailProposed(errors::Timeout());
  m.TickAll();
  EXPECT_TRUE(m.proposed().empty());
  EXPECT_EQ(*m.lessor().Renew(1), 0);  // still expired
  m.clock().Advance(500);
  m.TickAll();
  EXPECT_EQ(m.ProposedExpiries(), std::vector<int64_t>{1});
  m.ApplyProposed();
  EXPECT_FALSE(m.lessor().Exists(1));
}

TEST(Expiry, ClientRevokeBeforeExpiryApplyIsHarmless) {
  Member m;
  m.Grant(1, 3);
  m.Grant(2, 3);
  m.clock().Advance(3 * kSecond);
  m.TickAll();
  ASSERT_EQ(m.ProposedExpiries().size(), 2u);
  ASSERT_TRUE(m.Apply(Revoke(1)).ok());
  m.ApplyProposed();
  EXPECT_EQ(m.lessor().size(), 0u);
}

// ---- Leader changes ------------------------------------------------------------------------

TEST(LeaderChange, NewLeaderGivesTheFullTtl) {
  Member m;
  m.Grant(1, 10);
  int64_t granted_at = m.clock().NowMs();
  m.clock().Advance(8 * kSecond);
  m.lessor().SetLeader(false);
  m.clock().Advance(1 * kSecond);
  m.lessor().SetLeader(true);
  int64_t promoted_at = m.clock().NowMs();
  // Never shortened: the old deadline was granted_at + 10 s; now it is promoted_at + 10 s.
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->ttl_s, 10);
  EXPECT_EQ(m.TimeOfExpiry(1, 30), promoted_at + 10 * kSecond);
  EXPECT_GT(promoted_at + 10 * kSecond, granted_at + 10 * kSecond);
}

TEST(LeaderChange, PromotionIsLazyAndChunked) {
  LessorOptions options;
  options.rebuild_chunk = 100;
  options.max_revokes_per_proposal = 1000;
  Member m(options);
  m.lessor().SetLeader(false);
  for (int i = 1; i <= 1000; ++i) m.Grant(i, 10 + i % 7);
  m.lessor().SetLeader(true);
  int64_t promoted_at = m.clock().NowMs();
  EXPECT_TRUE(m.lessor().rebuild_pending());
  // Before any rebuild work, the deadlines are already right.
  EXPECT_EQ(m.lessor().GetTimeToLive(3)->ttl_s, 13);
  int ticks = 0;
  while (m.lessor().Tick()) {
    ASSERT_LT(++ticks, 100);
  }
  EXPECT_EQ(ticks + 1, 10);  // 1000 leases / 100 per tick
  EXPECT_FALSE(m.lessor().rebuild_pending());
  // Every lease expires at promotion + its TTL.
  m.clock().Advance(10 * kSecond - 1);
  m.TickAll();
  EXPECT_TRUE(m.proposed().empty());
  m.clock().Advance(1);
  ASSERT_EQ(m.clock().NowMs(), promoted_at + 10 * kSecond);
  m.TickAll();
  std::vector<int64_t> first = m.ProposedExpiries();
  EXPECT_EQ(first.size(), 142u);  // TTL 10: the multiples of 7 up to 1000
  for (int64_t id : first) EXPECT_EQ(id % 7, 0);
  m.ApplyProposed();
  EXPECT_EQ(m.lessor().size(), 1000u - 142u);
}

TEST(LeaderChange, RenewBeforeRebuildReachesTheLease) {
  LessorOptions options;
  options.rebuild_chunk = 1;
  Member m(options);
  m.lessor().SetLeader(false);
  m.Grant(1, 10);
  m.Grant(2, 10);
  m.lessor().SetLeader(true);
  m.clock().Advance(5 * kSecond);
  ASSERT_EQ(*m.lessor().Renew(2), 10);
  int64_t renewed_at = m.clock().NowMs();
  EXPECT_EQ(m.TimeOfExpiry(2, 30), renewed_at + 10 * kSecond);
}

// ---- Checkpoints ---------------------------------------------------------------------------

TEST(Checkpoint, RemainingTtlIsCheckpointedAndSurvivesRestart) {
  LessorOptions options;
  options.checkpoint_interval_ms = 5 * kSecond;
  Member m(options);
  m.Grant(1, 60);
  m.Grant(2, 4);  // TTL below the interval: never checkpointed
  int64_t granted_at = m.clock().NowMs();
  m.clock().Advance(5 * kSecond);
  m.TickAll();
  EXPECT_EQ(m.ProposedCheckpoints(), (std::vector<std::pair<int64_t, int64_t>>{{1, 55}}));
  m.ApplyProposed();
  ASSERT_TRUE(m.lessor().Get(1).has_value());
  EXPECT_EQ(m.lessor().Get(1)->remaining_ttl(), 55);

  m.clock().Advance(1 * kSecond);
  m.Restart();
  int64_t restarted_at = m.clock().NowMs();
  // Not shortened (old deadline granted_at + 60 s), nor reset to the full TTL.
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->ttl_s, 55);
  EXPECT_GE(restarted_at + 55 * kSecond, granted_at + 60 * kSecond);
  EXPECT_EQ(m.TimeOfExpiry(1, 100), restarted_at + 55 * kSecond);
}

TEST(Checkpoint, KeepAliveResetsTheCheckpoint) {
  LessorOptions options;
  options.checkpoint_interval_ms = 5 * kSecond;
  Member m(options);
  m.Grant(1, 60);
  m.clock().Advance(5 * kSecond);
  m.TickAll();
  m.ApplyProposed();
  ASSERT_EQ(m.lessor().Get(1)->remaining_ttl(), 55);
  m.clock().Advance(4 * kSecond);  // before the next periodic checkpoint
  ASSERT_EQ(*m.lessor().Renew(1), 60);
  m.TickAll();
  // A checkpoint of 0: a new leader must give the renewed lease its full TTL again.
  EXPECT_EQ(m.ProposedCheckpoints(), (std::vector<std::pair<int64_t, int64_t>>{{1, 0}}));
  m.ApplyProposed();
  EXPECT_EQ(m.lessor().Get(1)->remaining_ttl(), 0);
  m.Restart();
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->ttl_s, 60);
}

TEST(Checkpoint, KeepAliveDuringAnInFlightCheckpointAlsoResets) {
  LessorOptions options;
  options.checkpoint_interval_ms = 5 * kSecond;
  Member m(options);
  m.Grant(1, 60);
  m.clock().Advance(5 * kSecond);
  m.TickAll();
  ASSERT_EQ(m.ProposedCheckpoints().size(), 1u);  // in flight, not applied
  ASSERT_EQ(*m.lessor().Renew(1), 60);
  m.ApplyProposed();  // applies remaining 55
  m.TickAll();
  EXPECT_EQ(m.ProposedCheckpoints(), (std::vector<std::pair<int64_t, int64_t>>{{1, 0}}));
  m.ApplyProposed();
  EXPECT_EQ(m.lessor().Get(1)->remaining_ttl(), 0);
}

TEST(Checkpoint, PromotionNeverGivesLessThanTheMinimum) {
  LessorOptions options;
  options.min_ttl_s = 2;
  Member m(options);
  m.Grant(1, 60);
  ASSERT_TRUE(m.Apply(Checkpoint(1, 1)).ok());
  m.lessor().SetLeader(false);
  m.lessor().SetLeader(true);
  EXPECT_EQ(m.lessor().GetTimeToLive(1)->ttl_s, 2);
}

TEST(Checkpoint, UnrenewedLeaseExpiresDespiteFrequentLeaderChanges) {
  LessorOptions options;
  options.checkpoint_interval_ms = 5 * kSecond;
  Member m(options);
  m.Grant(1, 60);
  int64_t granted_at = m.clock().NowMs();
  // A leader change every 20 s: without checkpoints the lease would live forever.
  bool expired = false;
  for (int s = 1; s <= 200 && !expired; ++s) {
    m.clock().Advance(kSecond);
    if (s % 20 == 0) {
      m.lessor().SetLeader(false);
      m.lessor().SetLeader(true);
    }
    m.TickAll();
    for (int64_t id : m.ProposedExpiries()) expired |= id == 1;
    m.ApplyProposed();
  }
  EXPECT_TRUE(expired);
  EXPECT_FALSE(m.lessor().Exists(1));
  // It lived at least its TTL, and at most TTL + one checkpoint interval per leader change.
  EXPECT_GE(m.clock().NowMs(), granted_at + 60 * kSecond);
  EXPECT_LE(m.clock().NowMs(), granted_at + 100 * kSecond);
}

TEST(Checkpoint, CheckpointOfMissingLeaseIsIgnored) {
  Member m;
  ASSERT_TRUE(m.Apply(Checkpoint(99, 10)).ok());
  EXPECT_FALSE(m.lessor().Exists(99));
  m.Restart();
  EXPECT_EQ(m.lessor().size(), 0u);
}

}  // namespace
}  // namespace kvd::server::lease
