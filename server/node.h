// A kvd member: its store, the order in which requests change it, and the threads that
// apply them.
//
// Writes are proposed (Propose) and applied in one order by one apply thread, in batches:
// every proposal waiting when a batch starts goes into one RocksDB write and one fsync
// (group commit), and its caller is answered only after that write is durable. Reads run
// on any thread against snapshots (kv().Read()); ReadIndex tells when a read would see every
// write acknowledged before it was called.
//
// This is the single-member node: the log is the apply order itself. The replicated node
// keeps this interface and puts raft between Propose and apply (DESIGN.md, server/).
#ifndef KVD_SERVER_NODE_H_
#define KVD_SERVER_NODE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "api/kvdpb/internal.pb.h"
#include "server/apply/applier.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {

struct NodeOptions {
  std::string name = "default";
  // The member's data directory (etcd's --data-dir); the store lives in <data_dir>/member/kvd.
  std::string data_dir;
  // Most proposals applied in one batch (one fsync).
  int max_batch_requests = 1024;
  // Revisions of history removed per physical compaction step.
  int64_t compaction_step_revisions = 1000;
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
  // This member became leader (true) or stopped being leader (false).
  std::function<void(bool is_leader)> on_leadership;
};

class Node {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  // Opens (or creates) the member's store. Nothing runs until Start().
  static absl::StatusOr<std::unique_ptr<Node>> Open(const NodeOptions& options);

  // Starts applying. REQUIRES: called once.
  void Start(NodeHooks hooks);

  // Stops the threads; proposals not yet applied are answered errors::Stopped().
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Applies req after every earlier proposal. done runs exactly once, on the apply thread:
  // OK once the request's effect is durable (and *response, if not null, holds the
  // response: see Applier::Apply for its type), or the request's error (nothing changed).
  // REQUIRES: response outlives the call of done.
  void Propose(internalpb::Request req, google::protobuf::Message* response, Done done);

  // done(OK) once a read from kv().Read() observes every write acknowledged before this
  // call (linearizable read); done(error) if that cannot be established.
  void ReadIndex(Done done);

  // done(OK) once old versions up to rev are physically removed (Compaction's physical).
  void WaitCompacted(int64_t rev, Done done);

  storage::mvcc::KvStore& kv() const { return *kv_; }
  storage::Engine& engine() const { return *engine_; }

  uint64_t member_id() const { return member_id_; }
  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t raft_term() const { return 1; }
  uint64_t leader_id() const { return member_id_; }
  bool is_leader() const { return leader_id() == member_id_; }
  bool has_leader() const { return leader_id() != 0; }
  // The index of the last applied request.
  uint64_t applied_index() const { return kv_->applied_index(); }

  // Sets cluster_id, member_id and raft_term (revision is the response's own).
  void FillHeader(etcdserverpb::ResponseHeader* header) const;

 private:
  struct Proposal {
    internalpb::Request req;
    google::protobuf::Message* response;
    Done done;
  };
  struct CompactionWaiter {
    int64_t rev;
    Done done;
  };

  Node() = default;
  void ApplyLoop();
  void CompactLoop();

  NodeOptions options_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::mvcc::KvStore> kv_;
  std::unique_ptr<Applier> applier_;
  NodeHooks hooks_;
  uint64_t member_id_ = 0;
  uint64_t cluster_id_ = 0;

  absl::Mutex mu_;
  std::deque<Proposal> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<CompactionWaiter> compaction_waiters_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped whenever a batch schedules a compaction, to wake CompactLoop.
  int64_t compaction_generation_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread apply_thread_;
  std::thread compact_thread_;
};

}  // namespace kvd::server

#endif  // KVD_SERVER_NODE_H_
