// Client-side locks and elections over any etcd endpoint: etcd's clientv3/concurrency
// recipes (Session, Mutex, Election), which `etcdctl lock` and `etcdctl elect` use, with
// the same keys, transactions and waits, so kvctl and etcdctl contend for the same locks.
//
//   Session   a lease of ttl seconds kept alive from a background thread (every ttl/3).
//             It is done when the lease is gone (expired, revoked) or could not be renewed
//             within its TTL. Destroying it stops the keep-alives and leaves the lease to
//             expire (etcdctl never closes its sessions either).
//   Mutex     name + "/" + hex(lease) is the session's key. One txn puts it (if absent)
//             and reads the owner, the key under the prefix with the smallest
//             create_revision; the session owns the lock when that is its key, else it
//             waits until every key created before its own is deleted (WaitDeletes).
//             The key's create revision is the lock's fencing token.
//   Election  the same queue; the leader's key holds the proposal as value. Observe
//             follows the leader: its value, each change, then the next leader.
//
// Waits end early when a Canceler fires (etcd's context cancellation): the recipe cleans up
// (deletes its key) and fails with CANCELLED "context canceled", as clientv3 does.
//
// Thread safety: Canceler and Session are thread-safe; a Mutex or Election is used by one
// thread at a time.
#ifndef KVD_CLIENT_CONCURRENCY_H_
#define KVD_CLIENT_CONCURRENCY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "client/client.h"

namespace kvd::client {

// A one-shot cancellation signal (the part of Go's context.Context the recipes need).
class Canceler {
 public:
  Canceler() = default;
  Canceler(const Canceler&) = delete;
  Canceler& operator=(const Canceler&) = delete;

  // Fires: runs the registered callbacks once. Idempotent.
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);
  bool canceled() const ABSL_LOCKS_EXCLUDED(mu_);
  // Registers f to run at Cancel() (at once if already canceled); returns its id. f runs
  // under the canceler's lock: it must be short and must not call back into this object.
  // (Registering does not change whether or when the canceler fires: it is const.)
  int OnCancel(std::function<void()> f) const ABSL_LOCKS_EXCLUDED(mu_);
  // Unregisters; once it returns, that callback is not running and never will.
  void Remove(int id) const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until canceled or `timeout` passes; returns canceled().
  bool Wait(absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  bool canceled_ ABSL_GUARDED_BY(mu_) = false;
  mutable int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  mutable std::map<int, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
};

// The error of a wait ended by a Canceler: CANCELLED "context canceled" (Go's).
absl::Status ContextCanceled();

class Session {
 public:
  // Grants a lease of ttl_s seconds and starts keeping it alive.
  // Errors: the grant's (e.g. connection errors).
  static absl::StatusOr<std::unique_ptr<Session>> Create(Client* client, int64_t ttl_s);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Client* client() const { return client_; }
  int64_t lease() const { return lease_; }
  // Fires when the session ends: its lease expired or was revoked, or was not renewed
  // within its TTL.
  Canceler& done() { return done_; }

 private:
  Session(Client* client, int64_t lease, int64_t ttl_s);
  void KeepAlive();

  Client* const client_;
  const int64_t lease_;
  const int64_t ttl_s_;
  Canceler done_;
  Canceler stop_;  // fired by the destructor
  std::thread keep_alive_;
};

// etcd's waitDeletes: waits until no key under prefix with create_revision <= max_create_rev
// is left. Returns the header of the last read (the revision the wait ended at).
// Errors: ContextCanceled() if cancel fires; read and watch errors (a compacted watch).
absl::StatusOr<etcdserverpb::ResponseHeader> WaitDeletes(Client* client, const std::string& prefix,
                                                         int64_t max_create_rev,
                                                         const Canceler& cancel);

class Mutex {
 public:
  // REQUIRES: session outlives the Mutex.
  Mutex(Session* session, const std::string& name);

  // Acquires the lock, waiting behind earlier holders. If cancel fires while waiting, the
  // key is deleted and ContextCanceled() returned.
  absl::Status Lock(const Canceler& cancel);
  // Deletes the key.
  absl::Status Unlock();

  // The session's key; valid after Lock.
  const std::string& key() const { return key_; }
  // The header of the response that completed the acquisition (what etcdctl exports as
  // ETCD_LOCK_REV); valid after Lock.
  const etcdserverpb::ResponseHeader& header() const { return header_; }

 private:
  Session* const session_;
  const std::string prefix_;
  std::string key_;
  int64_t rev_ = 0;  // create revision of key_
  etcdserverpb::ResponseHeader header_;
};

class Election {
 public:
  // REQUIRES: session outlives the Election.
  Election(Session* session, const std::string& name);

  // Becomes leader with `value`, waiting behind earlier candidates. If cancel fires while
  // waiting, resigns and returns ContextCanceled().
  absl::Status Campaign(const std::string& value, const Canceler& cancel);
  // Deletes the leader key if it is still this campaign's (create revision unchanged).
  absl::Status Resign();
  const std::string& key() const { return key_; }

  // Calls on_leader with the current leader (a range response with one key), with every
  // new value it proclaims, then with the next leader, ... until cancel fires (OK) or a
  // read or watch fails (that error).
  static absl::Status Observe(
      Client* client, const std::string& name, const Canceler& cancel,
      const std::function<void(const etcdserverpb::RangeResponse&)>& on_leader);

 private:
  Session* const session_;
  const std::string prefix_;
  std::string key_;
  int64_t rev_ = 0;
};

}  // namespace kvd::client

#endif  // KVD_CLIENT_CONCURRENCY_H_
