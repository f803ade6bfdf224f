// The lessor alone (no store, no raft): the costs behind etcd's lease pain points.
//   build/bin/lessor_bench [--benchmark_filter=...]
//
//   BM_Promote         SetLeader(true) with N leases: what the raft thread pays on promotion
//                      (O(1): a new epoch).
//   BM_PromoteRebuild  the timer thread's rebuild of the expiry heap after promotion, in
//                      chunks (O(N), off the raft and apply threads).
//   BM_Renew           keep-alives per second on one lessor with N leases.
//   BM_ExpireStorm     N leases expiring at once: proposals of max_revokes_per_proposal IDs,
//                      each "applied" at once (no 1,000/s cap as in etcd).
//   BM_Exists          the apply thread's lease check for Put.
// Benchmarks report numbers; they never assert timings.
#include <cstdint>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "server/lease/lessor.h"

namespace kvd::server::lease {
namespace {

class ManualClock final : public Clock {
 public:
  int64_t NowMs() const override { return now_ms_; }
  void Advance(int64_t ms) { now_ms_ += ms; }

 private:
  int64_t now_ms_ = 1'000'000;
};

// A lessor whose proposals are applied at once: expiries revoke, checkpoints apply.
struct Bench {
  explicit Bench(int64_t leases, LessorOptions options = {}) {
    lessor = std::make_unique<Lessor>(options, &clock,
                                      [this](internalpb::Request req, Lessor::Done done) {
                                        for (int64_t id : req.lease_expire().ids()) {
                                          lessor->OnRevoke(id);
                                          ++revoked;
                                        }
                                        ++proposals;
                                        std::move(done)(absl::OkStatus());
                                      });
    for (int64_t id = 1; id <= leases; ++id) lessor->OnGrant(id, 60);
  }
  ManualClock clock;
  std::unique_ptr<Lessor> lessor;
  int64_t revoked = 0;
  int64_t proposals = 0;
};

void BM_Promote(benchmark::State& state) {
  Bench b(state.range(0));
  for (auto _ : state) {
    b.lessor->SetLeader(false);
    b.lessor->SetLeader(true);
  }
  state.SetLabel("per demote+promote pair");
}
BENCHMARK(BM_Promote)->Arg(1'000)->Arg(1'000'000);

void BM_PromoteRebuild(benchmark::State& state) {
  Bench b(state.range(0));
  for (auto _ : state) {
    b.lessor->SetLeader(true);
    int ticks = 0;
    while (b.lessor->Tick()) ++ticks;
    benchmark::DoNotOptimize(ticks);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PromoteRebuild)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_Renew(benchmark::State& state) {
  Bench b(state.range(0));
  b.lessor->SetLeader(true);
  while (b.lessor->Tick()) {
  }
  int64_t id = 0;
  for (auto _ : state) {
    id = id % state.range(0) + 1;
    benchmark::DoNotOptimize(b.lessor->Renew(id));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Renew)->Arg(1'000)->Arg(1'000'000);

void BM_ExpireStorm(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    LessorOptions options;
    options.max_revokes_per_proposal = static_cast<int>(state.range(1));
    Bench b(state.range(0), options);
    b.lessor->SetLeader(true);
    while (b.lessor->Tick()) {
    }
    b.clock.Advance(61'000);
    state.ResumeTiming();
    while (b.lessor->Tick()) {
    }
    state.counters["proposals"] = static_cast<double>(b.proposals);
    state.counters["revoked"] = static_cast<double>(b.revoked);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ExpireStorm)->Args({100'000, 128})->Args({100'000, 1024})
    ->Unit(benchmark::kMillisecond);

void BM_Exists(benchmark::State& state) {
  Bench b(state.range(0));
  int64_t id = 0;
  for (auto _ : state) {
    id = id % state.range(0) + 1;
    benchmark::DoNotOptimize(b.lessor->Exists(id));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Exists)->Arg(1'000'000);

}  // namespace
}  // namespace kvd::server::lease

BENCHMARK_MAIN();
