// A kvd member: raft, the durable log, the store, and the threads that connect them.
//
// Threads (DESIGN.md, server/):
//   raft thread   owns the RawNode. Ticks it, steps received messages, proposes, asks for
//                 read indexes, and handles each Ready: persist (one synced RocksDB write
//                 for all entries of the Ready: group commit), send, hand committed entries
//                 to the apply thread, Advance. A leader sends before its own write
//                 completes (raft/ready.h allows it); followers after.
//   apply thread  applies committed entries in batches (one RocksDB write per batch, with
//                 the applied index, unsynced: the synced log replays what a crash loses),
//                 then answers the waiting requests, wakes linearizable reads and tells the
//                 hooks (watchers). Installs snapshots. A batch of a few entries that finds
//                 the apply thread idle is applied by the raft thread itself instead (one
//                 thread hand-off less on a lightly loaded write's path); the two never
//                 apply at the same time, and entries are applied in log order.
//   compactor     removes old MVCC versions in bounded steps.
// No request waits on a lock held across an fsync: gRPC threads only enqueue under short
// critical sections and are answered through callbacks.
//
// Requests: Propose() tags the request with (member id, request id) and proposes it; a
// follower's raft forwards it to the leader. Whichever member proposed it finds its waiter
// when the entry is applied locally. A request that is not applied within the request
// timeout is answered errors::Timeout() (its outcome is then unknown to the client, as with
// etcd). ReadIndex() batches concurrent reads behind one raft ReadIndex round.
#ifndef KVD_SERVER_NODE_H_
#define KVD_SERVER_NODE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "api/kvdpb/internal.pb.h"
#include "raft/rawnode.h"
#include "server/apply/applier.h"
#include "server/transport/transport.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"
#include "storage/raft_log.h"

namespace kvd::server {

struct NodeOptions {
  std::string name = "default";
  // The member's data directory (etcd's --data-dir); the store lives in <data_dir>/member/kvd.
  std::string data_dir;

  // Bootstrap (used only when data_dir holds no member yet), with etcd's meanings.
  std::string initial_cluster;  // "name=peer-url,..."
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  std::vector<std::string> initial_advertise_peer_urls;
  std::vector<std::string> advertise_client_urls;

  // etcd's --heartbeat-interval and --election-timeout; the raft tick is one heartbeat.
  absl::Duration heartbeat = absl::Milliseconds(100);
  absl::Duration election_timeout = absl::Milliseconds(1000);
  // A request not applied within this is answered errors::Timeout().
  absl::Duration request_timeout = absl::Seconds(7);
  // The log is compacted once it holds this many applied entries (etcd's --snapshot-count),
  // keeping the newest catch_up_entries for slow followers.
  uint64_t snapshot_count = 100000;
  uint64_t catch_up_entries = 5000;

  // Revisions of history removed per physical compaction step.
  int64_t compaction_step_revisions = 1000;

  // --kvd-plant-bug=no-fsync (fault-harness tests only): the raft log is never synced.
  bool plant_no_fsync = false;

  // Makes the peer transport (tests pass an in-process one).
  std::function<std::unique_ptr<Transport>(TransportOptions, RaftReceiver*, SnapshotSource*)>
      transport_factory;
};

// How the services built on the apply stream (leases, watches) plug into a node. Every
// hook is optional; all are set once, before Start().
struct NodeHooks {
  // Whether a lease exists, for Put's lease check (apply thread). Unset: none exists.
  std::function<bool(int64_t lease_id)> lease_exists;
  // Applies requests that are not KV requests (lease_grant, lease_revoke, ...), inside the
  // batch, with the same contract as Applier::Apply (apply thread).
  std::function<absl::Status(storage::mvcc::ApplyBatch& batch, const internalpb::Request& req,
                             google::protobuf::Message* response)>
      apply_other;
  // After each batch is durable and visible to reads: the store revision after it and its
  // changes in revision order (apply thread; must not block).
  std::function<void(int64_t rev, const std::vector<mvccpb::Event>& events)> on_applied;
  // This member became leader (true) or stopped being leader (false) (raft thread; must
  // not block).
  std::function<void(bool is_leader)> on_leadership;
  // A raft snapshot replaced the store's state (apply thread, before any later entry is
  // applied): state kept in memory beside the store (the lease table) is reloaded.
  std::function<void()> on_snapshot_installed;
};

class Node : private RaftReceiver, private SnapshotSource {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  // Opens (or bootstraps) the member. Nothing runs until Start().
  static absl::StatusOr<std::unique_ptr<Node>> Open(NodeOptions options);

  // Starts the threads. REQUIRES: called once.
  void Start(NodeHooks hooks);

  // Waits until this member's name and client URLs are in the replicated membership, or
  // timeout passes. Returns whether they are.
  bool WaitPublished(absl::Duration timeout) const;

  // Stops talking to peers (first step of a shutdown; the destructor does it too).
  void StopTransport() { transport_->Stop(); }

  // Stops the threads; requests not yet answered get errors::Stopped().
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Replicates req and applies it after every earlier entry. done runs exactly once (on
  // the apply or raft thread): OK once applied (and *response, if not null, holds the
  // response: see Applier::Apply for its type), or the request's error.
  // REQUIRES: response outlives the call of done.
  void Propose(internalpb::Request req, google::protobuf::Message* response, Done done);

  // done(OK) once a read from kv().Read() observes every write acknowledged before this
  // call (linearizable read); done(error) if that cannot be established in time.
  void ReadIndex(Done done);

  // done(OK) once old versions up to rev are physically removed (Compaction's physical).
  void WaitCompacted(int64_t rev, Done done);

  // Membership (the Cluster service). Each runs done on completion.
  std::vector<etcdserverpb::Member> Members() const ABSL_LOCKS_EXCLUDED(members_mu_);
  void AddMember(std::vector<std::string> peer_urls, bool is_learner,
                 absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::Member>) &&> done);
  void RemoveMember(uint64_t id, Done done);
  void UpdateMember(uint64_t id, std::vector<std::string> peer_urls, Done done);
  void PromoteMember(uint64_t id, Done done);
  // Hands leadership to target (Maintenance.MoveLeader). REQUIRES: this member leads.
  void TransferLeadership(uint64_t target, Done done);

  storage::mvcc::KvStore& kv() const { return *kv_; }
  storage::Engine& engine() const { return *engine_; }
  // The peer gRPC services, for main to register on the peer listener.
  grpc::Service* peer_service() const { return transport_->service(); }
  grpc::Service* membership_service() const { return membership_service_.get(); }

  uint64_t member_id() const { return member_id_; }
  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t raft_term() const { return term_.load(); }
  uint64_t leader_id() const { return leader_.load(); }
  uint64_t commit_index() const { return commit_.load(); }
  bool is_leader() const { return leader_id() == member_id_; }
  bool has_leader() const { return leader_id() != 0; }
  bool is_learner() const ABSL_LOCKS_EXCLUDED(members_mu_);
  // The index of the last applied entry.
  uint64_t applied_index() const { return kv_->applied_index(); }

  // Sets cluster_id, member_id and raft_term (revision is the response's own).
  void FillHeader(etcdserverpb::ResponseHeader* header) const;

 private:
  struct Waiter {
    google::protobuf::Message* response;
    Done done;
    absl::Time deadline;
  };
  struct PendingRead {
    Done done;
    absl::Time deadline;
  };
  struct ReadBatch {
    uint64_t index = 0;  // once the read state arrived
    std::vector<PendingRead> reads;
  };
  // Work for the apply thread, in raft order.
  struct ApplyTask {
    std::optional<raftpb::Snapshot> snapshot;
    std::string snapshot_dir;
    std::vector<raftpb::Entry> entries;
  };
  struct ConfChangeRequest {
    raftpb::ConfChange cc;
    Done done;  // answered when applied (or rejected)
    absl::Time deadline;
    // Promoting a learner: only the leader may propose it, once the learner caught up.
    bool promotion = false;
  };

  explicit Node(NodeOptions options) : options_(std::move(options)) {}
  absl::Status Bootstrap();
  // Bootstraps a member added to a running cluster (--initial-cluster-state=existing).
  absl::Status Join(const std::vector<std::string>& self_urls,
                    const std::map<std::string, std::vector<std::string>>& initial);

  // RaftReceiver (transport threads).
  void Receive(raftpb::Message msg) override;
  void ReceiveSnapshot(raftpb::Message msg, std::string dir) override;
  // SnapshotSource (transport threads).
  absl::Status WriteSnapshotFiles(const raftpb::Message& msg, const std::string& dir) override;

  void RaftLoop();
  // The raft context of this member's ReadIndex round `round`.
  std::string ReadContext(uint64_t round) const;
  void HandleReady(raft::Ready rd);
  void ExpireWaiters(absl::Time now);
  void ApplyLoop();
  // Applies tasks in order, then answers the reads (new ones and earlier ones still
  // waiting) whose index is now applied. Runs on the apply thread, or on the raft thread for
  // a small batch while the apply thread is idle; apply_busy_ keeps them from overlapping.
  void ApplyTasks(std::deque<ApplyTask>& tasks, std::vector<ReadBatch> reads);
  static bool CanApplyInline(const ApplyTask& task);
  static constexpr size_t kMaxInlineApplyEntries = 8;
  void ApplyTaskNow(ApplyTask& task);
  // Applies one conf change entry: to raft (on the raft thread), and, unless the state
  // already holds it, to the membership records.
  void ApplyConfChangeEntry(storage::mvcc::ApplyBatch& batch, const raftpb::Entry& entry,
                            bool state_applied);
  void CompactLoop();
  void ProposeConfChange(raftpb::ConfChange cc, Done done);
  uint64_t NextRequestId() { return next_request_id_.fetch_add(1); }

  NodeOptions options_;
  NodeHooks hooks_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::RaftLog> raft_log_;
  std::unique_ptr<storage::mvcc::KvStore> kv_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<grpc::Service> membership_service_;
  std::unique_ptr<raft::RawNode> raw_;  // raft thread only (after Start)
  bool raft_leader_ = false;            // raft thread only: raw_ is the leader
  uint64_t member_id_ = 0;
  uint64_t cluster_id_ = 0;
  std::atomic<uint64_t> next_request_id_{0};
  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> leader_{0};
  std::atomic<uint64_t> commit_{0};

  // Everything the raft thread consumes, and the waiters it or the apply thread answer.
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<raftpb::Message> inbox_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::string, absl::Time>> proposals_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingRead> reads_waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<ConfChangeRequest> conf_changes_waiting_ ABSL_GUARDED_BY(mu_);
  // Conf change entries the apply thread asks the raft thread to apply to the RawNode.
  std::deque<std::pair<raftpb::ConfChange, std::shared_ptr<std::optional<raftpb::ConfState>>>>
      conf_applies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, bool>> snapshot_reports_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> unreachable_reports_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, Done>> transfers_ ABSL_GUARDED_BY(mu_);
  // Transfers under way: target, answer, deadline.
  std::vector<std::tuple<uint64_t, Done, absl::Time>> transfers_pending_ ABSL_GUARDED_BY(mu_);
  // Received snapshot files by the index they hold, until raft installs or drops them.
  std::map<uint64_t, std::string> received_snapshots_ ABSL_GUARDED_BY(mu_);
  // Proposals of this member by request id, until applied or expired.
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // Conf changes of this member by change id.
  absl::flat_hash_map<uint64_t, ConfChangeRequest> conf_waiters_ ABSL_GUARDED_BY(mu_);
  // ReadIndex rounds by context, and reads whose index arrived, waiting for apply.
  std::map<uint64_t, ReadBatch> read_rounds_ ABSL_GUARDED_BY(mu_);
  std::vector<ReadBatch> reads_ready_ ABSL_GUARDED_BY(mu_);
  // Someone (the apply thread, or the raft thread inline) is applying; the state below
  // marked "applier only" belongs to it.
  bool apply_busy_ ABSL_GUARDED_BY(mu_) = false;
  // Reads whose index is known but not applied yet (applier only; on shutdown, read under
  // mu_ after the threads stopped).
  std::vector<ReadBatch> reads_pending_;
  // The last ReadIndex round found no leader to ask: waiting reads wait for the next tick.
  bool reads_retry_at_tick_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<ApplyTask> apply_queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<int64_t, Done>> compaction_waiters_ ABSL_GUARDED_BY(mu_);
  // ReadIndex contexts are unique across the cluster and across restarts (the leader keys
  // pending rounds by context, from every member): this member's id, then a round number
  // that starts from the clock so a restarted member does not reuse a pending one.
  uint64_t next_read_ctx_ ABSL_GUARDED_BY(mu_) = absl::ToUnixNanos(absl::Now());

  // Membership as of each applied conf change (applier only), to compact the log at
  // any index with the configuration that held there.
  std::vector<std::pair<uint64_t, raftpb::ConfState>> conf_history_;
  // The applied index a started memtable flush covers, 0 if none is under way (applier
  // only): the log may be compacted up to it once the flush is done.
  uint64_t flush_covers_ = 0;
  // Whether this member's name and client URLs are in the replicated membership.
  std::atomic<bool> published_{false};
  // Held while a snapshot replaces the state, and by each physical compaction step: a step
  // must not compute deletions from a state that is being replaced.
  absl::Mutex install_mu_;

  mutable absl::Mutex members_mu_;
  std::map<uint64_t, etcdserverpb::Member> members_ ABSL_GUARDED_BY(members_mu_);

  std::thread raft_thread_;
  std::thread apply_thread_;
  std::thread compact_thread_;
};

}  // namespace kvd::server

#endif  // KVD_SERVER_NODE_H_
