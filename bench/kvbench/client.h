// The building block of the request/response workloads: a client that keeps one request
// outstanding and issues its next one from the completion of the previous, on its polling
// thread.
#ifndef KVD_BENCH_KVBENCH_CLIENT_H_
#define KVD_BENCH_KVBENCH_CLIENT_H_

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "bench/kvbench/engine.h"
#include "grpcpp/alarm.h"

namespace kvbench {

// A seed sequence for client `index` derived from --seed: runs repeat their key choices.
std::seed_seq SeedFor(int64_t index);

class LoopClient : public Tag {
 public:
  // Client number `index` runs on polling thread index % threads over conn index % conns.
  LoopClient(Engine* engine, int index)
      : engine_(engine),
        thread_(index % engine->threads()),
        conn_(&engine->conn(index)),
        rng_(SeedFor(index)) {}
  virtual ~LoopClient() = default;

  // Counts the client as active and issues its first request.
  void Begin() {
    engine_->AddActive();
    engine_->AddWorker();
    Next();
  }

 protected:
  // Issues the next request, or calls Finished() when TryStartOp() says the run is over.
  virtual void Next() = 0;
  void Finished() {
    engine_->DoneWorker();
    engine_->DoneActive();
  }
  OpStats& row(int r) { return engine_->stats(thread_, r); }
  grpc::CompletionQueue* cq() { return engine_->cq(thread_); }
  absl::Duration timeout() const { return engine_->timeout(); }

  Engine* engine_;
  int thread_;
  Conn* conn_;
  absl::InsecureBitGen rng_;
};

// Calls `tick` every `interval` on polling thread `thread` until the run stops (active
// until then). The wait is cut in slices of at most 50 ms so a stop ends it quickly.
class Ticker final : public Tag {
 public:
  Ticker(Engine* engine, int thread, absl::Duration interval, std::function<void()> tick)
      : engine_(engine),
        thread_(thread),
        interval_ns_(absl::ToInt64Nanoseconds(interval)),
        tick_(std::move(tick)) {}

  // The first tick comes after one interval, or at once if `tick_now`.
  void Begin(bool tick_now = false) {
    engine_->AddActive();
    due_ns_ = NowNs() + (tick_now ? 0 : interval_ns_);
    Arm();
  }

  void Proceed(bool) override {
    if (engine_->stopping()) return engine_->DoneActive();
    if (NowNs() >= due_ns_) {
      tick_();
      due_ns_ += interval_ns_;
    }
    Arm();
  }

 private:
  void Arm() {
    static constexpr int64_t kMaxWaitNs = 50'000'000;
    const int64_t wait_ns = std::clamp<int64_t>(due_ns_ - NowNs(), 0, kMaxWaitNs);
    alarm_.emplace();
    alarm_->Set(engine_->cq(thread_),
                std::chrono::system_clock::now() + std::chrono::nanoseconds(wait_ns), this);
  }

  Engine* engine_;
  int thread_;
  int64_t interval_ns_;
  std::function<void()> tick_;
  int64_t due_ns_ = 0;
  std::optional<grpc::Alarm> alarm_;
};

// Starts every client of a workload.
template <class C>
void BeginAll(const std::vector<std::unique_ptr<C>>& clients) {
  for (const auto& c : clients) c->Begin();
}

// A value of `size` printable bytes.
std::string MakeValue(int size, uint64_t seed);

}  // namespace kvbench

#endif  // KVD_BENCH_KVBENCH_CLIENT_H_
