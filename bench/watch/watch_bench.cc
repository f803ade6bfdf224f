// Watch hub benchmarks: fan-out of applied events to many watchers, and the memory an idle
// watcher costs. Numbers only; nothing here asserts a timing.
//
//   BM_FanOut/N          N streams with one watcher each on the written key; each iteration
//                        applies 100 single-put batches and waits until every watcher has
//                        them. items/s = events delivered per second.
//   BM_IdleWatcherBytes  100,000 exact-key watchers on distinct keys (100 streams):
//                        heap bytes per watcher (mallinfo2), reported as a counter.
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "server/watch/watch_hub.h"
#include "storage/check.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server::watch {
namespace {

class CountingSink : public WatchSink {
 public:
  void Send(const etcdserverpb::WatchResponse* resp) override {
    events.fetch_add(resp->events_size(), std::memory_order_relaxed);
    responses.fetch_add(1, std::memory_order_relaxed);
    stream->WriteDone();
  }
  void Abort(const absl::Status&) override {}
  WatchStream* stream = nullptr;
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> responses{0};
};

struct Store {
  Store() {
    dir = absl::StrCat(std::filesystem::temp_directory_path().string(), "/watch_bench_",
                       getpid());
    std::filesystem::remove_all(dir);
    storage::EngineOptions options;
    options.path = dir;
    auto e = storage::Engine::Open(options);
    KVD_CHECK_OK(e.status());
    engine = std::move(*e);
    auto k = storage::mvcc::KvStore::Open(engine.get());
    KVD_CHECK_OK(k.status());
    kv = std::move(*k);
    hub = std::make_unique<WatchHub>(kv.get(), WatchHubOptions{}, WatchHubEnv{});
    hub->Start();
  }
  ~Store() {
    streams.clear();
    hub->Stop();
    hub.reset();
    kv.reset();
    engine.reset();
    std::filesystem::remove_all(dir);
  }
  CountingSink* OpenStream() {
    sinks.push_back(std::make_unique<CountingSink>());
    streams.push_back(hub->OpenStream(sinks.back().get(), false));
    sinks.back()->stream = streams.back().get();
    return sinks.back().get();
  }
  void Put(const std::string& key, const std::string& value) {
    auto batch = kv->NewApplyBatch();
    batch->BeginTxn();
    batch->Put(key, value, 0);
    batch->EndTxn();
    KVD_CHECK_OK(batch->Commit(false));
    hub->OnApplied(batch->rev(), batch->events());
  }
  static void Create(WatchStream* s, const std::string& key) {
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key(key);
    s->Handle(req);
  }
  // Spins until every sink has seen `count` of its counter (bounded: aborts after 60 s).
  void WaitAll(int64_t count, bool responses) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (auto& s : sinks) {
      while ((responses ? s->responses.load() : s->events.load()) < count) {
        KVD_CHECK(std::chrono::steady_clock::now() < deadline);
        std::this_thread::yield();
      }
    }
  }

  std::string dir;
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<storage::mvcc::KvStore> kv;
  std::unique_ptr<WatchHub> hub;
  std::vector<std::unique_ptr<CountingSink>> sinks;
  std::vector<std::shared_ptr<WatchStream>> streams;
};

void BM_FanOut(benchmark::State& state) {
  Store store;
  const int watchers = static_cast<int>(state.range(0));
  for (int i = 0; i < watchers; ++i) Store::Create(store.OpenStream()->stream, "hot");
  store.WaitAll(1, /*responses=*/true);  // created
  constexpr int kPuts = 100;
  int64_t delivered = 0;
  const std::string value(100, 'v');
  for (auto _ : state) {
    for (int i = 0; i < kPuts; ++i) store.Put("hot", value);
    delivered += kPuts;
    store.WaitAll(delivered, /*responses=*/false);
  }
  state.SetItemsProcessed(state.iterations() * kPuts * watchers);
}
BENCHMARK(BM_FanOut)->Arg(10)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_IdleWatcherBytes(benchmark::State& state) {
  Store store;
  constexpr int kStreams = 100;
  constexpr int kPerStream = 1000;
  for (int i = 0; i < kStreams; ++i) store.OpenStream();
  for (auto _ : state) {
    size_t before = mallinfo2().uordblks;
    for (int s = 0; s < kStreams; ++s) {
      for (int w = 0; w < kPerStream; ++w) {
        Store::Create(store.streams[s].get(), absl::StrCat("key/", s, "/", w));
      }
    }
    store.WaitAll(kPerStream, /*responses=*/true);
    size_t after = mallinfo2().uordblks;
    state.counters["bytes_per_watcher"] =
        static_cast<double>(after - before) / (kStreams * kPerStream);
    state.counters["synced"] = static_cast<double>(store.hub->synced_watchers());
  }
}
BENCHMARK(BM_IdleWatcherBytes)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvd::server::watch

BENCHMARK_MAIN();
