// The building blocks of etcd's lock and election services (etcd builds them on
// clientv3/concurrency; kvd builds them on the node and the watch hub directly):
// transactions proposed through the node, linearizable ranges, watches on the hub, and
// etcd's waitDeletes ("wait until every key under a prefix created at or before a revision
// is gone").
//
// Threads: every continuation (a proposal's result, a read, a watch event, a client's
// cancellation) runs on the one executor thread this object owns, one at a time, so the
// state of a call needs no lock, and no continuation runs inside the node's apply thread
// or a watch delivery thread. Continuations are short: they read a snapshot or enqueue a
// proposal, never wait.
#ifndef KVD_SERVER_V3LOCK_RECIPES_H_
#define KVD_SERVER_V3LOCK_RECIPES_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "api/key_range.h"
#include "grpcpp/support/server_callback.h"
#include "server/node.h"
#include "server/watch/watch_hub.h"

namespace kvd::server::v3lock {

// etcd's messages (clientv3/concurrency, v3election); gRPC code Unknown, as etcd sends
// plain Go errors.
absl::Status ElectionNotLeader();
absl::Status ElectionNoLeader();
absl::Status SessionExpired();
absl::Status MissingLeaderKey();
absl::Status LostWatcher();

// The end of the range of keys starting with prefix (etcd's GetPrefixRangeEnd).
using ::kvd::api::PrefixEnd;
// name + "/" + lowercase hex of lease: the key a session holds in a lock or election.
std::string SessionKey(const std::string& prefix, int64_t lease);

// The lease etcd's services create for a Lock or Campaign that names none (lease 0):
// clientv3's default session, a fresh 60 s lease that nobody keeps alive, so the lock or
// leadership ends 60 s later unless the caller unlocks or resigns first.
inline constexpr int64_t kSessionTtlSeconds = 60;

// Grants a lease of ttl_s seconds; done(lease id) or the grant's error. May run done on
// any thread.
using LeaseDone = absl::AnyInvocable<void(absl::StatusOr<int64_t>) &&>;
using LeaseGranter = std::function<void(int64_t ttl_s, LeaseDone done)>;

// A LeaseGranter that proposes LeaseGrant through node with a fresh random id (another
// one if that id is taken) and ttl_s raised to min_ttl_s (etcd's minimum lease TTL).
LeaseGranter ProposeLeaseGrant(Node* node, int64_t min_ttl_s);

class Recipes {
 public:
  using Task = absl::AnyInvocable<void() &&>;
  using TxnDone = absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::TxnResponse>) &&>;
  using RangeDone = absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::RangeResponse>) &&>;

  // REQUIRES: node and hub outlive this object. grant_lease: how sessions for lease 0 are
  // granted (default: ProposeLeaseGrant(node, 0)).
  Recipes(Node* node, watch::WatchHub* hub, LeaseGranter grant_lease = nullptr);
  // Stops the executor after the tasks queued so far; tasks posted later are dropped.
  // Call it before the node and the hub stop (tasks use them); the object itself must
  // outlive the node, whose pending proposals still post their results.
  void Stop();
  ~Recipes();
  Recipes(const Recipes&) = delete;
  Recipes& operator=(const Recipes&) = delete;

  void Post(Task task);

  // Errors reach done with code Unknown and the store's message, as etcd's services see
  // them through their internal client.
  // Proposes req; done(response, header filled) on the executor.
  void Txn(etcdserverpb::TxnRequest req, TxnDone done);
  // A linearizable range; done on the executor.
  void Range(etcdserverpb::RangeRequest req, RangeDone done);
  // Grants a session lease of kSessionTtlSeconds; done(lease id) on the executor.
  void GrantSessionLease(LeaseDone done);

  // A watch on the hub whose responses are handled on the executor, one at a time (the
  // next is not sent before the handler returns). Destroying it (on the executor) stops
  // it; no handler runs after that.
  using WatchHandler = std::function<void(const etcdserverpb::WatchResponse&)>;
  class Watch final : public watch::WatchSink {
   public:
    Watch(Recipes* recipes, WatchHandler handler);
    ~Watch() override;
    void Open(const std::string& key, const std::string& range_end, int64_t start_rev);
    void Send(const etcdserverpb::WatchResponse* resp) override;
    void Abort(const absl::Status&) override {}

   private:
    Recipes* const recipes_;
    const WatchHandler handler_;
    std::shared_ptr<bool> alive_;  // read and written on the executor only
    std::shared_ptr<watch::WatchStream> stream_;
  };
  std::unique_ptr<Watch> NewWatch(const std::string& key, const std::string& range_end,
                                  int64_t start_rev, WatchHandler handler);

  Node* node() const { return node_; }

 private:
  void Loop();

  Node* const node_;
  watch::WatchHub* const hub_;
  const LeaseGranter grant_lease_;
  absl::Mutex mu_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// etcd's waitDeletes(prefix, max_create_rev): repeatedly finds the newest key under prefix
// created at or before max_create_rev and waits for its deletion, until there is none.
// Executor only.
class DeletesWaiter : public std::enable_shared_from_this<DeletesWaiter> {
 public:
  using Done = absl::AnyInvocable<void(absl::Status) &&>;
  static std::shared_ptr<DeletesWaiter> Start(Recipes* recipes, std::string prefix,
                                              int64_t max_create_rev, Done done);
  // No done call after this.
  void Cancel();

 private:
  DeletesWaiter(Recipes* recipes, std::string prefix, int64_t max_create_rev, Done done)
      : recipes_(recipes),
        prefix_(std::move(prefix)),
        max_create_rev_(max_create_rev),
        done_(std::move(done)) {}
  void Step();
  void Finish(absl::Status s);

  Recipes* const recipes_;
  const std::string prefix_;
  const int64_t max_create_rev_;
  Done done_;
  bool finished_ = false;
  std::unique_ptr<Recipes::Watch> watch_;
};

// A unary reactor that reports the client's cancellation to the executor.
class CancelableReactor final : public grpc::ServerUnaryReactor {
 public:
  CancelableReactor(Recipes* recipes, std::function<void()> on_cancel)
      : recipes_(recipes), on_cancel_(std::move(on_cancel)) {}
  void OnCancel() override {
    recipes_->Post([f = on_cancel_] { f(); });
  }
  void OnDone() override { delete this; }

 private:
  Recipes* const recipes_;
  const std::function<void()> on_cancel_;
};

}  // namespace kvd::server::v3lock

#endif  // KVD_SERVER_V3LOCK_RECIPES_H_
