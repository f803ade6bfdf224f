// The MVCC store alone (no gRPC, no raft): the cost of the data model on RocksDB.
//   build/bin/kv_store_bench [--benchmark_filter=...]
// Writes commit without fsync unless the name says Sync: the apply path does not sync
// (the raft log does); BM_PutSync shows what one fsync per write costs on this disk.
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "server/apply/kv_apply.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd {
namespace {

class Fixture {
 public:
  Fixture() {
    dir_ = absl::StrCat(std::filesystem::temp_directory_path().string(), "/kv_store_bench_",
                        getpid());
    std::filesystem::remove_all(dir_);
    storage::EngineOptions options;
    options.path = dir_;
    engine_ = std::move(*storage::Engine::Open(options));
    kv_ = std::move(*storage::mvcc::KvStore::Open(engine_.get()));
  }
  ~Fixture() {
    kv_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  storage::mvcc::KvStore& kv() { return *kv_; }

  void Put(const std::string& key, const std::string& value, bool sync) {
    auto batch = kv_->NewApplyBatch();
    batch->BeginTxn();
    batch->Put(key, value, 0);
    batch->EndTxn();
    if (!batch->Commit(sync).ok()) std::abort();
  }
  void Load(int keys) {
    auto batch = kv_->NewApplyBatch();
    for (int i = 0; i < keys; ++i) {
      batch->BeginTxn();
      batch->Put(Key(i), std::string(256, 'v'), 0);
      batch->EndTxn();
    }
    if (!batch->Commit(false).ok()) std::abort();
  }
  static std::string Key(int i) { return absl::StrCat("/registry/pods/ns/pod-", 100000 + i); }

 private:
  std::string dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::mvcc::KvStore> kv_;
};

void BM_Put(benchmark::State& state) {
  Fixture f;
  std::string value(256, 'v');
  int i = 0;
  for (auto _ : state) f.Put(Fixture::Key(i++ % 10000), value, false);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Put);

void BM_PutSync(benchmark::State& state) {
  Fixture f;
  std::string value(256, 'v');
  int i = 0;
  for (auto _ : state) f.Put(Fixture::Key(i++ % 10000), value, true);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PutSync)->Iterations(300);

// Many puts in one batch (one RocksDB write): the group-commit shape of the apply loop.
void BM_PutBatch100(benchmark::State& state) {
  Fixture f;
  std::string value(256, 'v');
  int i = 0;
  for (auto _ : state) {
    auto batch = f.kv().NewApplyBatch();
    for (int j = 0; j < 100; ++j) {
      batch->BeginTxn();
      batch->Put(Fixture::Key(i++ % 10000), value, 0);
      batch->EndTxn();
    }
    if (!batch->Commit(false).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_PutBatch100);

void BM_PointGet(benchmark::State& state) {
  Fixture f;
  f.Load(10000);
  etcdserverpb::RangeRequest req;
  int i = 0;
  for (auto _ : state) {
    req.set_key(Fixture::Key(i++ % 10000));
    auto view = f.kv().Read();
    auto resp = server::ApplyRange(*view, req);
    benchmark::DoNotOptimize(resp);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PointGet);

void BM_Range100(benchmark::State& state) {
  Fixture f;
  f.Load(10000);
  etcdserverpb::RangeRequest req;
  req.set_limit(100);
  int i = 0;
  for (auto _ : state) {
    req.set_key(Fixture::Key(i++ % 9900));
    req.set_range_end(std::string("\0", 1));
    auto view = f.kv().Read();
    auto resp = server::ApplyRange(*view, req);
    benchmark::DoNotOptimize(resp);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_Range100);

// Compare-and-swap on mod_revision, the shape of every Kubernetes update.
void BM_TxnCas(benchmark::State& state) {
  Fixture f;
  f.Load(1000);
  auto lease_exists = [](int64_t) { return false; };
  int i = 0;
  for (auto _ : state) {
    std::string key = Fixture::Key(i++ % 1000);
    etcdserverpb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(key);
    cmp->set_target(etcdserverpb::Compare::MOD);
    cmp->set_result(etcdserverpb::Compare::GREATER);
    cmp->set_mod_revision(0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(std::string(256, 'w'));
    txn.add_failure()->mutable_request_range()->set_key(key);
    auto batch = f.kv().NewApplyBatch();
    auto resp = server::ApplyTxn(*batch, txn, lease_exists);
    if (!resp.ok() || !batch->Commit(false).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TxnCas);

}  // namespace
}  // namespace kvd

BENCHMARK_MAIN();
