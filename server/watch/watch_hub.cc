#include "server/watch/watch_hub.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <tuple>

#include "api/errors.h"
#include "storage/check.h"

namespace kvd::server::watch {
namespace {

// A synced watcher's buffer holds references into the dispatched batch, not copies.
struct EventRef {
  std::shared_ptr<const void> batch;  // keeps *event alive
  const mvccpb::Event* event;
  int64_t rev() const { return event->kv().mod_revision(); }
};

// A FIFO of buffered events that costs nothing while empty (std::deque allocates on
// construction) and gives its memory back once drained.
class PendingQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  const EventRef& front() const { return items_[head_]; }
  EventRef& front() { return items_[head_]; }
  void push_back(EventRef e) { items_.push_back(std::move(e)); }
  void pop_front() {
    items_[head_++] = EventRef{};
    if (empty()) {
      clear();
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    head_ = 0;
    if (items_.capacity() > 16) {
      std::vector<EventRef>().swap(items_);
    } else {
      items_.clear();
    }
  }

 private:
  std::vector<EventRef> items_;
  size_t head_ = 0;
};

// Steps (responses built, or catch-up steps that found nothing) one Pump may take before
// yielding the thread to other streams.
constexpr int kPumpStepsMax = 64;
// Pump stops building while the outbox holds this many responses (or
// response_events_max events): a client that does not read costs at most that.
constexpr size_t kOutboxResponsesMax = 128;
// Streams the dispatcher delivers itself after a dispatch round (when no batch waits).
constexpr int kDispatcherPumpsMax = 4;
// Bytes the transport may hold back (SendMore) before a Send pushes them out.
constexpr size_t kHeldBytesMax = 32 * 1024;

// etcd's messages (mvcc/watcher.go).
constexpr char kEmptyRange[] = "mvcc: watcher range is empty";
constexpr char kDuplicateId[] = "mvcc: duplicate watch ID provided on the WatchStream";

bool IsCreateEvent(const mvccpb::Event& e) {
  return e.type() == mvccpb::Event::PUT && e.kv().create_revision() == e.kv().mod_revision();
}

}  // namespace

struct WatchHub::AppliedBatch {
  int64_t rev;
  std::vector<mvccpb::Event> events;
};

// One watcher. Fields below the options are guarded by stream->mu_; `synced` changes only
// with the hub's mu_ held too (it says whether the watcher is in the hub's index).
struct Watcher {
  WatchStream* stream;
  int64_t id;
  std::string key;
  std::string end;
  bool single;
  bool from_key;
  bool prev_kv;
  bool progress_notify;
  bool fragment;
  bool no_put;
  bool no_delete;

  int64_t next_rev = 0;  // first revision not yet delivered or buffered
  bool synced = false;
  bool canceled = false;
  bool queued = false;  // in stream->ready_
  bool progress_due = false;
  bool events_since_tick = false;
  PendingQueue pending;

  bool Contains(std::string_view k) const {
    if (single) return k == key;
    if (k < std::string_view(key)) return false;
    return from_key || k < std::string_view(end);
  }
  bool Wants(const mvccpb::Event& e) const {
    return e.type() == mvccpb::Event::PUT ? !no_put : !no_delete;
  }
};

// ---------------------------------------------------------------------------------------
// WatchStream

WatchStream::WatchStream(WatchHub* hub, WatchSink* sink, bool requires_leader)
    : hub_(hub), sink_(sink), requires_leader_(requires_leader) {}

WatchStream::~WatchStream() { Close(); }

etcdserverpb::WatchResponse WatchStream::NewResponse(int64_t watch_id, int64_t rev) const {
  etcdserverpb::WatchResponse resp;
  if (hub_->env_.fill_header) hub_->env_.fill_header(resp.mutable_header());
  if (rev != 0) resp.mutable_header()->set_revision(rev);
  resp.set_watch_id(watch_id);
  return resp;
}

void WatchStream::Handle(const etcdserverpb::WatchRequest& req) {
  switch (req.request_union_case()) {
    case etcdserverpb::WatchRequest::kCreateRequest:
      Create(req.create_request());
      return;
    case etcdserverpb::WatchRequest::kCancelRequest:
      Cancel(req.cancel_request().watch_id());
      return;
    case etcdserverpb::WatchRequest::kProgressRequest: {
      absl::MutexLock hub_lock(&hub_->mu_);
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      if (ready_.empty() && !progress_all_requested_ && !building_) {
        // Every watcher is synced and drained (HasWorkLocked), and every event taken from a
        // buffer is in the outbox: answer now, after the answers to earlier requests, as
        // etcd does.
        outbox_.push_back(NewResponse(-1, hub_->dispatched_rev()));
      } else {
        progress_all_requested_ = true;  // once the watchers caught up (Pump)
      }
      ScheduleLocked();
      return;
    }
    case etcdserverpb::WatchRequest::REQUEST_UNION_NOT_SET:
      return;
  }
}

void WatchStream::Create(const etcdserverpb::WatchCreateRequest& req) {
  absl::MutexLock hub_lock(&hub_->mu_);
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  // Everything dispatched so far is below next_rev of a new watcher without a start
  // revision, and everything after is matched against the index, which it joins now.
  const int64_t dispatched = hub_->dispatched_rev();
  const int64_t base = std::max(dispatched, hub_->kv_->current_rev());

  const bool single = req.range_end().empty();
  const bool from_key = req.range_end() == std::string_view("\0", 1);
  auto reject = [&](const char* reason) {
    etcdserverpb::WatchResponse resp = NewResponse(-1, base);
    resp.set_created(true);
    resp.set_canceled(true);
    resp.set_cancel_reason(reason);
    outbox_.push_back(std::move(resp));
    ScheduleLocked();
  };
  if (!single && !from_key && req.key() >= req.range_end()) return reject(kEmptyRange);
  int64_t id = req.watch_id();
  if (id != 0) {
    if (watchers_.contains(id)) return reject(kDuplicateId);
  } else {
    while (watchers_.contains(next_watch_id_)) ++next_watch_id_;
    id = next_watch_id_++;
  }

  auto w = std::make_shared<Watcher>();
  w->stream = this;
  w->id = id;
  w->key = req.key();
  w->end = from_key ? std::string() : req.range_end();
  w->single = single;
  w->from_key = from_key;
  w->prev_kv = req.prev_kv();
  w->progress_notify = req.progress_notify();
  w->fragment = req.fragment();
  for (int f : req.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w->no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w->no_delete = true;
  }
  w->next_rev = req.start_revision() > 0 ? req.start_revision() : base + 1;
  watchers_[id] = w;

  etcdserverpb::WatchResponse created = NewResponse(id, base);
  created.set_created(true);
  outbox_.push_back(std::move(created));
  if (w->next_rev > dispatched) {
    w->synced = true;
    hub_->IndexAdd(w.get());
  } else {
    MarkReadyLocked(w);
  }
  ScheduleLocked();
}

void WatchStream::MarkReadyLocked(const std::shared_ptr<Watcher>& w) {
  if (w->queued) return;
  w->queued = true;
  ready_.push_back(w);
}

void WatchStream::WakeLocked(const Watcher* w) {
  if (!w->queued) {
    auto it = watchers_.find(w->id);
    KVD_CHECK(it != watchers_.end());
    MarkReadyLocked(it->second);
  }
  ScheduleLocked();
}

void WatchStream::Cancel(int64_t watch_id) {
  absl::MutexLock hub_lock(&hub_->mu_);
  absl::MutexLock lock(&mu_);
  auto it = watchers_.find(watch_id);
  if (closed_ || it == watchers_.end()) return;  // etcd answers nothing for unknown ids
  Watcher* w = it->second.get();
  if (w->synced) hub_->IndexRemove(w);
  w->synced = false;
  w->canceled = true;
  if (w->progress_due) --progress_due_;
  w->pending.clear();
  watchers_.erase(it);
  etcdserverpb::WatchResponse resp =
      NewResponse(watch_id, std::max(hub_->dispatched_rev(), hub_->kv_->current_rev()));
  resp.set_canceled(true);
  outbox_.push_back(std::move(resp));
  ScheduleLocked();
}

void WatchStream::Close() {
  {
    absl::MutexLock hub_lock(&hub_->mu_);
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    for (auto& [id, w] : watchers_) {
      if (w->synced) hub_->IndexRemove(w.get());
      w->synced = false;
      w->canceled = true;
      w->pending.clear();
    }
    watchers_.clear();
    ready_.clear();
    outbox_.clear();
    hub_->streams_.erase(this);
  }
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](WatchStream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->sink_calls_ == 0; },
      this));
}

void WatchStream::WriteDone() {
  {
    absl::MutexLock lock(&mu_);
    in_flight_ = false;
    if (flushing_) return;  // that Flush loop sends the next one
  }
  Flush();
}

void WatchStream::Flush() {
  absl::MutexLock lock(&mu_);
  if (flushing_) return;
  flushing_ = true;
  while (!closed_ && !in_flight_ && !outbox_.empty()) {
    current_ = std::move(outbox_.front());
    outbox_.pop_front();
    outbox_events_ -= static_cast<size_t>(current_.events_size());
    // Hold back only what a later Send in this loop or WriteDone's is sure to push out:
    // the outbox only shrinks here (or all at once on Close, which ends the stream).
    const bool more = !outbox_.empty() && held_bytes_ < kHeldBytesMax;
    held_bytes_ = more ? held_bytes_ + current_.ByteSizeLong() : 0;
    in_flight_ = true;
    ++sink_calls_;
    mu_.Unlock();
    if (more) {
      sink_->SendMore(&current_);
    } else {
      sink_->Send(&current_);
    }
    mu_.Lock();
    --sink_calls_;
  }
  flushing_ = false;
  ScheduleLocked();  // the outbox has room again
}

bool WatchStream::HasWorkLocked() const {
  // An unsynced watcher, or one with buffered events, is always in ready_; so with ready_
  // empty every watcher is synced and drained, and a progress request can be answered.
  return !ready_.empty() || progress_due_ > 0 || progress_all_requested_;
}

bool WatchStream::OutboxFullLocked() const {
  return outbox_.size() >= kOutboxResponsesMax ||
         outbox_events_ >= hub_->options_.response_events_max;
}

void WatchStream::ScheduleLocked() {
  if (scheduled_ || closed_) return;
  const bool build = HasWorkLocked() && !OutboxFullLocked();
  const bool send = !outbox_.empty() && !in_flight_ && !flushing_;
  if (!build && !send) return;
  scheduled_ = true;
  hub_->Schedule(shared_from_this());
}

void WatchStream::OnProgressTick() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  for (auto& [id, w] : watchers_) {
    if (!w->progress_notify) continue;
    // As etcd: only watchers that are synced and got no events since the last tick.
    if (!w->events_since_tick && w->synced && !w->progress_due) {
      w->progress_due = true;
      ++progress_due_;
    }
    w->events_since_tick = false;
  }
  ScheduleLocked();
}

void WatchStream::Abort(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    ++sink_calls_;
  }
  sink_->Abort(status);
  absl::MutexLock lock(&mu_);
  --sink_calls_;
}

void WatchStream::FillPrevKvs(const storage::mvcc::ReadTxn& txn,
                              etcdserverpb::WatchResponse* resp) const {
  for (mvccpb::Event& e : *resp->mutable_events()) {
    if (IsCreateEvent(e)) continue;
    storage::mvcc::RangeOptions options;
    options.rev = e.kv().mod_revision() - 1;
    if (options.rev <= 0) continue;
    absl::StatusOr<storage::mvcc::RangeResult> r =
        txn.Range(storage::mvcc::KeyRange::Single(e.kv().key()), options);
    // As etcd: a previous version that is compacted away is simply left out.
    if (r.ok() && !r->kvs.empty()) *e.mutable_prev_kv() = std::move(r->kvs[0]);
  }
}

std::vector<etcdserverpb::WatchResponse> WatchStream::Fragment(
    etcdserverpb::WatchResponse* resp) const {
  std::vector<etcdserverpb::WatchResponse> parts;
  const int64_t max = hub_->options_.max_request_bytes;
  if (static_cast<int64_t>(resp->ByteSizeLong()) < max || resp->events_size() < 2) return parts;
  // etcd's sendFragments: fill each fragment until adding an event reaches the limit
  // (every fragment carries at least one event); all but the last have fragment=true.
  etcdserverpb::WatchResponse base = *resp;
  base.clear_events();
  base.set_fragment(true);
  auto& events = *resp->mutable_events();
  int idx = 0;
  for (;;) {
    etcdserverpb::WatchResponse cur = base;
    while (idx < events.size()) {
      *cur.add_events() = events[idx];
      if (cur.events_size() > 1 && static_cast<int64_t>(cur.ByteSizeLong()) >= max) {
        cur.mutable_events()->RemoveLast();
        break;
      }
      ++idx;
    }
    if (idx == events.size()) cur.set_fragment(false);
    bool last = !cur.fragment();
    parts.push_back(std::move(cur));
    if (last) break;
  }
  *resp = std::move(parts.front());
  parts.erase(parts.begin());
  return parts;
}

bool WatchStream::CatchUp(const std::shared_ptr<Watcher>& w, etcdserverpb::WatchResponse* out) {
  int64_t from;
  {
    absl::MutexLock lock(&mu_);
    if (w->canceled) return false;
    from = w->next_rev;
  }
  std::unique_ptr<storage::mvcc::ReadTxn> txn = hub_->kv_->Read();
  const int64_t view_rev = txn->view_rev();
  int64_t next = view_rev + 1;
  *out = NewResponse(w->id, view_rev);
  if (from <= view_rev) {
    const size_t chunk = hub_->options_.catch_up_chunk_events;
    absl::StatusOr<std::vector<mvccpb::Event>> events = txn->Events(from, chunk);
    if (!events.ok()) {
      // As etcd: the watcher ends with the compact revision (header revision 0).
      absl::MutexLock lock(&mu_);
      if (w->canceled) return false;
      w->canceled = true;
      if (w->progress_due) --progress_due_;
      watchers_.erase(w->id);
      *out = NewResponse(w->id, 0);
      out->set_canceled(true);
      if (absl::IsOutOfRange(events.status())) {
        out->set_compact_revision(txn->view_compact_rev());
      } else {
        out->set_cancel_reason(std::string(events.status().message()));
      }
      return true;
    }
    if (events->size() >= chunk) next = events->back().kv().mod_revision() + 1;
    for (mvccpb::Event& e : *events) {
      if (w->Contains(e.kv().key()) && w->Wants(e)) *out->add_events() = std::move(e);
    }
    if (w->prev_kv) FillPrevKvs(*txn, out);
  }
  {
    absl::MutexLock hub_lock(&hub_->mu_);
    absl::MutexLock lock(&mu_);
    if (w->canceled) return false;
    w->next_rev = std::max(w->next_rev, next);
    if (w->next_rev > hub_->dispatched_rev()) {
      w->synced = true;
      hub_->IndexAdd(w.get());
    } else {
      MarkReadyLocked(w);
    }
    if (out->events_size() > 0) w->events_since_tick = true;
  }
  return out->events_size() > 0;
}

void WatchStream::Pump() {
  // Read before mu_: every event up to here is in its watcher's buffer or already in the
  // outbox, so a progress notification at this revision never overtakes an event (etcd
  // #15220).
  const int64_t dispatched = hub_->dispatched_rev();
  for (int step = 0; step < kPumpStepsMax; ++step) {
    std::shared_ptr<Watcher> w;
    std::vector<EventRef> taken;
    etcdserverpb::WatchResponse resp;
    {
      absl::MutexLock lock(&mu_);
      if (closed_ || OutboxFullLocked()) break;
      while (!ready_.empty() && w == nullptr) {
        w = std::move(ready_.front());
        ready_.pop_front();
        w->queued = false;
        if (w->canceled) w.reset();
      }
      if (w != nullptr && !w->pending.empty()) {
        // Whole revisions, up to response_events_max events (more for one big revision).
        int64_t last_rev = 0;
        while (!w->pending.empty()) {
          int64_t rev = w->pending.front().rev();
          if (taken.size() >= hub_->options_.response_events_max && rev != last_rev) break;
          taken.push_back(std::move(w->pending.front()));
          w->pending.pop_front();
          last_rev = rev;
        }
        if (!w->pending.empty() || !w->synced) MarkReadyLocked(w);
        w->events_since_tick = true;
        resp = NewResponse(w->id, last_rev);
        for (const EventRef& ref : taken) *resp.add_events() = *ref.event;
      } else if (w != nullptr && w->synced) {
        continue;  // nothing buffered: queued before its buffer was taken
      } else if (w == nullptr) {
        // Nothing is being built: every event taken from a buffer is in the outbox.
        if (progress_due_ > 0) {
          for (auto& [id, x] : watchers_) {
            if (!x->progress_due) continue;
            x->progress_due = false;
            --progress_due_;
            if (x->synced && x->pending.empty()) {
              outbox_.push_back(NewResponse(id, dispatched));
              break;
            }
          }
          continue;
        }
        if (progress_all_requested_) {
          // ready_ is empty: every watcher is synced and drained (HasWorkLocked).
          progress_all_requested_ = false;
          outbox_.push_back(NewResponse(-1, dispatched));
          continue;
        }
        break;
      }
      building_ = true;
    }
    bool have;
    if (!taken.empty()) {
      taken.clear();
      if (w->prev_kv) FillPrevKvs(*hub_->kv_->Read(), &resp);
      have = true;
    } else {
      have = CatchUp(w, &resp);  // unsynced
    }
    std::vector<etcdserverpb::WatchResponse> fragments;
    if (have && w->fragment) fragments = Fragment(&resp);
    {
      absl::MutexLock lock(&mu_);
      building_ = false;
      // A watcher canceled meanwhile gets no events after its canceled answer; one that
      // CatchUp found compacted gets that answer.
      if (!have || closed_ || (w->canceled && !resp.canceled())) continue;
      outbox_events_ += static_cast<size_t>(resp.events_size());
      outbox_.push_back(std::move(resp));
      for (etcdserverpb::WatchResponse& f : fragments) {
        outbox_events_ += static_cast<size_t>(f.events_size());
        outbox_.push_back(std::move(f));
      }
    }
  }
  Flush();
  absl::MutexLock lock(&mu_);
  scheduled_ = false;
  ScheduleLocked();  // more to build than one Pump takes, or room again
}

// ---------------------------------------------------------------------------------------
// WatchHub

WatchHub::WatchHub(storage::mvcc::KvStore* kv, WatchHubOptions options, WatchHubEnv env)
    : kv_(kv), options_(std::move(options)), env_(std::move(env)) {
  KVD_CHECK(options_.delivery_threads > 0);
  KVD_CHECK(options_.catch_up_chunk_events > 0);
  KVD_CHECK(options_.response_events_max > 0);
  dispatched_rev_.store(kv_->current_rev(), std::memory_order_release);
}

WatchHub::~WatchHub() { Stop(); }

void WatchHub::Start() {
  KVD_CHECK(!dispatcher_.joinable());
  dispatcher_ = std::thread([this] { DispatchLoop(); });
  for (int i = 0; i < options_.delivery_threads; ++i) {
    delivery_.emplace_back([this] { DeliveryLoop(); });
  }
}

void WatchHub::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  std::deque<std::shared_ptr<WatchStream>> work;
  {
    absl::MutexLock lock(&work_mu_);
    work_stopping_ = true;
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  for (std::thread& t : delivery_) t.join();
  delivery_.clear();
  {
    absl::MutexLock lock(&work_mu_);
    work.swap(work_);
  }
  work.clear();  // may close streams: outside work_mu_
}

void WatchHub::OnApplied(int64_t rev, const std::vector<mvccpb::Event>& events) {
  if (events.empty()) return;
  auto batch = std::make_shared<AppliedBatch>(AppliedBatch{rev, events});
  absl::MutexLock lock(&queue_mu_);
  if (stopping_) return;
  applied_.push_back(std::move(batch));
}

std::shared_ptr<WatchStream> WatchHub::OpenStream(WatchSink* sink, bool requires_leader) {
  auto stream = std::make_shared<WatchStream>(this, sink, requires_leader);
  absl::MutexLock lock(&mu_);
  streams_.insert(stream.get());
  return stream;
}

size_t WatchHub::synced_watchers() const {
  absl::MutexLock lock(&mu_);
  return synced_count_;
}

void WatchHub::IndexAdd(Watcher* w) {
  if (w->single) {
    by_key_[w->key].push_back(w);
  } else {
    by_range_[RangeKey{w->key, w->end, w->from_key}].push_back(w);
  }
  ++synced_count_;
}

void WatchHub::IndexRemove(Watcher* w) {
  auto erase_from = [w](std::vector<Watcher*>& v) {
    auto it = std::find(v.begin(), v.end(), w);
    KVD_CHECK(it != v.end());
    *it = v.back();
    v.pop_back();
    return v.empty();
  };
  if (w->single) {
    auto it = by_key_.find(w->key);
    KVD_CHECK(it != by_key_.end());
    if (erase_from(it->second)) by_key_.erase(it);
  } else {
    auto it = by_range_.find(RangeKey{w->key, w->end, w->from_key});
    KVD_CHECK(it != by_range_.end());
    if (erase_from(it->second)) by_range_.erase(it);
  }
  --synced_count_;
}

void WatchHub::Schedule(std::shared_ptr<WatchStream> stream) {
  absl::MutexLock lock(&work_mu_);
  if (work_stopping_) return;
  work_.push_back(std::move(stream));
}

void WatchHub::Dispatch(const AppliedBatch& batch, const std::shared_ptr<const AppliedBatch>& ref) {
  // Every revision has events, so a batch that does not start right after the dispatched
  // revision means the store jumped (a raft snapshot was installed) and the events between
  // were never seen here. As etcd's Restore: every synced watcher catches up from storage.
  const int64_t dispatched = dispatched_rev_.load();
  if (!batch.events.empty() && batch.events.front().kv().mod_revision() > dispatched + 1) {
    ResyncAll(dispatched + 1);
  }
  // Which synced watchers want which events of the batch, in revision order.
  absl::flat_hash_map<Watcher*, std::vector<uint32_t>> matches;
  for (uint32_t i = 0; i < batch.events.size(); ++i) {
    const mvccpb::Event& e = batch.events[i];
    const std::string& key = e.kv().key();
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      for (Watcher* w : it->second) {
        if (w->Wants(e)) matches[w].push_back(i);
      }
    }
    for (auto it = by_range_.begin(); it != by_range_.end() && it->first.key <= key; ++it) {
      if (!it->first.from_key && key >= it->first.end) continue;
      for (Watcher* w : it->second) {
        if (w->Wants(e)) matches[w].push_back(i);
      }
    }
  }
  // Stream by stream, each locked once: its Pump (woken by the first watcher) then finds
  // the whole batch's work instead of taking the lock back and forth with this loop.
  std::vector<std::pair<Watcher*, std::vector<uint32_t>>> sorted(
      std::make_move_iterator(matches.begin()), std::make_move_iterator(matches.end()));
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first->stream < b.first->stream; });
  for (size_t i = 0; i < sorted.size();) {
    WatchStream* s = sorted[i].first->stream;
    absl::MutexLock lock(&s->mu_);
    for (; i < sorted.size() && sorted[i].first->stream == s; ++i) {
      Watcher* w = sorted[i].first;
      const std::vector<uint32_t>& indices = sorted[i].second;
      if (w->canceled || !w->synced) continue;
      size_t first = 0;
      while (first < indices.size() &&
             batch.events[indices[first]].kv().mod_revision() < w->next_rev) {
        ++first;
      }
      if (first == indices.size()) continue;
      const size_t count = indices.size() - first;
      if (w->pending.size() + count > options_.watcher_pending_events_max) {
        // Too slow: drop the buffer and catch up from storage from its first revision.
        w->next_rev = w->pending.empty() ? batch.events[indices[first]].kv().mod_revision()
                                         : w->pending.front().rev();
        w->pending.clear();
        w->synced = false;
        IndexRemove(w);
      } else {
        for (size_t k = first; k < indices.size(); ++k) {
          w->pending.push_back(EventRef{ref, &batch.events[indices[k]]});
        }
        w->next_rev = std::max(w->next_rev, batch.rev + 1);
      }
      s->WakeLocked(w);
    }
  }
  dispatched_rev_.store(std::max(dispatched_rev_.load(), batch.rev), std::memory_order_release);
}

void WatchHub::ResyncAll(int64_t from_rev) {
  std::vector<Watcher*> all;
  for (const auto& [key, ws] : by_key_) all.insert(all.end(), ws.begin(), ws.end());
  for (const auto& [range, ws] : by_range_) all.insert(all.end(), ws.begin(), ws.end());
  for (Watcher* w : all) {
    WatchStream* s = w->stream;
    absl::MutexLock lock(&s->mu_);
    // Everything before from_rev was buffered or sent; the buffer is still delivered
    // first (Pump drains it before catching up).
    w->next_rev = std::max(w->next_rev, from_rev);
    w->synced = false;
    IndexRemove(w);
    s->WakeLocked(w);
  }
}

void WatchHub::DispatchLoop() {
  absl::Time next_progress = absl::Now() + options_.progress_notify_interval;
  absl::Time next_leader = absl::Now() + options_.leader_check_interval;
  std::vector<std::shared_ptr<const AppliedBatch>> batches;
  for (;;) {
    batches.clear();
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.AwaitWithDeadline(absl::Condition(
                                      +[](WatchHub* h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h->queue_mu_) {
                                        return h->stopping_ || !h->applied_.empty();
                                      },
                                      this),
                                  std::min(next_progress, next_leader));
      if (stopping_) return;
      while (!applied_.empty() && batches.size() < 64) {
        batches.push_back(std::move(applied_.front()));
        applied_.pop_front();
      }
    }
    if (!batches.empty()) {
      absl::MutexLock lock(&mu_);
      for (const auto& b : batches) Dispatch(*b, b);
    }
    // Deliver too while no batch waits: the first streams woken go out without waiting
    // for a delivery thread to be scheduled.
    for (int i = 0; i < kDispatcherPumpsMax && !batches.empty(); ++i) {
      {
        absl::MutexLock lock(&queue_mu_);
        if (!applied_.empty()) break;
      }
      std::shared_ptr<WatchStream> stream;
      {
        absl::MutexLock lock(&work_mu_);
        if (work_.empty()) break;
        stream = std::move(work_.front());
        work_.pop_front();
      }
      stream->Pump();
    }
    absl::Time now = absl::Now();
    bool progress = now >= next_progress;
    bool leader = now >= next_leader;
    if (progress) next_progress = now + options_.progress_notify_interval;
    if (leader) next_leader = now + options_.leader_check_interval;
    if (progress || leader) Tick(progress, leader);
  }
}

void WatchHub::Tick(bool progress, bool leader) {
  const bool no_leader = leader && env_.has_leader && !env_.has_leader();
  if (!progress && !no_leader) return;
  std::vector<std::shared_ptr<WatchStream>> streams;
  {
    absl::MutexLock lock(&mu_);
    for (WatchStream* s : streams_) {
      if (!progress && !s->requires_leader()) continue;
      if (std::shared_ptr<WatchStream> live = s->weak_from_this().lock()) {
        streams.push_back(std::move(live));
      }
    }
  }
  for (const auto& s : streams) {
    if (no_leader && s->requires_leader()) {
      s->Abort(errors::NoLeader());
    } else if (progress) {
      s->OnProgressTick();
    }
  }
}

void WatchHub::DeliveryLoop() {
  for (;;) {
    std::shared_ptr<WatchStream> stream;
    {
      absl::MutexLock lock(&work_mu_);
      work_mu_.Await(absl::Condition(
          +[](WatchHub* h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h->work_mu_) {
            return h->work_stopping_ || !h->work_.empty();
          },
          this));
      if (work_stopping_) return;
      stream = std::move(work_.front());
      work_.pop_front();
    }
    stream->Pump();
  }
}

}  // namespace kvd::server::watch
