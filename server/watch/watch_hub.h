// The watch hub: etcd's Watch semantics over the apply stream and the revision index.
//
// A WatchStream is one client stream (one gRPC Watch call, or an in-process subscriber such
// as the lock and election services). It multiplexes many watchers, each a key, a range or
// everything from a key, with its own start revision, filters and options. Its responses
// go to a WatchSink, one at a time: the stream starts the next write only after the sink
// reports the previous one done (WriteDone). Responses are built ahead of the writes into a
// bounded outbox (so a slow client never piles up more than that), and the sink is told when
// another response follows at once (SendMore), so a burst -- one put fanned out to many
// watchers of a stream -- leaves in a few socket writes instead of one write round per
// watcher. The next write starts inline from WriteDone, without a thread hop.
//
// Two states per watcher, as in etcd's watchable store:
//   synced    every revision up to the hub's dispatched revision has been matched
//             against it; it sits in the hub's index and new events are appended to its
//             bounded pending buffer by the dispatcher;
//   unsynced  it is behind (historical start revision, or its buffer overflowed): a
//             delivery thread reads the history in bounded chunks from a snapshot
//             (ReadTxn::Events) until it reaches the dispatched revision, then it joins the
//             index. An unsynced watcher costs nothing on the apply path.
// Invariant: a watcher's events go out in revision order, each exactly once, and the events
// of one revision in one response (unless the client asked for fragments). Every event with
// revision >= next_rev that the dispatcher sees goes into pending while the watcher is
// synced; next_rev only grows, except on overflow, where pending is dropped and next_rev
// goes back to its first revision (re-read from storage).
//
// Threads (all owned here, fixed in number): the apply thread only copies the batch into a
// queue (OnApplied); one dispatcher thread matches batches against the index, runs the
// progress/leader ticker, and when no batch waits builds the first few woken streams'
// responses itself (one thread wake-up less on the way of an event); `delivery_threads`
// threads build the other responses (prev_kv reads, history catch-up) and start writes; the
// gRPC thread that reports a write done starts the next one. gRPC threads otherwise only
// parse requests and register watchers. Lock order: hub mu_ before a stream's mu_; neither
// is held across a sink call.
//
// Memory: an idle watcher is one Watcher object (~200 bytes plus its key and range end) and
// one or two index entries; a pending event is a 24-byte reference into a shared batch.
#ifndef KVD_SERVER_WATCH_WATCH_HUB_H_
#define KVD_SERVER_WATCH_WATCH_HUB_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server::watch {

struct WatchHubOptions {
  // Threads that build and start responses.
  int delivery_threads = 2;
  // A synced watcher buffers at most this many undelivered events; past that it drops
  // them and catches up from storage.
  size_t watcher_pending_events_max = 4096;
  // History read per catch-up step (whole revisions; may exceed it for one large revision).
  size_t catch_up_chunk_events = 1000;
  // Events per response when not limited by a single revision's size.
  size_t response_events_max = 1000;
  // Responses of watchers created with fragment=true that are larger are split into
  // fragments. etcd uses --max-request-bytes plus its 512 KiB gRPC overhead allowance.
  int64_t max_request_bytes = 1536 * 1024 + 512 * 1024;
  // etcd's --experimental-watch-progress-notify-interval (default 10 minutes).
  absl::Duration progress_notify_interval = absl::Minutes(10);
  // How often streams created with hasleader=true check that the member has a leader.
  absl::Duration leader_check_interval = absl::Milliseconds(500);
};

// What the hub needs from the member.
struct WatchHubEnv {
  // Sets cluster_id, member_id and raft_term.
  std::function<void(etcdserverpb::ResponseHeader*)> fill_header;
  // Whether the member knows a leader (streams that require one end when it does not).
  std::function<bool()> has_leader;
};

// Where a stream's responses go.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Starts sending *resp; the sink calls WatchStream::WriteDone() once *resp may be reused
  // (any thread, inline allowed). If the sink cannot send any more, it need not call it.
  virtual void Send(const etcdserverpb::WatchResponse* resp) = 0;
  // As Send, and the stream sends another response as soon as this one is done: the sink
  // may hold *resp back (gRPC's buffer hint) until a later Send, which the stream always
  // makes. It still calls WriteDone() for *resp.
  virtual void SendMore(const etcdserverpb::WatchResponse* resp) { Send(resp); }
  // The server ends the stream with this status (e.g. errors::NoLeader()).
  virtual void Abort(const absl::Status& status) = 0;
};

class WatchHub;
struct Watcher;

class WatchStream : public std::enable_shared_from_this<WatchStream> {
 public:
  // Use WatchHub::OpenStream.
  WatchStream(WatchHub* hub, WatchSink* sink, bool requires_leader);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Handles one client request: create, cancel or progress.
  void Handle(const etcdserverpb::WatchRequest& req);
  // The sink finished the last Send.
  void WriteDone();
  // Cancels every watcher. After it returns the stream never calls the sink again.
  // Idempotent.
  void Close();

  bool requires_leader() const { return requires_leader_; }

 private:
  friend class WatchHub;

  void Create(const etcdserverpb::WatchCreateRequest& req);
  void Cancel(int64_t watch_id);
  // Builds responses into the outbox (until it is full or nothing is left) and starts
  // writing. Delivery threads or the dispatcher, one at a time per stream (scheduled_).
  void Pump();
  // Writes the outbox, one response after the other, as long as each write completes
  // inline or until it is empty; WriteDone() continues it. Never holds mu_ across a sink call.
  void Flush();
  // REQUIRES: mu_ held. Pump has something to build (now or after a catch-up step).
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool OutboxFullLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts w on the ready list unless it is there already; the caller schedules delivery.
  void MarkReadyLocked(const std::shared_ptr<Watcher>& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The hub's side: marks this stream's watcher w ready and schedules delivery.
  void WakeLocked(const Watcher* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Progress tick: watchers with progress_notify and no events since the last tick get a
  // progress notification.
  void OnProgressTick();
  // Server-side end of the stream (no leader).
  void Abort(const absl::Status& status);
  // Splits resp into fragments as etcd does; resp keeps the first.
  std::vector<etcdserverpb::WatchResponse> Fragment(etcdserverpb::WatchResponse* resp) const;
  etcdserverpb::WatchResponse NewResponse(int64_t watch_id, int64_t rev) const;
  // One catch-up step for an unsynced watcher; may produce a response in *out.
  bool CatchUp(const std::shared_ptr<Watcher>& w, etcdserverpb::WatchResponse* out);
  void FillPrevKvs(const storage::mvcc::ReadTxn& txn, etcdserverpb::WatchResponse* resp) const;

  WatchHub* const hub_;
  WatchSink* const sink_;
  const bool requires_leader_;

  absl::Mutex mu_;
  absl::flat_hash_map<int64_t, std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  int64_t next_watch_id_ ABSL_GUARDED_BY(mu_) = 0;
  // Responses built and not yet written, in order: created/canceled answers, events,
  // fragments, progress notifications.
  std::deque<etcdserverpb::WatchResponse> outbox_ ABSL_GUARDED_BY(mu_);
  size_t outbox_events_ ABSL_GUARDED_BY(mu_) = 0;
  // Bytes sent with SendMore since the last Send (bounds what the transport holds back).
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Watchers with pending events or behind (unsynced), round robin.
  std::deque<std::shared_ptr<Watcher>> ready_ ABSL_GUARDED_BY(mu_);
  int progress_due_ ABSL_GUARDED_BY(mu_) = 0;
  bool progress_all_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;  // queued for or running Pump
  bool building_ ABSL_GUARDED_BY(mu_) = false;   // Pump builds a response outside mu_
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;  // a Send not yet WriteDone
  bool flushing_ ABSL_GUARDED_BY(mu_) = false;   // a Flush loop runs
  int sink_calls_ ABSL_GUARDED_BY(mu_) = 0;      // sink calls running right now
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  etcdserverpb::WatchResponse current_;  // the response in flight (owned by Flush/sink)
};

class WatchHub {
 public:
  WatchHub(storage::mvcc::KvStore* kv, WatchHubOptions options, WatchHubEnv env);
  // REQUIRES: Stop() was called (or Start() never was).
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  void Start();
  // Stops the threads. Streams still open get no more responses.
  void Stop();

  // Apply thread, after each batch is visible to reads: queues the batch and returns.
  void OnApplied(int64_t rev, const std::vector<mvccpb::Event>& events);

  std::shared_ptr<WatchStream> OpenStream(WatchSink* sink, bool requires_leader);

  // The newest revision whose events every synced watcher has received into its buffer.
  int64_t dispatched_rev() const { return dispatched_rev_.load(std::memory_order_acquire); }
  const WatchHubOptions& options() const { return options_; }

  // Counters for tests and benchmarks.
  size_t synced_watchers() const;

 private:
  friend class WatchStream;
  struct AppliedBatch;
  // Watchers with the same range, in the range index.
  struct RangeKey {
    std::string key;
    std::string end;  // "" with from_key: unbounded
    bool from_key;
    bool operator<(const RangeKey& o) const {
      return std::tie(key, end, from_key) < std::tie(o.key, o.end, o.from_key);
    }
  };

  void DispatchLoop();
  void DeliveryLoop();
  void Dispatch(const AppliedBatch& batch, const std::shared_ptr<const AppliedBatch>& ref)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves every synced watcher to catch-up from from_rev (the store skipped revisions).
  void ResyncAll(int64_t from_rev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Tick(bool progress, bool leader);
  void IndexAdd(Watcher* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexRemove(Watcher* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Schedule(std::shared_ptr<WatchStream> stream);

  storage::mvcc::KvStore* const kv_;
  const WatchHubOptions options_;
  const WatchHubEnv env_;

  // Batches from the apply thread not yet dispatched.
  absl::Mutex queue_mu_;
  std::deque<std::shared_ptr<const AppliedBatch>> applied_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;

  mutable absl::Mutex mu_;
  // Exact-key watchers by key; range and from-key watchers by range (ordered by start key,
  // so an event scans only ranges starting at or before its key).
  absl::flat_hash_map<std::string, std::vector<Watcher*>> by_key_ ABSL_GUARDED_BY(mu_);
  std::map<RangeKey, std::vector<Watcher*>> by_range_ ABSL_GUARDED_BY(mu_);
  size_t synced_count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<WatchStream*> streams_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> dispatched_rev_{0};

  // Streams waiting for Pump.
  absl::Mutex work_mu_;
  std::deque<std::shared_ptr<WatchStream>> work_ ABSL_GUARDED_BY(work_mu_);
  bool work_stopping_ ABSL_GUARDED_BY(work_mu_) = false;

  std::thread dispatcher_;
  std::vector<std::thread> delivery_;
};

}  // namespace kvd::server::watch

#endif  // KVD_SERVER_WATCH_WATCH_HUB_H_
