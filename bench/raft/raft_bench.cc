// raft_bench: the consensus core alone, no I/O. A 3-node cluster with MemoryStorage and a
// synchronous in-memory network; proposals are made at the leader and counted when the
// leader applies them. Reports proposals/s (items_per_second) and heap allocations per
// committed proposal, counted by replacing the global operator new in this binary.
//
//   build/bin/raft_bench [--benchmark_filter=...]
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/rawnode.h"

namespace {

std::atomic<uint64_t> g_allocations{0};

}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace kvd::raft {
namespace {

class Cluster {
 public:
  explicit Cluster(int n) {
    raftpb::ConfState cs;
    for (int i = 1; i <= n; ++i) cs.add_voters(static_cast<uint64_t>(i));
    for (int i = 1; i <= n; ++i) {
      auto s = std::make_unique<MemoryStorage>();
      s->SetConfState(cs);
      Config c;
      c.id = static_cast<uint64_t>(i);
      c.storage = s.get();
      c.max_inflight_msgs = 256;
      c.max_size_per_msg = 1 << 20;
      c.max_committed_size_per_ready = 64 << 20;
      storages_.push_back(std::move(s));
      nodes_.push_back(*RawNode::Create(c));
    }
    (void)nodes_[0]->Campaign();
    Pump();
  }

  RawNode& leader() { return *nodes_[0]; }
  uint64_t applied() const { return applied_; }

  // Runs the cluster until nothing is left to do. Every node handles its Ready as the
  // contract says; the leader (node 1) counts applied entries.
  void Pump() {
    for (;;) {
      bool any = false;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        RawNode& n = *nodes_[i];
        if (!n.HasReady()) continue;
        any = true;
        Ready rd = n.GetReady();
        MemoryStorage& s = *storages_[i];
        if (!rd.entries.empty()) (void)s.Append(rd.entries);
        if (rd.hard_state) s.SetHardState(*rd.hard_state);
        for (auto& m : rd.messages) inflight_.push_back(std::move(m));
        if (i == 0) applied_ += rd.committed_entries.size();
        n.Advance();
      }
      if (!inflight_.empty()) {
        any = true;
        std::vector<raftpb::Message> batch;
        batch.swap(inflight_);
        for (auto& m : batch) (void)nodes_[m.to() - 1]->Step(std::move(m));
      }
      if (!any) return;
    }
  }

  // Compacts every log behind the applied index so memory stays flat in long runs.
  void Compact() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const uint64_t a = nodes_[i]->GetStatus().applied;
      if (a > *storages_[i]->FirstIndex() + 1024) (void)storages_[i]->Compact(a - 512);
    }
  }

 private:
  std::vector<std::unique_ptr<MemoryStorage>> storages_;
  std::vector<std::unique_ptr<RawNode>> nodes_;
  std::vector<raftpb::Message> inflight_;
  uint64_t applied_ = 0;
};

// Proposes `batch` entries of 128 bytes, then runs the cluster until they are committed
// and applied on the leader.
void BM_ProposeCommit3Nodes(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  Cluster c(3);
  const std::string payload(128, 'v');
  uint64_t proposals = 0;
  uint64_t allocs = 0;
  int rounds = 0;
  for (auto _ : state) {
    const uint64_t before_allocs = g_allocations.load(std::memory_order_relaxed);
    const uint64_t target = c.applied() + static_cast<uint64_t>(batch);
    for (int i = 0; i < batch; ++i) {
      if (!c.leader().Propose(payload).ok()) state.SkipWithError("proposal dropped");
    }
    c.Pump();
    if (c.applied() < target) state.SkipWithError("proposals did not commit");
    allocs += g_allocations.load(std::memory_order_relaxed) - before_allocs;
    proposals += static_cast<uint64_t>(batch);
    if (++rounds % 64 == 0) {
      state.PauseTiming();
      c.Compact();
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(proposals));
  state.counters["allocs_per_proposal"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(proposals));
}
BENCHMARK(BM_ProposeCommit3Nodes)->Arg(1)->Arg(16)->Arg(256);

// The raw cost of stepping one append message on a follower and producing its response.
void BM_FollowerStepAppend(benchmark::State& state) {
  Cluster c(3);
  MemoryStorage s;
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  s.SetConfState(cs);
  Config cfg;
  cfg.id = 2;
  cfg.storage = &s;
  auto f = *RawNode::Create(cfg);
  const std::string payload(128, 'v');
  uint64_t index = 0;
  uint64_t allocs = 0, steps = 0;
  for (auto _ : state) {
    const uint64_t before = g_allocations.load(std::memory_order_relaxed);
    raftpb::Message m;
    m.set_type(raftpb::MSG_APP);
    m.set_from(1);
    m.set_to(2);
    m.set_term(1);
    m.set_index(index);
    m.set_log_term(index == 0 ? 0 : 1);
    m.set_commit(index);
    raftpb::Entry* e = m.add_entries();
    e->set_index(index + 1);
    e->set_term(1);
    e->set_data(payload);
    (void)f->Step(std::move(m));
    Ready rd = f->GetReady();
    (void)s.Append(rd.entries);
    if (rd.hard_state) s.SetHardState(*rd.hard_state);
    f->Advance();
    ++index;
    allocs += g_allocations.load(std::memory_order_relaxed) - before;
    ++steps;
    if (index % 4096 == 0) {
      state.PauseTiming();
      (void)s.Compact(index - 1024);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(steps));
  state.counters["allocs_per_append"] =
      benchmark::Counter(static_cast<double>(allocs) / static_cast<double>(steps));
}
BENCHMARK(BM_FollowerStepAppend);

}  // namespace
}  // namespace kvd::raft

BENCHMARK_MAIN();
