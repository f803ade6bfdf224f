// watch: --watchers watchers over --watch-streams streams on --watch-keys keys, written by
// --clients putters at --rate puts/s in all. Each value starts with the put's send time,
// so every event yields a put->event latency. --idle-watchers more watchers on keys nobody
// writes are opened and held (server memory per idle watcher).
#include <atomic>
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/kvbench/client.h"
#include "bench/kvbench/flags.h"
#include "bench/kvbench/watch_stream.h"
#include "bench/kvbench/workload.h"

namespace kvbench {
namespace {

using etcdserverpb::KV;

enum WatchRow { kEvent = 0, kPut = 1, kStream = 2 };
constexpr int kStampDigits = 20;

// Shared by the putters and the sink.
struct WatchCounters {
  std::atomic<uint64_t> created{0};
  std::atomic<uint64_t> canceled{0};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> events_expected{0};
  std::atomic<int64_t> puts_scheduled{0};
};

// Puts at a fixed overall rate: put number n is due at start + n / rate.
class PacedPutter final : public LoopClient {
 public:
  PacedPutter(Engine* engine, int index, const KeySpace* keys,
              const std::vector<int>* watchers_per_key, WatchCounters* counters, int64_t start_ns,
              double rate)
      : LoopClient(engine, index),
        keys_(keys),
        watchers_per_key_(watchers_per_key),
        counters_(counters),
        start_ns_(start_ns),
        rate_(rate) {
    req_.set_value(MakeValue(std::max(absl::GetFlag(FLAGS_val_size), kStampDigits), index));
  }

  void Proceed(bool ok) override {
    if (waiting_) {
      waiting_ = false;
      if (engine_->stopping()) return Finished();
      return NowNs() < due_ns_ ? Wait() : Put();
    }
    if (call_.status.ok()) {
      row(kPut).Ok(NowNs() - call_.start_ns);
      counters_->events_expected.fetch_add((*watchers_per_key_)[key_index_]);
      engine_->CountProgress();
    } else {
      row(kPut).Error(call_.status.error_code());
    }
    Next();
  }

 private:
  void Next() override {
    if (!engine_->TryStartOp()) return Finished();
    int64_t n = counters_->puts_scheduled.fetch_add(1, std::memory_order_relaxed);
    key_index_ = n % keys_->count();
    due_ns_ = start_ns_ + static_cast<int64_t>(n * 1e9 / rate_);
    if (due_ns_ <= NowNs()) return Put();
    Wait();
  }

  // Sleeps until the put is due, in slices of at most kMaxWait so a stop is seen soon.
  void Wait() {
    static constexpr int64_t kMaxWaitNs = 50'000'000;
    const int64_t wait_ns = std::min(due_ns_ - NowNs(), kMaxWaitNs);
    waiting_ = true;
    alarm_.emplace();
    alarm_->Set(cq(), std::chrono::system_clock::now() + std::chrono::nanoseconds(wait_ns), this);
  }

  void Put() {
    keys_->Format(key_index_, req_.mutable_key());
    std::string* v = req_.mutable_value();
    absl::SNPrintF(v->data(), kStampDigits + 1, "%020lld", static_cast<long long>(NowNs()));
    (*v)[kStampDigits] = '.';  // overwrite SNPrintF's terminator; keep the size
    call_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncPut, req_, cq(), timeout(), this);
  }

  const KeySpace* keys_;
  const std::vector<int>* watchers_per_key_;
  WatchCounters* counters_;
  int64_t start_ns_;
  double rate_;
  int64_t key_index_ = 0;
  int64_t due_ns_ = 0;
  bool waiting_ = false;
  std::optional<grpc::Alarm> alarm_;
  etcdserverpb::PutRequest req_;
  UnaryCall<etcdserverpb::PutResponse> call_;
};

class WatchWorkload final : public Workload, public WatchSink {
 public:
  explicit WatchWorkload(Engine* engine)
      : engine_(engine),
        keys_(absl::StrCat(absl::GetFlag(FLAGS_key_prefix), "watch/"),
              absl::GetFlag(FLAGS_key_size), absl::GetFlag(FLAGS_watch_keys)),
        idle_keys_(absl::StrCat(absl::GetFlag(FLAGS_key_prefix), "idle/"),
                   absl::GetFlag(FLAGS_key_size), absl::GetFlag(FLAGS_idle_watchers)) {}

  std::vector<std::string> Rows() const override { return {"event", "put", "stream"}; }

  absl::Status Setup() override {
    if (absl::GetFlag(FLAGS_watch_streams) < 1 || absl::GetFlag(FLAGS_watch_keys) < 1 ||
        absl::GetFlag(FLAGS_watchers) < 0 || absl::GetFlag(FLAGS_idle_watchers) < 0 ||
        absl::GetFlag(FLAGS_rate) < 0) {
      return absl::InvalidArgumentError(
          "--watch-streams and --watch-keys must be >= 1; --watchers, --idle-watchers and "
          "--rate >= 0");
    }
    return absl::OkStatus();
  }

  // Opens the streams, creates every watcher and waits (at most --timeout) until all are
  // confirmed, then starts the putters.
  void Start() override {
    const int streams = absl::GetFlag(FLAGS_watch_streams);
    const int watchers = absl::GetFlag(FLAGS_watchers);
    const int idle = absl::GetFlag(FLAGS_idle_watchers);
    for (int s = 0; s < streams; ++s) {
      streams_.push_back(std::make_unique<WatchStream>(engine_, s, this, kStream));
    }
    watchers_per_key_.assign(keys_.count(), 0);
    for (int w = 0; w < watchers; ++w) {
      int64_t k = w % keys_.count();
      ++watchers_per_key_[k];
      Create(w % streams, keys_.Key(k));
    }
    for (int w = 0; w < idle; ++w) Create((watchers + w) % streams, idle_keys_.Key(w));
    const int64_t created_start_ns = NowNs();
    for (auto& s : streams_) s->Open();

    const uint64_t want = static_cast<uint64_t>(watchers) + idle;
    const int64_t limit_ns = NowNs() + absl::ToInt64Nanoseconds(engine_->timeout());
    while (counters_.created.load() < want && NowNs() < limit_ns) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    create_s_ = (NowNs() - created_start_ns) / 1e9;
    std::fprintf(stderr, "kvbench: %llu of %llu watchers created in %.3f s\n",
                 static_cast<unsigned long long>(counters_.created.load()),
                 static_cast<unsigned long long>(want), create_s_);
    if (const std::string f = absl::GetFlag(FLAGS_ready_file); !f.empty()) {
      std::ofstream(f) << counters_.created.load() << "\n";
    }

    const double rate = absl::GetFlag(FLAGS_rate);
    if (rate <= 0) return;
    const int64_t start_ns = NowNs();
    for (int i = 0; i < std::max(engine_->options().clients, 1); ++i) {
      putters_.push_back(std::make_unique<PacedPutter>(engine_, i, &keys_, &watchers_per_key_,
                                                       &counters_, start_ns, rate));
    }
    BeginAll(putters_);
  }

  // Waits for the putters' last answers, gives the last events up to --timeout in all to
  // arrive, then ends the streams.
  void Cancel() override {
    const int64_t limit_ns = NowNs() + absl::ToInt64Nanoseconds(engine_->timeout());
    while (engine_->workers() > 0 && NowNs() < limit_ns) absl::SleepFor(absl::Milliseconds(1));
    while (counters_.events.load() < counters_.events_expected.load() && NowNs() < limit_ns) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    for (auto& s : streams_) s->Cancel();
  }

  absl::Status Finish(Extras* extras) override {
    extras->Add("watchers_created", counters_.created.load());
    extras->Add("watchers_canceled", counters_.canceled.load());
    extras->Add("create_s", create_s_);
    extras->Add("events_expected", counters_.events_expected.load());
    extras->Add("events_received", counters_.events.load());
    return absl::OkStatus();
  }

  // On the stream's polling thread.
  void OnWatchResponse(int, int thread, const etcdserverpb::WatchResponse& resp) override {
    if (resp.created()) counters_.created.fetch_add(1, std::memory_order_relaxed);
    if (resp.canceled()) {
      counters_.canceled.fetch_add(1, std::memory_order_relaxed);
      engine_->stats(thread, kStream).Error(grpc::StatusCode::CANCELLED);
    }
    if (resp.events_size() == 0) return;
    const int64_t now = NowNs();
    OpStats& events = engine_->stats(thread, kEvent);
    for (const auto& ev : resp.events()) {
      int64_t sent = 0;
      absl::string_view v = ev.kv().value();
      if (v.size() >= kStampDigits && absl::SimpleAtoi(v.substr(0, kStampDigits), &sent)) {
        events.Ok(now - sent);
      } else {
        events.Ok(0);
      }
    }
    counters_.events.fetch_add(resp.events_size(), std::memory_order_relaxed);
  }

 private:
  void Create(int stream, const std::string& key) {
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key(key);
    streams_[stream]->Send(std::move(req));
  }

  Engine* engine_;
  KeySpace keys_;
  KeySpace idle_keys_;
  std::vector<int> watchers_per_key_;
  WatchCounters counters_;
  double create_s_ = 0;
  std::vector<std::unique_ptr<WatchStream>> streams_;
  std::vector<std::unique_ptr<PacedPutter>> putters_;
};

}  // namespace

std::unique_ptr<Workload> MakeWatchWorkload(Engine* engine) {
  return std::make_unique<WatchWorkload>(engine);
}

}  // namespace kvbench
