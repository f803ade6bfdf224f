// The building block of the request/response workloads: a client that keeps one request
// outstanding and issues its next one from the completion of the previous, on its polling
// thread.
#ifndef KVD_BENCH_KVBENCH_CLIENT_H_
#define KVD_BENCH_KVBENCH_CLIENT_H_

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "bench/kvbench/engine.h"

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

// Starts every client of a workload.
template <class C>
void BeginAll(const std::vector<std::unique_ptr<C>>& clients) {
  for (const auto& c : clients) c->Begin();
}

// A value of `size` printable bytes.
std::string MakeValue(int size, uint64_t seed);

}  // namespace kvbench

#endif  // KVD_BENCH_KVBENCH_CLIENT_H_
