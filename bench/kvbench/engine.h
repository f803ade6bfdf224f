// The load engine shared by every kvbench workload: connections, polling threads, per-thread
// statistics, the run clock and the stop rules.
//
// Threading model: --threads polling threads, each owning one grpc::CompletionQueue. Every
// client (one outstanding request, see --clients) and every stream belongs to one polling
// thread; its completions arrive on that thread only, so client state needs no locks and
// the next request is issued from the completion handler with no thread hand-off. Channels
// (--conns TCP connections, spread over --endpoints) are shared by all threads.
//
// Every unary RPC carries a deadline (--timeout); streams are cancelled at the end of the
// run, so a run always ends within --duration (or --total) plus --timeout, whatever the
// server does.
#ifndef KVD_BENCH_KVBENCH_ENGINE_H_
#define KVD_BENCH_KVBENCH_ENGINE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "bench/kvbench/histogram.h"
#include "grpcpp/grpcpp.h"

namespace kvbench {

// Monotonic nanoseconds (steady clock), the unit of every latency.
int64_t NowNs();

struct Options {
  std::vector<std::string> endpoints;  // host:port
  int conns = 1;
  int clients = 1;
  int threads = 1;
  int64_t total = 0;  // 0: run for `duration`
  absl::Duration duration = absl::Seconds(10);
  absl::Duration timeout = absl::Seconds(5);
  absl::Duration dial_timeout = absl::Seconds(5);
  // Channels over sockets kvbench connects itself (see Engine::Connect).
  bool direct = true;
  bool progress = false;
};

// One operation type's results on one polling thread (merged across threads at the end).
struct OpStats {
  static constexpr int kCodes = 17;  // grpc::StatusCode 0..16
  Histogram latency;
  uint64_t ops = 0;
  std::array<uint64_t, kCodes> errors{};

  void Ok(int64_t latency_ns) {
    latency.Record(latency_ns);
    ++ops;
  }
  void Error(grpc::StatusCode code) {
    int c = static_cast<int>(code);
    ++errors[(c >= 0 && c < kCodes) ? c : static_cast<int>(grpc::StatusCode::UNKNOWN)];
  }
  uint64_t error_count() const;
  void Merge(const OpStats& other);
};

// Something a completion queue returns: a request finished, a stream event, an alarm.
class Tag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~Tag() = default;
};

// A tag that forwards to a member function, for objects with several kinds of pending
// events (a stream's read, write, start and finish).
template <class T>
class MemberTag final : public Tag {
 public:
  MemberTag(T* self, void (T::*fn)(bool)) : self_(self), fn_(fn) {}
  void Proceed(bool ok) override { (self_->*fn_)(ok); }

 private:
  T* self_;
  void (T::*fn_)(bool);
};

// One connection: a channel with its own TCP connection, and the stubs on it.
struct Conn {
  std::string endpoint;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
};

// A reusable slot for one unary call at a time: a fresh context per call (constructed in
// place, no heap allocation of its own), the response and status, the start time.
template <class Resp>
struct UnaryCall {
  std::optional<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
  Resp resp;
  grpc::Status status;
  int64_t start_ns = 0;

  // Starts `prepare` (e.g. &KV::Stub::PrepareAsyncPut) on `stub` with deadline `timeout`;
  // `tag` completes on `cq` when it finishes.
  template <class Stub, class Req, class Prepare>
  void Start(Stub* stub, Prepare prepare, const Req& req, grpc::CompletionQueue* cq,
             absl::Duration timeout, Tag* tag) {
    ctx.reset();
    ctx.emplace();
    start_ns = NowNs();
    ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
    reader = (stub->*prepare)(&*ctx, req, cq);
    reader->StartCall();
    reader->Finish(&resp, &status, tag);
  }
};

class Engine {
 public:
  explicit Engine(Options options);
  ~Engine();

  // Opens the connections and checks every endpoint answers Maintenance.Status within
  // --dial-timeout. An error means the target is unreachable.
  //
  // With `direct` (the default) kvbench connects each TCP socket itself and hands it to
  // gRPC as a direct channel: calls skip the client channel's resolver, load-balancing
  // pick and second (subchannel) call stack, about 10-20% of the generator's CPU per
  // request. Such a channel never reconnects.
  absl::Status Connect();

  const Options& options() const { return options_; }
  int threads() const { return options_.threads; }
  grpc::CompletionQueue* cq(int thread) { return cqs_[thread].get(); }
  Conn& conn(int i) { return conns_[i % conns_.size()]; }
  int conn_count() const { return static_cast<int>(conns_.size()); }
  // Statistics of `row` (an operation type) on polling thread `thread`.
  OpStats& stats(int thread, int row) { return stats_[thread][row]; }
  absl::Duration timeout() const { return options_.timeout; }
  // The deadline for streams: the whole run plus --timeout (none with --total; streams
  // are cancelled at the end of the run in any case).
  std::chrono::system_clock::time_point StreamDeadline() const;

  // Declares the operation types (table rows); row 0 is the workload's headline.
  void SetRows(std::vector<std::string> rows);
  const std::vector<std::string>& rows() const { return rows_; }

  // Starts the polling threads. Requests may be issued from any thread afterwards.
  void StartPolling();

  // For clients: may one more operation start? False once the run is stopping or --total
  // operations have started.
  bool TryStartOp() {
    if (stopping_.load(std::memory_order_relaxed)) return false;
    if (options_.total == 0) return true;
    return started_.fetch_add(1, std::memory_order_relaxed) < options_.total;
  }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  // Counts live clients and streams: after the stop, the run waits (at most --timeout) until
  // none is left. Workers are the clients that issue operations on their own: the run
  // also ends when every worker is done (all of --total issued and answered).
  void AddActive(int n = 1) { active_.fetch_add(n, std::memory_order_relaxed); }
  void DoneActive() { active_.fetch_sub(1, std::memory_order_acq_rel); }
  void AddWorker(int n = 1) {
    had_workers_.store(true);
    workers_.fetch_add(n, std::memory_order_relaxed);
  }
  void DoneWorker() { workers_.fetch_sub(1, std::memory_order_acq_rel); }
  int workers() const { return workers_.load(); }
  // Finished headline operations, for the progress bar (relaxed, any thread).
  void CountProgress() { progress_ops_.fetch_add(1, std::memory_order_relaxed); }

  // Runs the measured phase: marks the start, waits for the duration (or the total, or
  // SIGINT, or every client to finish), then stops: `cancel` is called once to cancel
  // streams, and the remaining requests get at most --timeout to finish. Returns the
  // measured wall time and the generator's CPU time (getrusage) over that phase.
  struct Measured {
    double elapsed_s = 0;
    double cpu_s = 0;
    bool drained = true;  // false: some requests or streams never finished
  };
  template <class Cancel>
  Measured Run(const std::string& label, Cancel cancel) {
    BeginMeasure();
    WaitForEnd(label);
    stopping_.store(true);
    cancel();
    return EndMeasure();
  }

  // Stops the polling threads (after Run). Bounded: returns false if they did not exit.
  bool Shutdown();

  // Merged statistics of one row over all threads.
  OpStats Merged(int row) const;

 private:
  void BeginMeasure();
  void WaitForEnd(const std::string& label);
  Measured EndMeasure();
  void DrawProgress(const std::string& label, double elapsed_s, bool final);

  Options options_;
  std::vector<Conn> conns_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  std::vector<std::thread> pollers_;
  std::atomic<int> pollers_exited_{0};
  std::vector<std::string> rows_;
  std::vector<std::vector<OpStats>> stats_;  // [thread][row]
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> started_{0};
  std::atomic<int> active_{0};
  std::atomic<int> workers_{0};
  std::atomic<bool> had_workers_{false};
  std::atomic<uint64_t> progress_ops_{0};
  int64_t start_ns_ = 0;
  double start_cpu_s_ = 0;
};

// Set from the SIGINT handler: stop the run early and report what was measured.
void InstallInterruptHandler();

}  // namespace kvbench

#endif  // KVD_BENCH_KVBENCH_ENGINE_H_
