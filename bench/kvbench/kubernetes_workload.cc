// kubernetes: a mix modelled on what kube-apiserver asks of etcd.
//
// - create: Txn(If create_revision(key) == 0 Then put Else get)          (objects)
// - update: Txn(If mod_revision(key) == r Then put Else get)             (GuaranteedUpdate;
//           a conflict refreshes r from the Else branch)
// - delete: Txn(If mod_revision(key) == r Then delete Else get)
// - get:    linearizable Range of one key
// - list:   Range over the object prefix with limit --k8s-page and continuation (next key
//           = last key + "\0"); pages after the first read at the first page's revision
// - event:  create of an event key attached to a lease; events created within
//           --k8s-lease-reuse share one lease (TTL --ttl), as the apiserver's lease manager
// - watches: --k8s-watchers on the object prefix with progress_notify, spread over
//           --watch-streams streams; a WatchProgressRequest per stream every
//           --k8s-progress-interval
// - compaction: every --compact-interval, Txn on the compact key (If version == v Then
//           put), then Compact to the revision seen one interval before.
// Every value starts with its send time, so watch events yield a write->event latency.
#include <atomic>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/kvbench/client.h"
#include "bench/kvbench/flags.h"
#include "bench/kvbench/watch_stream.h"
#include "bench/kvbench/workload.h"

namespace kvbench {
namespace {

using etcdserverpb::KV;
using etcdserverpb::Lease;

enum K8sRow {
  kRequest = 0,  // every unary request of the mix
  kCreate,
  kUpdate,
  kGet,
  kList,  // a whole paginated list
  kDelete,
  kEvent,
  kLeaseGrant,
  kWatchEvent,
  kProgress,
  kCompact,
  kRowCount
};
constexpr int kMixOps = 6;  // create, update, get, list, delete, event
const char* const kMixNames[kMixOps] = {"create", "update", "get", "list", "delete", "event"};
constexpr int kStampDigits = 20;

struct K8sCounters {
  std::atomic<uint64_t> conflicts{0};
  std::atomic<uint64_t> list_pages{0};
  std::atomic<uint64_t> list_restarts{0};
  std::atomic<uint64_t> listed_keys{0};
  std::atomic<uint64_t> watch_events{0};
  std::atomic<uint64_t> compactions{0};
};

// The lease events share, per polling thread (only that thread touches it).
struct EventLease {
  int64_t id = 0;
  int64_t granted_ns = 0;
  bool granting = false;
};

void StampValue(std::string* v) {
  absl::SNPrintF(v->data(), kStampDigits + 1, "%020lld", static_cast<long long>(NowNs()));
  (*v)[kStampDigits] = '.';
}

class K8sClient final : public LoopClient {
 public:
  K8sClient(Engine* engine, int index, const std::string& prefix,
            const std::vector<int>* mix_weights, std::vector<EventLease>* leases,
            K8sCounters* counters)
      : LoopClient(engine, index),
        weights_(mix_weights),
        lease_(&(*leases)[index % engine->threads()]),
        counters_(counters),
        objects_(absl::GetFlag(FLAGS_k8s_objects)),
        object_keys_(absl::StrCat(prefix, "pods/ns", index % 10, "/pod-", index, "-"), 0,
                     absl::GetFlag(FLAGS_k8s_objects)),
        event_prefix_(absl::StrCat(prefix, "events/ns", index % 10, "/ev-", index, "-")),
        list_prefix_(absl::StrCat(prefix, "pods/")),
        list_end_(PrefixEnd(list_prefix_)),
        value_(MakeValue(std::max(absl::GetFlag(FLAGS_val_size), kStampDigits + 1), index)),
        lease_reuse_ns_(absl::ToInt64Nanoseconds(absl::GetFlag(FLAGS_k8s_lease_reuse))) {
    for (int w : *weights_) weight_total_ += w;
  }

  void Proceed(bool) override {
    const grpc::Status& st = call_status();
    if (op_row_ == kList && st.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
        rreq_.revision() != 0 && !engine_->stopping()) {
      // The pinned revision was compacted under a paginated list: the apiserver answers
      // 410 Gone ("continue token expired") and its client lists again from the start.
      counters_->list_restarts.fetch_add(1, std::memory_order_relaxed);
      return ListPage(/*first=*/true);
    }
    if (!st.ok()) {
      if (op_row_ == kLeaseGrant) lease_->granting = false;  // the next event tries again
      row(op_row_).Error(st.error_code());
      return Next();
    }
    row(kRequest).Ok(NowNs() - call_start_ns());
    switch (op_row_) {
      case kCreate:
      case kUpdate:
      case kDelete:
      case kEvent:
        return OnTxn();
      case kGet:
        return Done();
      case kList:
        return OnListPage();
      case kLeaseGrant:
        return OnLeaseGrant();
      default:
        return Next();
    }
  }

 private:
  struct Object {
    bool exists = false;
    int64_t mod_revision = 0;
  };

  const grpc::Status& call_status() const {
    return op_row_ == kGet || op_row_ == kList ? range_.status
           : op_row_ == kLeaseGrant            ? grant_.status
                                               : txn_.status;
  }
  int64_t call_start_ns() const {
    return op_row_ == kGet || op_row_ == kList ? range_.start_ns
           : op_row_ == kLeaseGrant            ? grant_.start_ns
                                               : txn_.start_ns;
  }

  void Next() override {
    if (!engine_->TryStartOp()) return Finished();
    op_start_ns_ = NowNs();
    slot_ = absl::Uniform<int>(rng_, 0, static_cast<int>(objects_.size()));
    int pick = absl::Uniform<int>(rng_, 0, weight_total_);
    int op = 0;
    while (pick >= (*weights_)[op]) pick -= (*weights_)[op++];
    const bool exists = objects_[slot_].exists;
    switch (op) {
      case 0:  // create
      case 1:  // update
        return exists ? Update() : Create();
      case 2:
        return exists ? Get() : Create();
      case 3:
        return ListPage(/*first=*/true);
      case 4:
        return exists ? Delete() : Create();
      default:
        return Event();
    }
  }

  // The operation succeeded: its latency goes to its row.
  void Done() {
    row(op_row_).Ok(NowNs() - op_start_ns_);
    engine_->CountProgress();
    Next();
  }

  void StartTxn(K8sRow op) {
    op_row_ = op;
    txn_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncTxn, treq_, cq(), timeout(), this);
  }

  // Fills treq_ as Txn(If <cmp> Then <then> Else get(key)).
  etcdserverpb::Compare* PrepareTxn(const std::string& key) {
    treq_.Clear();
    auto* cmp = treq_.add_compare();
    cmp->set_key(key);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    treq_.add_failure()->mutable_request_range()->set_key(key);
    return cmp;
  }

  void PreparePut(const std::string& key, int64_t lease) {
    auto* put = treq_.add_success()->mutable_request_put();
    put->set_key(key);
    StampValue(&value_);
    put->set_value(value_);
    put->set_lease(lease);
  }

  void Create() {
    object_keys_.Format(slot_, &key_);
    PrepareTxn(key_)->set_target(etcdserverpb::Compare::CREATE);  // create_revision == 0
    PreparePut(key_, 0);
    StartTxn(kCreate);
  }

  void Update() {
    object_keys_.Format(slot_, &key_);
    auto* cmp = PrepareTxn(key_);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_mod_revision(objects_[slot_].mod_revision);
    PreparePut(key_, 0);
    StartTxn(kUpdate);
  }

  void Delete() {
    object_keys_.Format(slot_, &key_);
    auto* cmp = PrepareTxn(key_);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_mod_revision(objects_[slot_].mod_revision);
    treq_.add_success()->mutable_request_delete_range()->set_key(key_);
    StartTxn(kDelete);
  }

  // An event: a new key under the events prefix with the thread's shared lease, granting
  // a new lease when the current one is older than --k8s-lease-reuse.
  void Event() {
    const bool stale = lease_->id == 0 || NowNs() - lease_->granted_ns > lease_reuse_ns_;
    if (stale && !lease_->granting) {
      lease_->granting = true;
      op_row_ = kLeaseGrant;
      grant_req_.set_ttl(absl::GetFlag(FLAGS_ttl));
      grant_.Start(conn_->lease.get(), &Lease::Stub::PrepareAsyncLeaseGrant, grant_req_, cq(),
                   timeout(), this);
      return;
    }
    if (lease_->id == 0) return Get();  // the first lease is on its way: do a read instead
    key_ = absl::StrCat(event_prefix_, ++events_);
    PrepareTxn(key_)->set_target(etcdserverpb::Compare::CREATE);
    PreparePut(key_, lease_->id);
    StartTxn(kEvent);
  }

  void OnLeaseGrant() {
    lease_->granting = false;
    lease_->id = grant_.resp.id();
    lease_->granted_ns = NowNs();
    row(kLeaseGrant).Ok(NowNs() - grant_.start_ns);
    Event();
  }

  void OnTxn() {
    const auto& resp = txn_.resp;
    Object& obj = objects_[slot_];
    if (resp.succeeded()) {
      if (op_row_ != kEvent) {
        obj.exists = op_row_ != kDelete;
        obj.mod_revision = resp.header().revision();
      }
      return Done();
    }
    // Conflict: refresh from the Else branch; the operation counts as done (the apiserver
    // would retry an update with the fresh object; a create of an existing object fails).
    counters_->conflicts.fetch_add(1, std::memory_order_relaxed);
    if (op_row_ != kEvent && resp.responses_size() > 0) {
      const auto& kvs = resp.responses(0).response_range().kvs();
      obj.exists = !kvs.empty();
      obj.mod_revision = kvs.empty() ? 0 : kvs[0].mod_revision();
    }
    Done();
  }

  void Get() {
    object_keys_.Format(slot_, &key_);
    rreq_.Clear();
    rreq_.set_key(key_);
    op_row_ = kGet;
    range_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncRange, rreq_, cq(), timeout(), this);
  }

  void ListPage(bool first) {
    if (first) {
      rreq_.Clear();
      rreq_.set_key(list_prefix_);
      rreq_.set_range_end(list_end_);
      rreq_.set_limit(absl::GetFlag(FLAGS_k8s_page));
    }
    op_row_ = kList;
    range_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncRange, rreq_, cq(), timeout(), this);
  }

  void OnListPage() {
    const auto& resp = range_.resp;
    counters_->list_pages.fetch_add(1, std::memory_order_relaxed);
    counters_->listed_keys.fetch_add(resp.kvs_size(), std::memory_order_relaxed);
    if (!resp.more() || resp.kvs_size() == 0 || engine_->stopping()) return Done();
    // Continue after the last key, at the first page's revision.
    if (rreq_.revision() == 0) rreq_.set_revision(resp.header().revision());
    rreq_.set_key(absl::StrCat(resp.kvs(resp.kvs_size() - 1).key(), std::string(1, '\0')));
    ListPage(/*first=*/false);
  }

  const std::vector<int>* weights_;
  int weight_total_ = 0;
  EventLease* lease_;
  K8sCounters* counters_;
  std::vector<Object> objects_;
  KeySpace object_keys_;
  std::string event_prefix_;
  std::string list_prefix_;
  std::string list_end_;
  std::string value_;
  int64_t lease_reuse_ns_;
  int64_t events_ = 0;
  int slot_ = 0;
  K8sRow op_row_ = kRequest;
  int64_t op_start_ns_ = 0;
  std::string key_;
  etcdserverpb::TxnRequest treq_;
  etcdserverpb::RangeRequest rreq_;
  etcdserverpb::LeaseGrantRequest grant_req_;
  UnaryCall<etcdserverpb::TxnResponse> txn_;
  UnaryCall<etcdserverpb::RangeResponse> range_;
  UnaryCall<etcdserverpb::LeaseGrantResponse> grant_;
};

// The apiserver's compactor: every interval, bump the compact key (Txn on its version),
// then compact to the revision that the previous interval's bump returned.
class Compactor final : public Tag {
 public:
  Compactor(Engine* engine, const std::string& key, K8sCounters* counters)
      : engine_(engine), key_(key), counters_(counters) {}

  // On thread 0, from the ticker.
  void Tick() {
    if (busy_) return;
    busy_ = true;
    compacting_ = false;
    treq_.Clear();
    auto* cmp = treq_.add_compare();
    cmp->set_key(key_);
    cmp->set_target(etcdserverpb::Compare::VERSION);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_version(version_);
    auto* put = treq_.add_success()->mutable_request_put();
    put->set_key(key_);
    treq_.add_failure()->mutable_request_range()->set_key(key_);
    txn_.Start(engine_->conn(0).kv.get(), &KV::Stub::PrepareAsyncTxn, treq_, engine_->cq(0),
               engine_->timeout(), this);
  }

  void Proceed(bool) override {
    OpStats& row = engine_->stats(0, kCompact);
    if (compacting_) {
      busy_ = false;
      if (!compact_.status.ok()) return row.Error(compact_.status.error_code());
      row.Ok(NowNs() - compact_.start_ns);
      counters_->compactions.fetch_add(1);
      return;
    }
    if (!txn_.status.ok()) {
      busy_ = false;
      return row.Error(txn_.status.error_code());
    }
    const auto& resp = txn_.resp;
    if (resp.succeeded()) {
      ++version_;
    } else {
      const auto& kvs = resp.responses(0).response_range().kvs();
      version_ = kvs.empty() ? 0 : kvs[0].version();
    }
    const int64_t target = previous_revision_;
    previous_revision_ = resp.header().revision();
    if (target <= 0 || engine_->stopping()) {
      busy_ = false;
      return;
    }
    compacting_ = true;
    creq_.set_revision(target);
    compact_.Start(engine_->conn(0).kv.get(), &KV::Stub::PrepareAsyncCompact, creq_, engine_->cq(0),
                   engine_->timeout(), this);
  }

 private:
  Engine* engine_;
  std::string key_;
  K8sCounters* counters_;
  bool busy_ = false;
  bool compacting_ = false;
  int64_t version_ = 0;
  int64_t previous_revision_ = 0;
  etcdserverpb::TxnRequest treq_;
  etcdserverpb::CompactionRequest creq_;
  UnaryCall<etcdserverpb::TxnResponse> txn_;
  UnaryCall<etcdserverpb::CompactionResponse> compact_;
};

class KubernetesWorkload final : public Workload, public WatchSink {
 public:
  explicit KubernetesWorkload(Engine* engine)
      : engine_(engine), prefix_(absl::StrCat(absl::GetFlag(FLAGS_key_prefix), "registry/")) {}

  std::vector<std::string> Rows() const override {
    return {"request", "create", "update",      "get",      "list",   "delete",
            "event",   "lease",  "watch_event", "progress", "compact"};
  }

  absl::Status Setup() override {
    weights_.assign(kMixOps, 0);
    for (absl::string_view part :
         absl::StrSplit(absl::GetFlag(FLAGS_k8s_mix), ',', absl::SkipWhitespace())) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
      int w = 0;
      int op = 0;
      while (op < kMixOps && kv.first != kMixNames[op]) ++op;
      if (op == kMixOps || !absl::SimpleAtoi(kv.second, &w) || w < 0) {
        return absl::InvalidArgumentError(absl::StrCat("bad --k8s-mix entry '", part, "'"));
      }
      weights_[op] = w;
    }
    int total = 0;
    for (int w : weights_) total += w;
    if (total <= 0) return absl::InvalidArgumentError("--k8s-mix has no positive weight");
    if (absl::GetFlag(FLAGS_k8s_objects) < 1 || absl::GetFlag(FLAGS_k8s_page) < 1 ||
        absl::GetFlag(FLAGS_k8s_watchers) < 0 || absl::GetFlag(FLAGS_watch_streams) < 1 ||
        absl::GetFlag(FLAGS_ttl) < 1) {
      return absl::InvalidArgumentError(
          "--k8s-objects, --k8s-page, --watch-streams and --ttl must be >= 1, "
          "--k8s-watchers >= 0");
    }
    return absl::OkStatus();
  }

  void Start() override {
    const int watchers = absl::GetFlag(FLAGS_k8s_watchers);
    const int streams = std::min(absl::GetFlag(FLAGS_watch_streams), std::max(watchers, 1));
    const std::string pods = absl::StrCat(prefix_, "pods/");
    for (int s = 0; s < streams && watchers > 0; ++s) {
      streams_.push_back(std::make_unique<WatchStream>(engine_, s, this, kWatchEvent));
    }
    progress_sent_ns_.assign(streams_.size(), 0);
    for (int w = 0; w < watchers; ++w) {
      etcdserverpb::WatchRequest req;
      auto* create = req.mutable_create_request();
      create->set_key(pods);
      create->set_range_end(PrefixEnd(pods));
      create->set_progress_notify(true);
      streams_[w % streams]->Send(std::move(req));
    }
    for (auto& s : streams_) s->Open();
    const absl::Duration progress = absl::GetFlag(FLAGS_k8s_progress_interval);
    if (progress > absl::ZeroDuration()) {
      for (size_t s = 0; s < streams_.size(); ++s) {
        WatchStream* stream = streams_[s].get();
        tickers_.push_back(
            std::make_unique<Ticker>(engine_, stream->thread(), progress, [this, s, stream] {
              etcdserverpb::WatchRequest req;
              req.mutable_progress_request();
              progress_sent_ns_[s] = NowNs();
              stream->Send(std::move(req));
            }));
      }
    }
    const absl::Duration compact = absl::GetFlag(FLAGS_compact_interval);
    Ticker* compact_ticker = nullptr;
    if (compact > absl::ZeroDuration()) {
      compactor_ = std::make_unique<Compactor>(engine_, absl::StrCat(prefix_, "compact_rev_key"),
                                               &counters_);
      // The first bump at once: the first compaction comes one interval into the run.
      tickers_.push_back(
          std::make_unique<Ticker>(engine_, 0, compact, [this] { compactor_->Tick(); }));
      compact_ticker = tickers_.back().get();
    }

    leases_.resize(engine_->threads());
    for (int i = 0; i < engine_->options().clients; ++i) {
      clients_.push_back(
          std::make_unique<K8sClient>(engine_, i, prefix_, &weights_, &leases_, &counters_));
    }
    for (auto& t : tickers_) t->Begin(/*tick_now=*/t.get() == compact_ticker);
    BeginAll(clients_);
  }

  void Cancel() override {
    for (auto& s : streams_) s->Cancel();
  }

  absl::Status Finish(Extras* extras) override {
    extras->Add("conflicts", counters_.conflicts.load());
    extras->Add("list_pages", counters_.list_pages.load());
    extras->Add("listed_keys", counters_.listed_keys.load());
    extras->Add("list_restarts", counters_.list_restarts.load());
    extras->Add("watch_events", counters_.watch_events.load());
    extras->Add("compactions", counters_.compactions.load());
    return absl::OkStatus();
  }

  // On the stream's polling thread.
  void OnWatchResponse(int stream, int thread, const etcdserverpb::WatchResponse& resp) override {
    if (resp.canceled()) {
      engine_->stats(thread, kWatchEvent).Error(grpc::StatusCode::CANCELLED);
      return;
    }
    if (resp.created()) return;
    if (resp.events_size() == 0) {  // a progress notification
      const int64_t sent = progress_sent_ns_[stream];
      engine_->stats(thread, kProgress).Ok(sent > 0 ? NowNs() - sent : 0);
      return;
    }
    const int64_t now = NowNs();
    OpStats& row = engine_->stats(thread, kWatchEvent);
    for (const auto& ev : resp.events()) {
      int64_t sent = 0;
      absl::string_view v = ev.kv().value();
      if (v.size() >= kStampDigits && absl::SimpleAtoi(v.substr(0, kStampDigits), &sent)) {
        row.Ok(now - sent);
      } else {
        row.Ok(0);  // deletes carry no value
      }
    }
    counters_.watch_events.fetch_add(resp.events_size(), std::memory_order_relaxed);
  }

 private:
  Engine* engine_;
  std::string prefix_;
  std::vector<int> weights_;
  K8sCounters counters_;
  std::vector<EventLease> leases_;
  std::vector<int64_t> progress_sent_ns_;
  std::vector<std::unique_ptr<WatchStream>> streams_;
  std::vector<std::unique_ptr<Ticker>> tickers_;
  std::unique_ptr<Compactor> compactor_;
  std::vector<std::unique_ptr<K8sClient>> clients_;
};

}  // namespace

std::unique_ptr<Workload> MakeKubernetesWorkload(Engine* engine) {
  return std::make_unique<KubernetesWorkload>(engine);
}

}  // namespace kvbench
